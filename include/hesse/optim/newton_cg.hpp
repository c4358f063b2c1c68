// Newton-CG: line-search truncated Newton, Hessian-free (Nocedal & Wright,
// 2nd ed., Alg. 7.1). Each outer iteration solves H p = -g approximately by
// (preconditioned) CG from p = 0, using only Hessian-vector products, until
//   |H p + g| <= eta_k |g|            (the forcing term eta_k, N&W eq. 7.3)
// and then searches along p (Armijo by default, first trial step 1).
//
// Negative curvature: CG stops at the first direction d_j with d_j^T H d_j <= 0
// and returns p = the CG iterate p_j so far; if that happens at j = 0 (p_0 = 0)
// it returns the (preconditioned) steepest-descent direction -M^{-1} g
// (N&W Alg. 7.1). Either is a descent direction. Event "negative curvature in CG".
//
// Forcing terms:
//   NocedalWright     eta_k = min(0.5, sqrt(|g_k|))            (N&W eq. 7.3, superlinear)
//   EisenstatWalker   eta_k = gamma (|g_k| / |g_{k-1}|)^alpha, gamma = 0.9, alpha = 2,
//                     safeguarded by max(eta_k, gamma eta_{k-1}^alpha) when
//                     gamma eta_{k-1}^alpha > 0.1, capped at forcing_max; eta_0 = forcing_max
//                     (Eisenstat & Walker 1996, "choice 2")
//   Constant          eta_k = forcing_max
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/linalg/cg.hpp"
#include "hesse/linesearch/line_search.hpp"
#include "hesse/objective/concepts.hpp"
#include "hesse/optim/newton.hpp"
#include "hesse/optim/solver_loop.hpp"

namespace hesse::optim {

enum class ForcingTerm { NocedalWright, EisenstatWalker, Constant };

enum class NewtonCgPreconditioner {
  None,
  /// M = diag(|h_ii|) floored at 1e-8 max|h_jj|, from `hessian_diagonal(x, d)` if
  /// the objective has it, otherwise from the dense Hessian (one hessian(x, H)
  /// per iteration: only sensible for small n).
  Jacobi,
  /// M = diag(m) with m = options.diagonal_preconditioner(x), floored likewise.
  UserDiagonal,
};

namespace detail {

/// The forcing-term sequence shared by Newton-CG and trust-ncg.
class ForcingSequence {
 public:
  ForcingSequence(ForcingTerm kind, double eta_max) : kind_(kind), eta_max_(eta_max), eta_(eta_max) {}
  /// eta_k for |g_k| (Euclidean norm).
  double next(double gradient_norm) {
    switch (kind_) {
      case ForcingTerm::NocedalWright:
        eta_ = std::min(eta_max_, std::sqrt(gradient_norm));
        break;
      case ForcingTerm::EisenstatWalker:
        if (previous_norm_ > 0) {
          constexpr double gamma = 0.9, alpha = 2;
          double eta = gamma * std::pow(gradient_norm / previous_norm_, alpha);
          const double safeguard = gamma * std::pow(eta_, alpha);
          if (safeguard > 0.1) eta = std::max(eta, safeguard);
          eta_ = std::min(eta_max_, eta);
        }
        break;
      case ForcingTerm::Constant:
        eta_ = eta_max_;
        break;
    }
    previous_norm_ = gradient_norm;
    return eta_;
  }

 private:
  ForcingTerm kind_;
  double eta_max_;
  double eta_;
  double previous_norm_ = 0;
};

/// H(x) v through the evaluator (counted), as a CG operator.
template <class F>
struct HessianOperator {
  Evaluator<F>& evaluator;
  const Vector<ScalarOf<F>>& x;
  void apply(const Vector<ScalarOf<F>>& v, Vector<ScalarOf<F>>& out) { evaluator.hessian_vector(x, v, out); }
};

template <class F>
concept HasHessianDiagonal = requires(F& f, const Vector<ScalarOf<F>>& x, Vector<ScalarOf<F>>& d) {
  f.hessian_diagonal(x, d);
};

}  // namespace detail

struct NewtonCgOptions {
  TerminationOptions termination;
  IterationCallback callback;
  ForcingTerm forcing = ForcingTerm::EisenstatWalker;
  /// Upper bound of eta_k (and eta_0, and the Constant value); in (0, 1).
  double forcing_max = 0.5;
  /// CG iterations per outer iteration; 0 = the dimension n.
  Index max_cg_iterations = 0;
  linesearch::LineSearchOptions line_search{.kind = linesearch::LineSearchKind::Armijo};
  NewtonCgPreconditioner preconditioner = NewtonCgPreconditioner::None;
  /// For UserDiagonal: an approximation of diag(H(x)) (entries made positive).
  std::function<void(const Eigen::VectorXd& x, Eigen::VectorXd& diagonal)> diagonal_preconditioner;

