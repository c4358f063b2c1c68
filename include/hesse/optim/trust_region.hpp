// Trust-region Newton methods (Nocedal & Wright, 2nd ed., Alg. 4.1):
//
//   p_k   ~ argmin m_k(p) = f_k + g_k^T p + 1/2 p^T H_k p   s.t. |p| <= radius_k
//   rho_k = (f(x_k) - f(x_k + p_k)) / (m_k(0) - m_k(p_k))            (N&W eq. 4.4)
//   x_{k+1} = x_k + p_k if rho_k > acceptance, else x_k ("step rejected")
//   radius_{k+1} = radius_k / 4                  if rho_k < 1/4
//                = min(2 radius_k, max_radius)   if rho_k > 3/4 and |p_k| = radius_k
//                = radius_k                      otherwise
// A trial with NaN/Inf counts as rho = -inf ("non-finite trial"). When
// |actual - predicted| reduction is within rounding (10 eps max(1, |f|)), rho = 1.
// The run stops (StepTolerance, or NumericalFailure after a non-finite trial)
// when the radius falls below min_radius * max(1, |x|).
//
// The subproblem:
//   trust-ncg    Steihaug-Toint CG on Hessian-vector products (N&W Alg. 7.2),
//                inner tolerance eta_k |g| with the forcing terms of Newton-CG.
//                Krylov spaces of g cannot see negative curvature orthogonal to
//                g; so when an accepted point passes the gradient test, a
//                `second_order_check_steps`-step Lanczos probe from a seeded
//                random start (Royer, O'Neill & Wright 2020) looks for
//                lambda_min < 0 there, and if it finds one, steps along the
//                Ritz vector (to the trust radius, halving up to 10 times until
//                f decreases) instead of stopping at a saddle.
//   trust-exact  the nearly exact solution of More & Sorensen (1983) from the
//                eigendecomposition of the dense Hessian, hard case included
//                (linalg::solve_trust_region_subproblem); small n only.
#pragma once

#include <Eigen/Eigenvalues>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/linalg/cg.hpp"
#include "hesse/linalg/dense.hpp"
#include "hesse/linalg/lanczos.hpp"
#include "hesse/objective/concepts.hpp"
#include "hesse/optim/newton_cg.hpp"
#include "hesse/optim/solver_loop.hpp"

namespace hesse::optim {

namespace detail {

inline void validate_radius(const std::string& owner, double initial_radius, double max_radius,
                            double acceptance, double min_radius) {
  require_option(finite_positive(initial_radius), owner, "initial_radius", initial_radius,
                 "must be finite and > 0");
  require_option(std::isfinite(max_radius) && max_radius >= initial_radius, owner, "max_radius", max_radius,
                 "must be finite and >= initial_radius");
  require_option(acceptance >= 0 && acceptance < 0.25, owner, "acceptance", acceptance,
                 "must be in [0, 1/4) (N&W Alg. 4.1)");
  require_option(finite_positive(min_radius) && min_radius < initial_radius, owner, "min_radius", min_radius,
                 "must be finite, > 0 and < initial_radius");
}

/// Radius update and acceptance of N&W Alg. 4.1.
struct RadiusControl {
  double radius, max_radius, acceptance, min_radius;
  bool last_trial_non_finite = false;

  /// rho from the actual and predicted reductions (see the top of the file).
  static double ratio(double actual, double predicted, double f) {
    if (!std::isfinite(actual)) return -std::numeric_limits<double>::infinity();
    if (std::abs(actual - predicted) <= 10 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(f)))
      return 1;
    if (!(predicted > 0)) return -std::numeric_limits<double>::infinity();
    return actual / predicted;
  }
  /// Updates the radius; true if the step is accepted.
  bool update(double rho, double step_norm) {
    if (rho < 0.25) radius *= 0.25;
    else if (rho > 0.75 && step_norm >= (1 - 1e-6) * radius) radius = std::min(2 * radius, max_radius);
    return rho > acceptance;
  }
  bool collapsed(double x_norm) const { return radius < min_radius * std::max(1.0, x_norm); }
};

/// Evaluates x + p and the trust-region test; leaves x, fx, g at the accepted point.
template <class F>
StepOutcome trust_region_trial(Evaluator<F>& evaluator, RadiusControl& control, Vector<ScalarOf<F>>& x,
                               ScalarOf<F>& fx, Vector<ScalarOf<F>>& g, const Vector<ScalarOf<F>>& p,
                               double model_value, Vector<ScalarOf<F>>& x_new, Vector<ScalarOf<F>>& g_new,
                               bool& accepted) {
  using T = ScalarOf<F>;
  StepOutcome outcome;
  outcome.step_size = control.radius;
  x_new = x + p;
  const T f_new = evaluator.value_and_gradient(x_new, g_new);
  const bool finite = std::isfinite(static_cast<double>(f_new)) && g_new.allFinite();
  control.last_trial_non_finite = !finite;
  const double actual = finite ? static_cast<double>(fx) - static_cast<double>(f_new)
                               : std::numeric_limits<double>::quiet_NaN();
  const double rho = RadiusControl::ratio(actual, -model_value, static_cast<double>(fx));
  accepted = finite && control.update(rho, static_cast<double>(p.norm()));
  if (!finite) control.radius = std::min(control.radius, 0.25 * static_cast<double>(p.norm()));
  if (accepted) {
    x.swap(x_new);
    g.swap(g_new);
    fx = f_new;
  } else {
    outcome.event = finite ? "step rejected" : "non-finite trial";
  }
  if (control.collapsed(static_cast<double>(x.norm()))) {
    return StepOutcome::fail(control.last_trial_non_finite ? TerminationReason::NumericalFailure
                                                           : TerminationReason::StepTolerance,
                             "trust radius " + std::to_string(control.radius) + " fell below min_radius");
  }
  return outcome;
}

}  // namespace detail

