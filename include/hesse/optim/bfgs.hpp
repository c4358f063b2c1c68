// BFGS with a dense inverse-Hessian approximation H_k (Nocedal & Wright,
// 2nd ed., Algorithm 6.1): p_k = -H_k g_k, x_{k+1} = x_k + a_k p_k with a line
// search (strong Wolfe by default, which keeps y_k's_k > 0), and
//   H_{k+1} = (I - rho s y^T) H_k (I - rho y s^T) + rho s s^T,   rho = 1 / (y^T s)   (eq. 6.17)
// with s = x_{k+1} - x_k, y = g_{k+1} - g_k.
//
// H_0 = I for the first step, whose trial length is 1 / |g_0|_2; before
// the first update H_0 is rescaled to (y^T s / y^T y) I (eq. 6.20) and later
// steps try a = 1 first.
//
// Curvature: an update with y^T s <= curvature_threshold |y| |s| is skipped
// (event "bfgs update skipped"). With powell_damping, y is first replaced by
//   r = theta y + (1 - theta) B s,  theta = 1 if s^T y >= 0.2 s^T B s,
//   else 0.8 s^T B s / (s^T B s - s^T y)                 (N&W Procedure 18.2)
// (event "bfgs update damped" when theta < 1), which makes r^T s >= 0.2 s^T B s > 0.
// B s needs no solve: s = -a H g gives B s = -a g (or s / gamma right after
// the rescaling of H_0).
//
// A failed line search resets H to I and retries along -g once (event
// "reset"); a second failure ends the run (LineSearchFailure) at the best
// point seen.
#pragma once

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/linesearch/line_search.hpp"
#include "hesse/optim/solver_loop.hpp"

namespace hesse::optim {

struct BfgsOptions {
  TerminationOptions termination;
  IterationCallback callback;
  linesearch::LineSearchOptions line_search;  ///< strong Wolfe by default
  /// Skip the update when y^T s <= curvature_threshold |y| |s|.
  double curvature_threshold = 1e-10;
  /// Powell's damping of y instead of skipping when the curvature is small.
  bool powell_damping = false;
  /// Rescale H_0 = (y^T s / y^T y) I before the first update.
  bool scale_initial_inverse_hessian = true;

  /// Throws InvalidArgument naming bfgs.<field>, its value and the rule.
  void validate() const {
    if (!(curvature_threshold >= 0 && curvature_threshold < 1)) {
      std::ostringstream message;
      message << "bfgs.curvature_threshold = " << curvature_threshold << ": must be in [0, 1)";
      throw InvalidArgument(message.str());
    }
    line_search.validate("bfgs.line_search");
  }
};

template <DifferentiableObjective F>
Summary minimize(F& f, Vector<ScalarOf<F>>& x, const BfgsOptions& options) {
  using T = ScalarOf<F>;
  options.validate();
  const Index n = x.size();
  Matrix<T> inverse_hessian = Matrix<T>::Identity(n, n);
  bool at_identity = true;  // H = I: the first step, or after a reset
  bool updated = false;     // H has had an update since the last reset
  Vector<T> direction(n), x_new(n), g_new(n), s(n), y(n), hy(n), bs(n);

  auto search = [&](Evaluator<F>& evaluator, const Vector<T>& x, T fx, const Vector<T>& g,
                    double initial_step, T& f_new) {
    return linesearch::line_search(evaluator, x, fx, g, direction, initial_step,
                                   options.line_search, x_new, f_new, g_new);
  };
  auto first_step = [](const Vector<T>& g) {
    // 1 / |g|_2, so the first trial moves a unit distance (as L-BFGS-B and LBFGS++).
    const double norm = static_cast<double>(g.norm());
    return norm > 0 ? 1.0 / norm : 1.0;
  };

  auto step = [&](Evaluator<F>& evaluator, Vector<T>& x, T& fx, Vector<T>& g, int) {
    StepOutcome outcome;
    // The record keeps the step's first event; every event is counted.
    auto note = [&](const char* event) {
      if (outcome.event.empty())
        outcome.event = event;
      else
        evaluator.event(event);
    };
    direction.noalias() = -(inverse_hessian * g);
    T f_new = 0;
    linesearch::LineSearchResult result =
        search(evaluator, x, fx, g, at_identity ? first_step(g) : 1.0, f_new);
    outcome.line_search_trials = result.trials;
    if (!result.success && !at_identity) {
      inverse_hessian.setIdentity();
      at_identity = true;
      updated = false;
      note("reset");
      direction = -g;
      result = search(evaluator, x, fx, g, first_step(g), f_new);
      outcome.line_search_trials += result.trials;
    }
    if (!result.success) {
      StepOutcome failure = StepOutcome::fail(TerminationReason::LineSearchFailure, result.message);
      failure.line_search_trials = outcome.line_search_trials;
      failure.event = outcome.event;
      return failure;
    }
    outcome.step_size = result.step;

    s = x_new - x;
    y = g_new - g;
    bs = static_cast<T>(-result.step) * g;  // B s for B = H^-1 (s = -a H g)
    x.swap(x_new);
    g.swap(g_new);
    fx = f_new;

    if (options.scale_initial_inverse_hessian && !updated) {
      const T gamma = s.dot(y) / y.squaredNorm();  // eq. 6.20
      if (gamma > T(0) && std::isfinite(static_cast<double>(gamma))) {
        inverse_hessian.setIdentity();
        inverse_hessian *= gamma;
        bs = s / gamma;
        at_identity = false;
      }
    }
    if (options.powell_damping) {
      const T sbs = s.dot(bs);
      const T sy = s.dot(y);
      if (sy < T(0.2) * sbs) {
        const T theta = T(0.8) * sbs / (sbs - sy);
        y = theta * y + (T(1) - theta) * bs;
        note("bfgs update damped");
      }
    }
    const T sy = s.dot(y);
    if (!(static_cast<double>(sy) >
          options.curvature_threshold * static_cast<double>(y.norm() * s.norm()))) {
      note("bfgs update skipped");
      return outcome;
    }
    // Eq. 6.17 expanded: H - rho (s (Hy)^T + (Hy) s^T) + (rho^2 y^T H y + rho) s s^T.
    const T rho = T(1) / sy;
    hy.noalias() = inverse_hessian * y;
    const T yhy = y.dot(hy);
    inverse_hessian.noalias() -= (rho * s) * hy.transpose();
    inverse_hessian.noalias() -= (rho * hy) * s.transpose();
    inverse_hessian.noalias() += ((rho * rho * yhy + rho) * s) * s.transpose();
    at_identity = false;
    updated = true;
    return outcome;
  };
  return run_solver("bfgs", f, x, options.termination, options.callback, step);
}

}  // namespace hesse::optim