  void validate() const {
    const std::string owner = "NewtonCgOptions";
    termination.validate(owner);
    detail::require_option(forcing >= ForcingTerm::NocedalWright && forcing <= ForcingTerm::Constant, owner,
                           "forcing", static_cast<double>(forcing),
                           "must be NocedalWright, EisenstatWalker or Constant");
    detail::require_option(forcing_max > 0 && forcing_max < 1, owner, "forcing_max", forcing_max,
                           "must be in (0, 1)");
    detail::require_option(max_cg_iterations >= 0, owner, "max_cg_iterations",
                           static_cast<double>(max_cg_iterations), "must be >= 0 (0: the dimension)");
    line_search.validate(owner + ".line_search");
    detail::require_option(preconditioner != NewtonCgPreconditioner::UserDiagonal ||
                               static_cast<bool>(diagonal_preconditioner),
                           owner, "preconditioner", static_cast<double>(preconditioner),
                           "UserDiagonal needs diagonal_preconditioner to be set");
  }
};

/// Newton-CG (see the top of this file); needs Hessian-vector products.
template <Objective F>
Summary minimize(F& f, Vector<ScalarOf<F>>& x, const NewtonCgOptions& options) {
  HESSE_REQUIRE_OBJECTIVE(F, HessianVectorObjective, "hessian_vector(x, v, out)");
  using T = ScalarOf<F>;
  options.validate();
  constexpr bool kJacobiAvailable = detail::HasHessianDiagonal<F> || DenseHessianObjective<F>;
  HESSE_REQUIRE(options.preconditioner != NewtonCgPreconditioner::Jacobi || kJacobiAvailable,
                "NewtonCgOptions.preconditioner = Jacobi: the objective has neither "
                "hessian_diagonal(x, d) nor hessian(x, H); use UserDiagonal or None");
  const Index n = x.size();
  linalg::CgWorkspace<T> workspace;
  workspace.resize(n);
  linalg::DiagonalPreconditioner<T> jacobi{Vector<T>::Ones(n)};
  linalg::IdentityPreconditioner identity;
  Matrix<T> H;
  Eigen::VectorXd x_double, diagonal_double;
  Vector<T> p(n), minus_g(n), diagonal(n), x_new(n), g_new(n);
  T f_new = 0;
  detail::ForcingSequence forcing(options.forcing, options.forcing_max);
  const linalg::CgOptions cg_base{.max_iterations = options.max_cg_iterations};

  auto update_preconditioner = [&](Evaluator<F>& evaluator, const Vector<T>& x) {
    if (options.preconditioner == NewtonCgPreconditioner::UserDiagonal) {
      x_double = x.template cast<double>();
      diagonal_double.resize(n);
      options.diagonal_preconditioner(x_double, diagonal_double);
      HESSE_REQUIRE(diagonal_double.size() == n,
                    "NewtonCgOptions.diagonal_preconditioner returned " +
                        std::to_string(diagonal_double.size()) + " entries, expected " + std::to_string(n));
      diagonal = diagonal_double.cast<T>();
    } else if constexpr (detail::HasHessianDiagonal<F>) {
      evaluator.objective().hessian_diagonal(x, diagonal);
    } else if constexpr (DenseHessianObjective<F>) {
      evaluator.hessian(x, H);
      diagonal = H.diagonal();
    }
    diagonal = diagonal.cwiseAbs();
    const T largest = diagonal.allFinite() && n > 0 ? diagonal.maxCoeff() : T(0);
    const T floor = largest > T(0) ? T(1e-8) * largest : T(1);
    for (Index i = 0; i < n; ++i)
      jacobi.inverse_diagonal[i] = T(1) / (std::isfinite(static_cast<double>(diagonal[i]))
                                               ? std::max(diagonal[i], floor) : floor);
  };

  auto step = [&](Evaluator<F>& evaluator, Vector<T>& x, T& fx, Vector<T>& g, int) -> StepOutcome {
    StepOutcome outcome;
    linalg::CgOptions cg = cg_base;
    cg.relative_tolerance = forcing.next(static_cast<double>(g.norm()));
    detail::HessianOperator<F> hessian{evaluator, x};
    minus_g = -g;
    linalg::CgResult result;
    if (options.preconditioner == NewtonCgPreconditioner::None) {
      result = linalg::conjugate_gradient(hessian, identity, minus_g, p, cg, workspace);
    } else {
      update_preconditioner(evaluator, x);
      result = linalg::conjugate_gradient(hessian, jacobi, minus_g, p, cg, workspace);
    }
    outcome.inner_iterations = static_cast<int>(result.iterations);
    if (result.status == linalg::CgStatus::NegativeCurvature || result.status == linalg::CgStatus::Breakdown) {
      evaluator.event(result.status == linalg::CgStatus::NegativeCurvature ? "negative curvature in CG"
                                                                             : "CG breakdown");
      if (result.iterations <= 1 || !p.allFinite() || p.squaredNorm() == T(0)) {
        // N&W Alg. 7.1 at j = 0: (preconditioned) steepest descent, -M^{-1} g.
        if (options.preconditioner == NewtonCgPreconditioner::None) p = -g;
        else p = -jacobi.inverse_diagonal.cwiseProduct(g);
        evaluator.event("steepest descent fallback");
      }
    }
    if (!p.allFinite())
      return StepOutcome::fail(TerminationReason::NumericalFailure, "the Newton-CG step is not finite");
    const auto search = linesearch::line_search(evaluator, x, fx, g, p, 1.0, options.line_search, x_new,
                                                f_new, g_new);
    outcome.line_search_trials = search.trials;
    outcome.step_size = search.step;
    if (!search.success) {
      if (!(search.step > 0 && f_new < fx))
        return StepOutcome::fail(TerminationReason::LineSearchFailure,
                                 "line search failed along the Newton-CG direction: " + search.message);
      evaluator.event("line search failed, best trial kept");
    }
    x.swap(x_new);
    g.swap(g_new);
    fx = f_new;
    return outcome;
  };
  return run_solver("newton-cg", f, x, options.termination, options.callback, step);
}

}  // namespace hesse::optim