struct TrustNcgOptions {
  TerminationOptions termination;
  IterationCallback callback;
  double initial_radius = 1;
  double max_radius = 1e10;
  /// eta of N&W Alg. 4.1: a step is accepted when rho > acceptance.
  double acceptance = 0.15;
  /// Stop when the radius falls below min_radius * max(1, |x|).
  double min_radius = 1e-14;
  /// CG stops at |H p + g| <= eta_k |g| (see newton_cg.hpp for the sequences).
  ForcingTerm forcing = ForcingTerm::NocedalWright;
  double forcing_max = 0.5;
  /// CG iterations per outer iteration; 0 = the dimension n.
  Index max_cg_iterations = 0;
  /// Lanczos steps of the saddle check at a point that passes the gradient
  /// test (0: off, stop wherever the gradient is small).
  Index second_order_check_steps = 20;
  std::uint64_t seed = 0;

  void validate() const {
    const std::string owner = "TrustNcgOptions";
    termination.validate(owner);
    detail::validate_radius(owner, initial_radius, max_radius, acceptance, min_radius);
    detail::require_option(forcing >= ForcingTerm::NocedalWright && forcing <= ForcingTerm::Constant, owner,
                           "forcing", static_cast<double>(forcing),
                           "must be NocedalWright, EisenstatWalker or Constant");
    detail::require_option(forcing_max > 0 && forcing_max < 1, owner, "forcing_max", forcing_max,
                           "must be in (0, 1)");
    detail::require_option(max_cg_iterations >= 0, owner, "max_cg_iterations",
                           static_cast<double>(max_cg_iterations), "must be >= 0 (0: the dimension)");
    detail::require_option(second_order_check_steps >= 0, owner, "second_order_check_steps",
                           static_cast<double>(second_order_check_steps), "must be >= 0 (0: off)");
  }
};

struct TrustExactOptions {
  TerminationOptions termination;
  IterationCallback callback;
  double initial_radius = 1;
  double max_radius = 1e10;
  /// eta of N&W Alg. 4.1: a step is accepted when rho > acceptance.
  double acceptance = 0.15;
  /// Stop when the radius falls below min_radius * max(1, |x|).
  double min_radius = 1e-14;
  /// Bound on | |p| - radius | / radius for a boundary solution.
  double subproblem_tolerance = 1e-10;

  void validate() const {
    const std::string owner = "TrustExactOptions";
    termination.validate(owner);
    detail::validate_radius(owner, initial_radius, max_radius, acceptance, min_radius);
    detail::require_option(subproblem_tolerance > 0 && subproblem_tolerance < 1, owner, "subproblem_tolerance",
                           subproblem_tolerance, "must be in (0, 1)");
  }
};

