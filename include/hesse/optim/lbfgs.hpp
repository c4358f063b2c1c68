// Limited-memory BFGS (Nocedal & Wright, 2nd ed., Algorithm 7.5): the last m
// pairs s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i define H_k implicitly, and the
// direction p_k = -H_k g_k comes from the two-loop recursion (Algorithm 7.4)
// with the initial matrix H_k^0 = gamma_k I,
//   gamma_k = s_{k-1}^T y_{k-1} / y_{k-1}^T y_{k-1}                       (eq. 7.20).
// The step comes from a line search (strong Wolfe by default); the first trial
// is a = 1, except without pairs, where it is 1 / |g|_2.
//
// A pair with s^T y <= curvature_threshold |s| |y| is not stored (event
// "curvature pair skipped"), so every stored pair has positive curvature and
// H_k stays positive definite. A failed line search drops the history and
// retries along -g once (event "history reset"); a second failure ends the
// run (LineSearchFailure) at the best point seen.
//
// The pairs live in two n x m ring buffers allocated before the first
// iteration; an iteration allocates nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/linesearch/line_search.hpp"
#include "hesse/optim/lbfgs_history.hpp"
#include "hesse/optim/solver_loop.hpp"

namespace hesse::optim {

struct LbfgsOptions {
  TerminationOptions termination;
  IterationCallback callback;
  linesearch::LineSearchOptions line_search;  ///< strong Wolfe by default
  /// Number m of curvature pairs kept.
  int memory = 10;
  /// Do not store a pair with s^T y <= curvature_threshold |s| |y|.
  double curvature_threshold = 1e-10;

  /// Throws InvalidArgument naming lbfgs.<field>, its value and the rule.
  void validate() const {
    auto fail = [](const char* field, double value, const char* rule) {
      std::ostringstream message;
      message << "lbfgs." << field << " = " << value << ": " << rule;
      throw InvalidArgument(message.str());
    };
    if (memory < 1) fail("memory", memory, "must be >= 1");
    if (!(curvature_threshold >= 0 && curvature_threshold < 1))
      fail("curvature_threshold", curvature_threshold, "must be in [0, 1)");
    line_search.validate("lbfgs.line_search");
  }
};

template <DifferentiableObjective F>
Summary minimize(F& f, Vector<ScalarOf<F>>& x, const LbfgsOptions& options) {
  using T = ScalarOf<F>;
  options.validate();
  const Index n = x.size();
  LbfgsHistory<T> history(n, options.memory);
  Vector<T> direction(n), x_new(n), g_new(n), s(n), y(n);

  auto first_step = [](const Vector<T>& g) {
    // 1 / |g|_2, so the first trial moves a unit distance (as L-BFGS-B and LBFGS++).
    const double norm = static_cast<double>(g.norm());
    return norm > 0 ? 1.0 / norm : 1.0;
  };

  auto step = [&](Evaluator<F>& evaluator, Vector<T>& x, T& fx, Vector<T>& g, int) {
    StepOutcome outcome;
    history.direction(g, direction);
    T f_new = 0;
    linesearch::LineSearchResult result =
        linesearch::line_search(evaluator, x, fx, g, direction, history.size() > 0 ? 1.0 : first_step(g),
                                options.line_search, x_new, f_new, g_new);
    outcome.line_search_trials = result.trials;
    if (!result.success && history.size() > 0) {
      history.clear();
      outcome.event = "history reset";
      direction = -g;
      result = linesearch::line_search(evaluator, x, fx, g, direction, first_step(g),
                                       options.line_search, x_new, f_new, g_new);
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
    x.swap(x_new);
    g.swap(g_new);
    fx = f_new;

    if (!history.push(s, y, options.curvature_threshold)) {
      if (outcome.event.empty())
        outcome.event = "curvature pair skipped";
      else
        evaluator.event("curvature pair skipped");
    }
    return outcome;
  };
  return run_solver("lbfgs", f, x, options.termination, options.callback, step);
}

}  // namespace hesse::optim
