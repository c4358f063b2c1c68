// Newton's method with the Hessian's sign deciding the step (docs/solvers-newton.md).
//
//   x_{k+1} = x_k + alpha_k p_k,   alpha_0 = learning_rate,
//
// where, with H = hess f(x_k), g = grad f(x_k):
//   * Cholesky of H succeeds (positive definite): p = -H^{-1} g, the Newton
//     step (Nocedal & Wright, 2nd ed., eq. 3.30);
//   * otherwise H = V diag(lambda) V^T classifies the iteration as positive
//     semidefinite, indefinite or negative definite, and `strategy` decides:
//       None                    p = -H^{-1} g by LDLT (plain Newton; may head
//                               for a saddle or a maximum)
//       LevenbergShift          p = -(H + tau I)^{-1} g, tau grown x10 from
//                               tau_1 until Cholesky succeeds (N&W Alg. 3.3)
//       EigenvalueModification  p = -V diag(1/mu) V^T g, mu_i = max(|lambda_i|, delta)
//                               (Absolute: saddle-free Newton, Dauphin et al.
//                               2014) or max(lambda_i, delta) (Clip; N&W eq. 3.41)
//       NegativeCurvature       p = s_+ + d: the Newton step on the positive
//                               eigenspace (lambda_i > delta) plus the step
//                               d = sigma max(|v_1.g| / |lambda_1|, ell) v_1 along
//                               the most negative eigenvector (More & Sorensen 1979;
//                               sigma, ell below)
//     and, when H has a negative eigenvalue lambda_1 < -delta (eigenvector v_1)
//     and escape_saddles is on, LevenbergShift and EigenvalueModification get
//     the same treatment, so that a gradient orthogonal to v_1 cannot lead
//     them into a saddle: the component of the step along v_1 is made
//       sigma max(|v_1.s|, ell),  ell = kappa |lambda_1| / max_i |lambda_i| max(1, |x|),
//     sigma = -sign(v_1.g) (+1 when v_1.g = 0), kappa = negative_curvature_scale,
//     s the strategy's step. The result is still a descent direction, and its
//     v_1 part does not vanish as g -> 0 near a saddle.
// The step length alpha comes from a line search started at learning_rate
// (Armijo by default), or is learning_rate itself when use_line_search is
// off (then a trial with NaN/Inf is halved until finite).
//
// Summary::events counts, per iteration, exactly one of "positive definite",
// "positive semidefinite", "indefinite", "negative definite" (the record's
// event), plus "strategy: <name>" for every non-positive-definite iteration
// and "negative curvature step" whenever d was added.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/linalg/dense.hpp"
#include "hesse/linesearch/line_search.hpp"
#include "hesse/objective/concepts.hpp"
#include "hesse/optim/solver_loop.hpp"

namespace hesse::optim {

/// What Newton does when the Hessian is not positive definite.
enum class IndefiniteStrategy { None, LevenbergShift, EigenvalueModification, NegativeCurvature };
/// How EigenvalueModification replaces an eigenvalue lambda (delta: the floor).
enum class EigenvalueRule {
  Absolute,  ///< max(|lambda|, delta): saddle-free Newton (Dauphin et al. 2014)
  Clip,      ///< max(lambda, delta)
};

inline const char* to_string(IndefiniteStrategy strategy) {
  switch (strategy) {
    case IndefiniteStrategy::None: return "none";
    case IndefiniteStrategy::LevenbergShift: return "levenberg shift";
    case IndefiniteStrategy::EigenvalueModification: return "eigenvalue modification";
    case IndefiniteStrategy::NegativeCurvature: return "negative curvature";
  }
  return "unknown";
}

namespace detail {
/// Throws InvalidArgument "<owner>.<field> = <value>: <rule>" unless ok.
inline void require_option(bool ok, const std::string& owner, const char* field, double value,
                           const char* rule) {
  if (!ok) {
    std::ostringstream message;
    message << owner << "." << field << " = " << value << ": " << rule;
    throw InvalidArgument(message.str());
  }
}
inline bool finite_positive(double v) { return std::isfinite(v) && v > 0; }
}  // namespace detail

struct NewtonOptions {
  TerminationOptions termination;
  IterationCallback callback;
  /// eta in x <- x - eta H^{-1} g; the line search's first trial step.
  double learning_rate = 1;
  /// Off: take x + learning_rate p whatever f does (plain Newton).
  bool use_line_search = true;
  linesearch::LineSearchOptions line_search{.kind = linesearch::LineSearchKind::Armijo};
  IndefiniteStrategy strategy = IndefiniteStrategy::LevenbergShift;
  EigenvalueRule eigenvalue_rule = EigenvalueRule::Absolute;
  /// delta = eigenvalue_floor * max_i |lambda_i|: the smallest curvature the
  /// modified Hessian may have (EigenvalueModification, NegativeCurvature).
  double eigenvalue_floor = 1e-8;
  /// Levenberg shift: beta = shift_scale * max_i |h_ii|, tau_1 = beta + max(0, -min_i h_ii).
  double shift_scale = 1e-3;
  double shift_growth = 10;
  int max_shifts = 60;
  /// Add the negative-curvature step d to LevenbergShift and
  /// EigenvalueModification steps when H has a negative eigenvalue.
  bool escape_saddles = true;
  /// kappa in ell = kappa |lambda_1| / max|lambda| max(1, |x|), the least
  /// length of the step along the most negative eigenvector.
  double negative_curvature_scale = 1;