/// Trust-region Newton-CG (Steihaug-Toint); needs Hessian-vector products.
template <Objective F>
Summary minimize(F& f, Vector<ScalarOf<F>>& x, const TrustNcgOptions& options) {
  HESSE_REQUIRE_OBJECTIVE(F, HessianVectorObjective, "hessian_vector(x, v, out)");
  using T = ScalarOf<F>;
  options.validate();
  const Index n = x.size();
  linalg::CgWorkspace<T> workspace;
  workspace.resize(n);
  linalg::LanczosWorkspace<T> lanczos;
  Vector<T> p(n), ritz(n), x_new(n), g_new(n);
  detail::ForcingSequence forcing(options.forcing, options.forcing_max);
  detail::RadiusControl control{options.initial_radius, options.max_radius, options.acceptance,
                                options.min_radius};
  const linalg::CgOptions cg_base{.max_iterations = options.max_cg_iterations};

  // The loop's gradient test, to know when an accepted point would end the run.
  auto passes_gradient_test = [&](Evaluator<F>& evaluator, const Vector<T>& g) {
    const double norm = g.size() ? static_cast<double>(g.template lpNorm<Eigen::Infinity>()) : 0.0;
    const auto& t = evaluator.termination();
    return norm <= t.gradient_tolerance ||
           (t.relative_gradient_tolerance > 0 &&
            norm <= t.relative_gradient_tolerance * evaluator.summary().initial_gradient_norm);
  };

  auto step = [&](Evaluator<F>& evaluator, Vector<T>& x, T& fx, Vector<T>& g, int iteration) -> StepOutcome {
    linalg::CgOptions cg = cg_base;
    cg.relative_tolerance = forcing.next(static_cast<double>(g.norm()));
    detail::HessianOperator<F> hessian{evaluator, x};
    const auto result = linalg::steihaug_cg(hessian, g, control.radius, p, cg, workspace);
    if (result.status == linalg::CgStatus::NegativeCurvature) evaluator.event("negative curvature in CG");
    if (result.status == linalg::CgStatus::Breakdown || !p.allFinite()) {
      evaluator.event("CG breakdown");
      p = -g * static_cast<T>(control.radius / std::max(static_cast<double>(g.norm()), 1e-300));
    }
    bool accepted = false;
    StepOutcome outcome = detail::trust_region_trial(evaluator, control, x, fx, g, p, result.model_value, x_new,
                                                     g_new, accepted);
    outcome.inner_iterations = static_cast<int>(result.iterations);
    if (!outcome.ok || !accepted || options.second_order_check_steps == 0 || !passes_gradient_test(evaluator, g))
      return outcome;
    // Second-order check at the accepted point (see the top of the file).
    evaluator.event("second-order check");
    detail::HessianOperator<F> hessian_new{evaluator, x};
    const double lowest = linalg::lanczos_smallest(hessian_new, n, options.second_order_check_steps,
                                                   options.seed + static_cast<std::uint64_t>(iteration), ritz,
                                                   lanczos);
    const double tolerance = std::sqrt(std::numeric_limits<T>::epsilon()) * std::max(1.0, std::abs(lowest));
    if (!(lowest < -tolerance)) return outcome;
    evaluator.event("negative curvature found");
    if (ritz.dot(g) > T(0)) ritz = -ritz;
    double length = std::max(control.radius, std::sqrt(static_cast<double>(std::numeric_limits<T>::epsilon())));
    for (int trial = 0; trial < 10; ++trial, length *= 0.5) {
      x_new = x + static_cast<T>(length) * ritz;
      const T f_new = evaluator.value_and_gradient(x_new, g_new);
      if (std::isfinite(static_cast<double>(f_new)) && g_new.allFinite() && f_new < fx) {
        x.swap(x_new);
        g.swap(g_new);
        fx = f_new;
        evaluator.event("saddle escaped");
        break;
      }
    }
    return outcome;
  };
  return run_solver("trust-ncg", f, x, options.termination, options.callback, step);
}

/// Nearly exact trust-region Newton (More-Sorensen); needs the dense Hessian.
/// Events: the Hessian's sign per iteration ("positive definite", ...), "hard case".
template <Objective F>
Summary minimize(F& f, Vector<ScalarOf<F>>& x, const TrustExactOptions& options) {
  HESSE_REQUIRE_OBJECTIVE(F, DenseHessianObjective, "hessian(x, H)");
  using T = ScalarOf<F>;
  options.validate();
  const Index n = x.size();
  Matrix<T> H(n, n);
  Eigen::SelfAdjointEigenSolver<Matrix<T>> eigen(n);
  Vector<T> p(n), x_new(n), g_new(n);
  detail::RadiusControl control{options.initial_radius, options.max_radius, options.acceptance,
                                options.min_radius};
  bool hessian_current = false;  // H and eigen belong to the current x (after a rejected step)

  auto step = [&](Evaluator<F>& evaluator, Vector<T>& x, T& fx, Vector<T>& g, int) -> StepOutcome {
    if (!hessian_current) {
      evaluator.hessian(x, H);
      if (!linalg::symmetric_eigen(H, eigen))
        return StepOutcome::fail(TerminationReason::NumericalFailure,
                                 "the Hessian is not finite or its eigendecomposition failed");
      const double zero = static_cast<double>(n) * std::numeric_limits<T>::epsilon() *
                          static_cast<double>(eigen.eigenvalues().cwiseAbs().maxCoeff());
      evaluator.event(linalg::to_string(linalg::classify<T>(eigen.eigenvalues(), zero)));
      hessian_current = true;
    }
    const auto sub = linalg::solve_trust_region_subproblem(eigen, g, control.radius, p,
                                                           options.subproblem_tolerance);
    if (sub.hard_case) evaluator.event("hard case");
    bool accepted = false;
    StepOutcome outcome = detail::trust_region_trial(evaluator, control, x, fx, g, p, sub.model_value, x_new,
                                                     g_new, accepted);
    outcome.inner_iterations = sub.iterations;
    if (accepted) hessian_current = false;
    return outcome;
  };
  return run_solver("trust-exact", f, x, options.termination, options.callback, step);
}

}  // namespace hesse::optim