  void validate() const {
    const std::string owner = "NewtonOptions";
    termination.validate(owner);
    detail::require_option(detail::finite_positive(learning_rate), owner, "learning_rate",
                           learning_rate, "must be finite and > 0");
    if (use_line_search) line_search.validate(owner + ".line_search");
    detail::require_option(strategy >= IndefiniteStrategy::None &&
                               strategy <= IndefiniteStrategy::NegativeCurvature,
                           owner, "strategy", static_cast<double>(strategy),
                           "must be None, LevenbergShift, EigenvalueModification or NegativeCurvature");
    detail::require_option(eigenvalue_rule == EigenvalueRule::Absolute || eigenvalue_rule == EigenvalueRule::Clip,
                           owner, "eigenvalue_rule", static_cast<double>(eigenvalue_rule),
                           "must be Absolute or Clip");
    detail::require_option(detail::finite_positive(eigenvalue_floor) && eigenvalue_floor < 1, owner,
                           "eigenvalue_floor", eigenvalue_floor, "must be in (0, 1)");
    detail::require_option(detail::finite_positive(shift_scale), owner, "shift_scale", shift_scale,
                           "must be finite and > 0");
    detail::require_option(std::isfinite(shift_growth) && shift_growth > 1, owner, "shift_growth",
                           shift_growth, "must be finite and > 1");
    detail::require_option(max_shifts >= 1, owner, "max_shifts", max_shifts, "must be >= 1");
    detail::require_option(detail::finite_positive(negative_curvature_scale), owner,
                           "negative_curvature_scale", negative_curvature_scale,
                           "must be finite and > 0");
  }
};

/// Newton's method (see the top of this file); needs the dense Hessian.
template <Objective F>
Summary minimize(F& f, Vector<ScalarOf<F>>& x, const NewtonOptions& options) {
  HESSE_REQUIRE_OBJECTIVE(F, DenseHessianObjective, "hessian(x, H)");
  using T = ScalarOf<F>;
  options.validate();
  const Index n = x.size();
  Matrix<T> H(n, n);
  Eigen::LLT<Matrix<T>> llt(n);
  Eigen::LDLT<Matrix<T>> ldlt(n);
  Eigen::SelfAdjointEigenSolver<Matrix<T>> eigen(n);
  Vector<T> p(n), a(n), x_new(n), g_new(n);
  T f_new = 0;
  const linalg::DampingOptions damping{options.shift_scale, options.shift_growth, options.max_shifts};

  auto step = [&](Evaluator<F>& evaluator, Vector<T>& x, T& fx, Vector<T>& g, int) -> StepOutcome {
    StepOutcome outcome;
    evaluator.hessian(x, H);
    if (!H.allFinite())
      return StepOutcome::fail(TerminationReason::NumericalFailure, "the Hessian is not finite");
    llt.compute(H);
    if (llt.info() == Eigen::Success && llt.matrixLLT().allFinite()) {
      outcome.event = linalg::to_string(linalg::Definiteness::PositiveDefinite);
      p = -g;
      llt.solveInPlace(p);
    } else {
      if (!linalg::symmetric_eigen(H, eigen))
        return StepOutcome::fail(TerminationReason::NumericalFailure,
                                 "the eigendecomposition of the Hessian failed");
      const auto& lambda = eigen.eigenvalues();
      const auto& V = eigen.eigenvectors();
      const double lambda_max_abs = static_cast<double>(lambda.cwiseAbs().maxCoeff());
      const double zero = static_cast<double>(n) * std::numeric_limits<T>::epsilon() * lambda_max_abs;
      outcome.event = linalg::to_string(linalg::classify<T>(lambda, zero));
      evaluator.event(std::string("strategy: ") + to_string(options.strategy));
      const T delta = static_cast<T>(lambda_max_abs > 0 ? options.eigenvalue_floor * lambda_max_abs
                                                        : options.eigenvalue_floor);
      a.noalias() = V.transpose() * g;
      bool add_negative_curvature = options.escape_saddles;
      switch (options.strategy) {
        case IndefiniteStrategy::None:
          ldlt.compute(H);
          p = ldlt.solve(-g);
          add_negative_curvature = false;
          break;
        case IndefiniteStrategy::LevenbergShift: {
          const auto shifted = linalg::damped_cholesky(H, llt, damping);
          if (!shifted.success)
            return StepOutcome::fail(TerminationReason::NumericalFailure,
                                     "no Levenberg shift made the Hessian positive definite");
          outcome.inner_iterations = shifted.attempts;
          p = -g;
          llt.solveInPlace(p);
          break;
        }
        case IndefiniteStrategy::EigenvalueModification:
          for (Index i = 0; i < n; ++i) {
            const T mu = options.eigenvalue_rule == EigenvalueRule::Absolute
                             ? std::max(std::abs(lambda[i]), delta)
                             : std::max(lambda[i], delta);
            a[i] /= mu;
          }
          p.noalias() = -(V * a);
          break;
        case IndefiniteStrategy::NegativeCurvature:
          // s_+ plus, on v_1, -a_1 / |lambda_1| (raised to ell below).
          for (Index i = 0; i < n; ++i)
            a[i] = lambda[i] > delta ? a[i] / lambda[i] : (i == 0 ? a[i] / std::abs(lambda[i]) : T(0));
          p.noalias() = -(V * a);
          add_negative_curvature = true;
          break;
      }
      if (add_negative_curvature && lambda[0] < -delta) {
        // Make the component along v_1 at least ell = kappa |lambda_1| / max|lambda| max(1, |x|)
        // long, with the sign that descends: p += (sigma max(|v_1.p|, ell) - v_1.p) v_1.
        const auto v1 = V.col(0);
        const T sigma = v1.dot(g) > T(0) ? T(-1) : T(1);
        const double ell = options.negative_curvature_scale * std::abs(static_cast<double>(lambda[0])) /
                           lambda_max_abs * std::max(1.0, static_cast<double>(x.norm()));
        const T along = v1.dot(p);
        const T target = sigma * static_cast<T>(std::max(std::abs(static_cast<double>(along)), ell));
        p.noalias() += (target - along) * v1;
        evaluator.event("negative curvature step");
      }
    }
    if (!p.allFinite())
      return StepOutcome::fail(TerminationReason::NumericalFailure,
                               "the Newton step is not finite (singular Hessian)");

    if (options.use_line_search) {
      const auto search = linesearch::line_search(evaluator, x, fx, g, p, options.learning_rate,
                                                  options.line_search, x_new, f_new, g_new);
      outcome.line_search_trials = search.trials;
      outcome.step_size = search.step;
      if (!search.success) {
        if (!(search.step > 0 && f_new < fx))
          return StepOutcome::fail(TerminationReason::LineSearchFailure,
                                   "line search failed along the Newton direction: " + search.message);
        evaluator.event("line search failed, best trial kept");
      }
    } else {
      // Plain step; only a non-finite trial is shortened.
      double alpha = options.learning_rate;
      for (int trial = 0;; ++trial) {
        x_new = x + static_cast<T>(alpha) * p;
        f_new = evaluator.value_and_gradient(x_new, g_new);
        if (std::isfinite(static_cast<double>(f_new)) && g_new.allFinite()) break;
        evaluator.event("non-finite trial");
        if (trial == 60)
          return StepOutcome::fail(TerminationReason::NumericalFailure,
                                   "non-finite values along the Newton direction");
        alpha *= 0.5;
      }
      outcome.step_size = alpha;
    }
    x.swap(x_new);
    g.swap(g_new);
    fx = f_new;
    return outcome;
  };
  return run_solver("newton", f, x, options.termination, options.callback, step);
}

}  // namespace hesse::optim
