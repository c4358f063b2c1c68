// Nonlinear least squares: minimise f(x) = 1/2 |r(x)|^2 for a residual
// objective r (hesse/objective/residual.hpp) with
//
//   Gauss-Newton          J^T J p = -J^T r, then an Armijo backtracking line
//                         search on f along p (Nocedal & Wright, 2nd ed.,
//                         section 10.3, eq. 10.23)
//   Levenberg-Marquardt   (J^T J + mu D) p = -J^T r with D = I or
//                         D = diag(J^T J) (Marquardt 1963), accepted when the
//                         gain ratio rho = (f(x) - f(x + p)) / (L(0) - L(p)) > 0,
//                         L(p) = 1/2 |r + J p|^2 the linear model; the damping
//                         follows H. B. Nielsen, "Damping parameter in
//                         Marquardt's method", IMM-REP-1999-05, DTU, 1999
//                         (also Madsen, Nielsen & Tingleff, "Methods for
//                         non-linear least squares problems", 2004, eq. 2.21
//                         and Alg. 3.16):
//                           rho > 0:  mu *= max(1/3, 1 - (2 rho - 1)^3), nu = 2
//                           else:     mu *= nu, nu *= 2   (step rejected)
//
// Linear solvers (LinearSolver):
//   DenseCholesky      the normal equations (J^T J + mu D) p = -J^T r by LLT;
//                      squares the condition number of J
//   DenseQR            Gauss-Newton: column-pivoted Householder QR of J,
//                      min |J p + r|. Levenberg-Marquardt: J = Q R once per
//                      Jacobian, then for each mu the small QR of the
//                      augmented system [R; sqrt(mu) D^1/2] p = -[Q^T r; 0]
//                      (equivalent to [J; sqrt(mu) D^1/2] p = -[r; 0];
//                      More 1978, "The Levenberg-Marquardt algorithm:
//                      implementation and theory", section 3)
//   ConjugateGradient  CGLS (Hestenes-Stiefel CG on the damped normal
//                      equations written with J and J^T; Bjorck, "Numerical
//                      Methods for Least Squares Problems", 1996, Alg. 7.4.1),
//                      matrix-free: one J v and one J^T u per iteration,
//                      caller-owned workspace, no allocation per iteration
//   Auto               DenseQR when the model has a dense Jacobian and
//                      n <= auto_dense_max_dimension, else ConjugateGradient
// The dense solvers on a model without jacobian() assemble J from n products
// J e_j.
//
// Both solvers run in the shared loop (solver_loop.hpp) on
// LeastSquaresObjective<R>. Summary counts (a documented mapping):
//   value                residual evaluations r(x)
//   gradient             gradients J^T r (from the dense J when there is one)
//   gauss_newton_vector  products J v and J^T u in CG, in assembling J from
//                        products, and in the matrix-free initial damping
//   hessian              dense Jacobians J(x) evaluated or assembled
// IterationRecord::step_size is the line-search step (Gauss-Newton) or the
// damping mu the step was solved with (Levenberg-Marquardt);
// inner_iterations are CG iterations. Levenberg-Marquardt counts each trial
// as an iteration; a rejected one leaves x unchanged and records the event
// "step rejected" (or "non-finite residuals: step rejected").
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/core/types.hpp"
#include "hesse/objective/residual.hpp"
#include "hesse/optim/solver_loop.hpp"

namespace hesse::optim {

enum class LinearSolver { Auto, DenseCholesky, DenseQR, ConjugateGradient };

/// "auto", "dense-cholesky", "dense-qr", "conjugate-gradient".
inline const char* to_string(LinearSolver solver) {
  switch (solver) {
    case LinearSolver::Auto: return "auto";
    case LinearSolver::DenseCholesky: return "dense-cholesky";
    case LinearSolver::DenseQR: return "dense-qr";
    case LinearSolver::ConjugateGradient: return "conjugate-gradient";
  }
  return "unknown";
}

/// D in (J^T J + mu D) p = -J^T r.
enum class DampingScaling {
  Identity,   ///< D = I (Levenberg 1944)
  Marquardt,  ///< D = diag(J^T J), clamped to [min_diagonal, max_diagonal] (Marquardt 1963)
};

/// Settings of the linear solve shared by both methods.
struct LeastSquaresLinearOptions {
  LinearSolver linear_solver = LinearSolver::Auto;
  /// Auto picks DenseQR up to this many unknowns (with a dense Jacobian).
  Index auto_dense_max_dimension = 200;
  /// CG stops when |J^T (J p + r) + mu D p| <= cg_relative_tolerance |J^T r|.
  double cg_relative_tolerance = 1e-10;
  /// CG iterations per solve (as Ceres' max_linear_solver_iterations); in
  /// floating point an ill-conditioned J needs more than n.
  Index cg_max_iterations = 500;
};

struct GaussNewtonOptions {
  TerminationOptions termination;
  LeastSquaresLinearOptions linear;
  /// c1 of the Armijo condition f(x + a p) <= f(x) + c1 a g.p.
  double sufficient_decrease = 1e-4;
  /// Residual evaluations per line search.
  int max_line_search_trials = 30;
  IterationCallback callback;

  /// Throws InvalidArgument "GaussNewtonOptions.<field> = <value>: <rule>".
  void validate() const;
};

struct LevenbergMarquardtOptions {
  TerminationOptions termination;
  LeastSquaresLinearOptions linear;
  DampingScaling scaling = DampingScaling::Marquardt;
  /// mu_0 = initial_damping (Marquardt scaling) or initial_damping * max_i (J^T J)_ii
  /// (identity scaling; Madsen, Nielsen & Tingleff 2004, eq. 3.14 and below).
  /// Matrix-free, the identity scaling uses the Rayleigh quotient |J g|^2 / |g|^2
  /// in place of max_i (J^T J)_ii.
  double initial_damping = 1e-3;
  /// Stop (NumericalFailure) when mu grows beyond this.
  double max_damping = 1e32;
  /// Bounds on the entries of D = diag(J^T J) (as Ceres' min/max_lm_diagonal).
  double min_diagonal = 1e-6;
  double max_diagonal = 1e32;
  IterationCallback callback;

  /// Throws InvalidArgument "LevenbergMarquardtOptions.<field> = <value>: <rule>".
  void validate() const;
};

namespace least_squares_detail {

/// Throws InvalidArgument "<owner>.<field> = <value>: <rule>".
[[noreturn]] inline void invalid(const char* owner, const std::string& field, double value,
                                 const char* rule) {
  std::ostringstream message;
  message << owner << "." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

inline void validate_linear(const char* owner, const LeastSquaresLinearOptions& o) {
  if (!(o.linear_solver >= LinearSolver::Auto && o.linear_solver <= LinearSolver::ConjugateGradient))
    invalid(owner, "linear.linear_solver", double(o.linear_solver),
            "must be Auto, DenseCholesky, DenseQR or ConjugateGradient");
  if (!(o.auto_dense_max_dimension >= 0))
    invalid(owner, "linear.auto_dense_max_dimension", double(o.auto_dense_max_dimension), "must be >= 0");
  if (!(std::isfinite(o.cg_relative_tolerance) && o.cg_relative_tolerance > 0 &&
        o.cg_relative_tolerance < 1))
    invalid(owner, "linear.cg_relative_tolerance", o.cg_relative_tolerance, "must be in (0, 1)");
  if (!(o.cg_max_iterations >= 1))
    invalid(owner, "linear.cg_max_iterations", double(o.cg_max_iterations), "must be >= 1");
}

/// Workspace of CGLS, sized once per solve call; iterations allocate nothing.
template <class T>
struct CglsWorkspace {
  Vector<T> residual;  ///< data-space residual -r - J p  (m)
  Vector<T> q;         ///< J S d  (m)
  Vector<T> s;         ///< normal-equations residual S J^T(-r - J p) - mu E z  (n)
  Vector<T> d;         ///< search direction  (n)
  Vector<T> scaled;    ///< S d  (n)
  Vector<T> weight;    ///< E = S D S, the damping in the scaled variables  (n)
  void resize(Index m, Index n) {
    if (residual.size() != m) {
      residual.resize(m);
      q.resize(m);
    }
    if (s.size() != n) {
      s.resize(n);
      d.resize(n);
      scaled.resize(n);
      weight.resize(n);
    }
  }
};

struct CglsResult {
  Index iterations = 0;
  bool converged = false;
  bool finite = true;
};

/// CGLS for min |J p + r|^2 + mu p^T D p (Bjorck 1996, Alg. 7.4.1, with the
/// damping term): CG on (J^T J + mu D) p = -J^T r that applies J and J^T
/// separately. With `scale` (may be nullptr) the unknowns are p = S z,
/// S = diag(scale), i.e. CG runs on S (J^T J + mu D) S z = -S J^T r: the
/// column scaling S = D^-1/2 is the Jacobi preconditioner of the normal
/// equations. Stops when |S (J^T (J p + r) + mu D p)| <= relative_tolerance
/// |S J^T r|. `diagonal` is D (ignored when mu = 0). On return
/// ws.residual = -(r + J p), so |r + J p| needs no further product.
template <class R>
CglsResult cgls(R& model, const Vector<ScalarOf<R>>& x, const Vector<ScalarOf<R>>& r, double mu,
                const Vector<ScalarOf<R>>& diagonal, const Vector<ScalarOf<R>>* scale,
                double relative_tolerance, Index max_iterations, Vector<ScalarOf<R>>& p,
                CglsWorkspace<ScalarOf<R>>& ws) {
  using T = ScalarOf<R>;
  const Index n = x.size();
  ws.resize(r.size(), n);
  p.setZero(n);  // holds z until the end
  CglsResult result;
  const T damping = static_cast<T>(mu);
  if (damping > T(0)) {
    if (scale)
      ws.weight = scale->cwiseAbs2().cwiseProduct(diagonal);
    else
      ws.weight = diagonal;
  }
  auto apply_jt = [&](const Vector<T>& u, Vector<T>& out) {
    model.jacobian_transpose_vector(x, u, out);
    if (scale) out.array() *= scale->array();
  };
  ws.residual = -r;
  apply_jt(ws.residual, ws.s);
  ws.d = ws.s;
  T gamma = ws.s.squaredNorm();
  const double tolerance = relative_tolerance * std::sqrt(static_cast<double>(gamma));
  if (!std::isfinite(static_cast<double>(gamma))) {
    result.finite = false;
    return result;
  }
  result.converged = gamma == T(0);
  while (!result.converged && result.iterations < max_iterations) {
    if (scale) {
      ws.scaled = scale->cwiseProduct(ws.d);
      model.jacobian_vector(x, ws.scaled, ws.q);
    } else {
      model.jacobian_vector(x, ws.d, ws.q);
    }
    ++result.iterations;
    T delta = ws.q.squaredNorm();
    if (damping > T(0)) delta += damping * ws.d.cwiseAbs2().dot(ws.weight);
    if (!(delta > T(0)) || !std::isfinite(static_cast<double>(delta))) {
      result.finite = std::isfinite(static_cast<double>(delta));
      break;
    }
    const T alpha = gamma / delta;
    p.noalias() += alpha * ws.d;
    ws.residual.noalias() -= alpha * ws.q;
    apply_jt(ws.residual, ws.s);
    if (damping > T(0)) ws.s.noalias() -= damping * ws.weight.cwiseProduct(p);
    const T gamma_next = ws.s.squaredNorm();
    if (!std::isfinite(static_cast<double>(gamma_next))) {
      result.finite = false;
      break;
    }
    result.converged = std::sqrt(static_cast<double>(gamma_next)) <= tolerance;
    ws.d = ws.s + (gamma_next / gamma) * ws.d;
    gamma = gamma_next;
  }
  if (scale) p.array() *= scale->array();
  return result;
}

/// The state both methods share: the residual model, the residuals at the
/// current point, the dense Jacobian and its factorisations, and scratch.
template <class R>
class Core {
 public:
  using T = ScalarOf<R>;
  using Problem = LeastSquaresObjective<R>;

  Core(R& model, const LeastSquaresLinearOptions& options, bool marquardt_scaling,
       const char* method)
      : model_(model), marquardt_(marquardt_scaling), method_(method) {
    n_ = model.dimension();
    m_ = model.num_residuals();
    HESSE_REQUIRE(m_ >= 0, std::string(method) + ": num_residuals() = " + std::to_string(m_) +
                               ": must be >= 0");
    solver_ = options.linear_solver;
    if (solver_ == LinearSolver::Auto)
      solver_ = (DenseJacobianResidual<R> && n_ <= options.auto_dense_max_dimension)
                    ? LinearSolver::DenseQR
                    : LinearSolver::ConjugateGradient;
    diagonal_.setOnes(n_);
    p_.resize(n_);
    jp_.resize(m_);
    x_trial_.resize(n_);
    r_trial_.resize(m_);
  }

  LinearSolver solver() const { return solver_; }
  bool dense() const { return solver_ != LinearSolver::ConjugateGradient; }
  Vector<T>& residuals() { return r_; }
  Vector<T>& step() { return p_; }
  Vector<T>& trial_point() { return x_trial_; }
  Vector<T>& trial_residuals() { return r_trial_; }

  /// Takes the residuals the loop's first evaluation left in the adapter.
  void start(Problem& problem) {
    r_ = problem.last_residuals();
    HESSE_REQUIRE(r_.size() == m_, std::string(method_) + ": residuals() returned " +
                                       std::to_string(r_.size()) +
                                       " entries, num_residuals() is " + std::to_string(m_));
  }

  /// r(x) into `out`, counted as a value evaluation; returns 1/2 |r|^2.
  T evaluate_residuals(Evaluator<Problem>& evaluator, const Vector<T>& x, Vector<T>& out) {
    ++evaluator.summary().counts.value;
    model_.residuals(x, out);
    HESSE_REQUIRE(out.size() == m_, std::string(method_) + ": residuals() returned " +
                                        std::to_string(out.size()) +
                                        " entries, num_residuals() is " + std::to_string(m_));
    return T(0.5) * out.squaredNorm();
  }

  /// Everything that depends on J at x: the dense J (and J^T J for Cholesky,
  /// J = QR for Levenberg-Marquardt with QR), the scaling D, and g = J^T r
  /// (from J when it is dense). False when J or g is not finite.
  bool linearize(Evaluator<Problem>& evaluator, const Vector<T>& x, Vector<T>& g,
                 bool compute_gradient, bool factor_qr_once) {
    auto& counts = evaluator.summary().counts;
    if (dense()) {
      ++counts.hessian;
      if constexpr (DenseJacobianResidual<R>) {
        model_.jacobian(x, jacobian_);
        HESSE_REQUIRE(jacobian_.rows() == m_ && jacobian_.cols() == n_,
                      std::string(method_) + ": jacobian() returned a " +
                          std::to_string(jacobian_.rows()) + " x " + std::to_string(jacobian_.cols()) +
                          " matrix, expected " + std::to_string(m_) + " x " + std::to_string(n_));
      } else {
        jacobian_.resize(m_, n_);
        unit_.setZero(n_);
        for (Index j = 0; j < n_; ++j) {
          unit_[j] = T(1);
          model_.jacobian_vector(x, unit_, column_);
          unit_[j] = T(0);
          jacobian_.col(j) = column_;
        }
        counts.gauss_newton_vector += n_;
      }
      if (!jacobian_.allFinite()) return false;
      if (compute_gradient) {
        ++counts.gradient;
        g.noalias() = jacobian_.transpose() * r_;
      }
      if (solver_ == LinearSolver::DenseCholesky) {
        // Lower triangle of J^T J; LLT reads only that triangle.
        normal_.resize(n_, n_);
        normal_.template triangularView<Eigen::Lower>().setZero();
        normal_.template selfadjointView<Eigen::Lower>().rankUpdate(jacobian_.transpose());
      }
      if (marquardt_) diagonal_ = jacobian_.colwise().squaredNorm().transpose();
      if (solver_ == LinearSolver::DenseQR && factor_qr_once) {
        qr_.compute(jacobian_);
        qtr_ = r_;
        qtr_.applyOnTheLeft(qr_.householderQ().adjoint());
      }
    } else {
      if (compute_gradient) {
        ++counts.gradient;
        model_.jacobian_transpose_vector(x, r_, g);
      }
      if (marquardt_) {
        // diag(J^T J)_j = |J e_j|^2: n products per Jacobian (documented cost).
        unit_.setZero(n_);
        for (Index j = 0; j < n_; ++j) {
          unit_[j] = T(1);
          model_.jacobian_vector(x, unit_, column_);
          unit_[j] = T(0);
          diagonal_[j] = column_.squaredNorm();
        }
        counts.gauss_newton_vector += n_;
      }
    }
    if (!g.allFinite()) return false;
    return true;
  }

  /// D clamped to its bounds (Marquardt scaling only).
  void clamp_diagonal(double low, double high) {
    diagonal_ = diagonal_.cwiseMax(static_cast<T>(low)).cwiseMin(static_cast<T>(high));
  }
  const Vector<T>& diagonal() const { return diagonal_; }

  /// max_i (J^T J)_ii from the dense J, or |J g|^2 / |g|^2 matrix-free.
  double curvature_scale(Evaluator<Problem>& evaluator, const Vector<T>& x, const Vector<T>& g) {
    if (dense()) {
      return n_ == 0 ? 0.0 : static_cast<double>(jacobian_.colwise().squaredNorm().maxCoeff());
    }
    ++evaluator.summary().counts.gauss_newton_vector;
    model_.jacobian_vector(x, g, column_);
    const double gg = static_cast<double>(g.squaredNorm());
    return gg > 0 ? static_cast<double>(column_.squaredNorm()) / gg : 0.0;
  }

  struct Solve {
    bool ok = true;
    Index inner_iterations = 0;
    std::string event;
  };

  /// p solving (J^T J + mu D) p = -g (mu = 0: Gauss-Newton), and jp_ = J p.
  Solve solve(Evaluator<Problem>& evaluator, const Vector<T>& x, const Vector<T>& g, double mu,
              const LeastSquaresLinearOptions& options) {
    Solve out;
    const T damping = static_cast<T>(mu);
    switch (solver_) {
      case LinearSolver::DenseCholesky: {
        system_ = normal_;
        if (mu > 0) system_.diagonal() += damping * diagonal_;
        llt_.compute(system_);
        if (llt_.info() != Eigen::Success && mu == 0) {
          // Singular J^T J in Gauss-Newton: the smallest shift tau I, growing
          // tenfold from eps * max(1, max_ii), that factorises.
          const double scale = std::max(1.0, static_cast<double>(normal_.diagonal().maxCoeff()));
          for (double tau = std::numeric_limits<T>::epsilon() * scale;
               llt_.info() != Eigen::Success && tau < 1e30 * scale; tau *= 10) {
            system_ = normal_;
            system_.diagonal().array() += static_cast<T>(tau);
            llt_.compute(system_);
          }
          out.event = "normal equations singular: shifted";
        }
        if (llt_.info() != Eigen::Success) {
          out.ok = false;
          return out;
        }
        p_ = -g;
        llt_.solveInPlace(p_);
        jp_.noalias() = jacobian_ * p_;
        break;
      }
      case LinearSolver::DenseQR: {
        if (mu == 0) {
          // Gauss-Newton: min |J p + r| by column-pivoted QR (rank-revealing).
          pivoted_qr_.compute(jacobian_);
          p_ = pivoted_qr_.solve(-r_);
        } else {
          // [R; sqrt(mu) D^1/2] p = -[Q^T r (first k); 0], k = min(m, n).
          const Index k = std::min(m_, n_);
          augmented_.setZero(k + n_, n_);
          augmented_.topRows(k) = qr_.matrixQR().topRows(k).template triangularView<Eigen::Upper>();
          augmented_.bottomRows(n_).diagonal() = (damping * diagonal_).cwiseSqrt();
          augmented_rhs_.setZero(k + n_);
          augmented_rhs_.head(k) = -qtr_.head(k);
          small_qr_.compute(augmented_);
          p_ = small_qr_.solve(augmented_rhs_);
        }
        jp_.noalias() = jacobian_ * p_;
        break;
      }
      case LinearSolver::ConjugateGradient:
      case LinearSolver::Auto: {
        // With Marquardt scaling D is known: precondition with S = D^-1/2.
        if (marquardt_) scale_ = diagonal_.cwiseSqrt().cwiseInverse();
        const CglsResult result =
            cgls(model_, x, r_, mu, diagonal_, marquardt_ ? &scale_ : nullptr,
                 options.cg_relative_tolerance, options.cg_max_iterations, p_, cgls_);
        evaluator.summary().counts.gauss_newton_vector += 2 * result.iterations + 1;
        out.inner_iterations = result.iterations;
        if (!result.finite) {
          out.ok = false;
          return out;
        }
        if (!result.converged) out.event = "cg: iteration limit";
        jp_ = -cgls_.residual - r_;
        break;
      }
    }
    out.ok = p_.allFinite() && jp_.allFinite();
    return out;
  }

  /// The decrease of the linear model, L(0) - L(p) = -g.p - 1/2 |J p|^2.
  double predicted_reduction(const Vector<T>& g) const {
    return -static_cast<double>(g.dot(p_)) - 0.5 * static_cast<double>(jp_.squaredNorm());
  }

 private:
  R& model_;
  bool marquardt_;
  const char* method_;
  LinearSolver solver_ = LinearSolver::Auto;
  Index n_ = 0, m_ = 0;
  Vector<T> r_, p_, jp_, x_trial_, r_trial_, diagonal_, scale_, unit_, column_, qtr_, augmented_rhs_;
  Matrix<T> jacobian_, normal_, system_, augmented_;
  Eigen::LLT<Matrix<T>> llt_;
  Eigen::HouseholderQR<Matrix<T>> qr_, small_qr_;
  Eigen::ColPivHouseholderQR<Matrix<T>> pivoted_qr_;
  CglsWorkspace<T> cgls_;
};

}  // namespace least_squares_detail

inline void GaussNewtonOptions::validate() const {
  const char* owner = "GaussNewtonOptions";
  termination.validate(owner);
  least_squares_detail::validate_linear(owner, linear);
  if (!(std::isfinite(sufficient_decrease) && sufficient_decrease > 0 && sufficient_decrease < 0.5))
    least_squares_detail::invalid(owner, "sufficient_decrease", sufficient_decrease,
                                  "must be in (0, 0.5)");
  if (!(max_line_search_trials >= 1))
    least_squares_detail::invalid(owner, "max_line_search_trials", max_line_search_trials,
                                  "must be >= 1");
}

inline void LevenbergMarquardtOptions::validate() const {
  const char* owner = "LevenbergMarquardtOptions";
  if (!(scaling == DampingScaling::Identity || scaling == DampingScaling::Marquardt))
    least_squares_detail::invalid(owner, "scaling", double(scaling), "must be Identity or Marquardt");
  termination.validate(owner);
  least_squares_detail::validate_linear(owner, linear);
  auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive(initial_damping))
    least_squares_detail::invalid(owner, "initial_damping", initial_damping, "must be finite and > 0");
  if (!positive(max_damping) || max_damping <= initial_damping)
    least_squares_detail::invalid(owner, "max_damping", max_damping,
                                  "must be finite and > initial_damping");
  if (!positive(min_diagonal))
    least_squares_detail::invalid(owner, "min_diagonal", min_diagonal, "must be finite and > 0");
  if (!positive(max_diagonal) || max_diagonal < min_diagonal)
    least_squares_detail::invalid(owner, "max_diagonal", max_diagonal,
                                  "must be finite and >= min_diagonal");
}

/// Gauss-Newton with an Armijo backtracking line search on f = 1/2 |r|^2.
/// The search needs only residuals, so it is done here rather than with the
/// line searches of hesse/linesearch, whose trials also evaluate J^T r.
template <ResidualObjective R>
Summary minimize(R& residual_objective, Vector<ScalarOf<R>>& x, const GaussNewtonOptions& options) {
  using T = ScalarOf<R>;
  using Problem = LeastSquaresObjective<R>;
  options.validate();
  Problem problem(residual_objective);
  least_squares_detail::Core<R> core(residual_objective, options.linear, false, "gauss_newton");
  bool linearized = false;

  auto step = [&](Evaluator<Problem>& evaluator, Vector<T>& x_k, T& fx, Vector<T>& g,
                  int iteration) -> StepOutcome {
    if (iteration == 1) core.start(problem);
    if (!linearized && !core.linearize(evaluator, x_k, g, false, false))
      return StepOutcome::fail(TerminationReason::NumericalFailure,
                               "the Jacobian is not finite at the current point");
    linearized = true;
    const auto solve = core.solve(evaluator, x_k, g, 0.0, options.linear);
    StepOutcome outcome;
    outcome.inner_iterations = static_cast<int>(solve.inner_iterations);
    outcome.event = solve.event;
    // A failure keeps the work done (CG iterations, trials) in the record.
    auto fail = [&](TerminationReason reason, std::string why) {
      outcome.ok = false;
      outcome.failure = reason;
      outcome.message = std::move(why);
      return outcome;
    };
    if (!solve.ok)
      return fail(TerminationReason::NumericalFailure, "the Gauss-Newton system could not be solved");
    const Vector<T>& p = core.step();
    const double f0 = static_cast<double>(fx);
    const double slope = static_cast<double>(g.dot(p));
    if (!(slope < 0))
      return fail(TerminationReason::LineSearchFailure,
                  "the Gauss-Newton step is not a descent direction (g.p = " +
                      std::to_string(slope) + ")");
    // The model's decrease L(0) - L(p) = -g.p / 2 (for the exact step) below
    // the resolution of f: no line search can verify a decrease any more.
    const double resolution =
        std::max(options.termination.function_tolerance, 10.0 * std::numeric_limits<T>::epsilon());
    if (-0.5 * slope <= resolution * std::abs(f0))
      return fail(TerminationReason::FunctionTolerance,
                  "predicted decrease of f below function_tolerance");

    // Armijo backtracking (N&W eq. 3.4) with the quadratic interpolant of
    // phi(0), phi'(0), phi(a) (N&W eq. 3.58), safeguarded into [0.1 a, 0.5 a].
    Vector<T>& x_trial = core.trial_point();
    Vector<T>& r_trial = core.trial_residuals();
    double a = 1;
    for (int trial = 1;; ++trial) {
      x_trial = x_k + static_cast<T>(a) * p;
      const double f_trial = static_cast<double>(core.evaluate_residuals(evaluator, x_trial, r_trial));
      outcome.line_search_trials = trial;
      if (f_trial < f0 && f_trial <= f0 + options.sufficient_decrease * a * slope) break;
      if (!std::isfinite(f_trial)) {
        evaluator.event("non-finite residuals: step shortened");
        a *= 0.5;
      } else {
        const double next = -slope * a * a / (2 * (f_trial - f0 - slope * a));
        a = std::clamp(std::isfinite(next) ? next : 0.5 * a, 0.1 * a, 0.5 * a);
      }
      if (trial == options.max_line_search_trials)
        return fail(TerminationReason::LineSearchFailure,
                    "no sufficient decrease within max_line_search_trials = " +
                        std::to_string(options.max_line_search_trials));
    }
    outcome.step_size = a;
    x_k.swap(x_trial);
    core.residuals().swap(r_trial);
    fx = T(0.5) * core.residuals().squaredNorm();
    if (!core.linearize(evaluator, x_k, g, true, false))
      return fail(TerminationReason::NumericalFailure,
                  "the Jacobian or gradient is not finite at the accepted point");
    evaluator.offer(x_k, fx, g);
    return outcome;
  };
  return run_solver("gauss_newton", problem, x, options.termination, options.callback, step);
}

/// Levenberg-Marquardt with Nielsen's damping update (see the top of this file).
template <ResidualObjective R>
Summary minimize(R& residual_objective, Vector<ScalarOf<R>>& x,
                 const LevenbergMarquardtOptions& options) {
  using T = ScalarOf<R>;
  using Problem = LeastSquaresObjective<R>;
  options.validate();
  Problem problem(residual_objective);
  const bool marquardt = options.scaling == DampingScaling::Marquardt;
  least_squares_detail::Core<R> core(residual_objective, options.linear, marquardt,
                                     "levenberg_marquardt");
  double mu = 0;
  double nu = 2;
  bool linearized = false;

  auto step = [&](Evaluator<Problem>& evaluator, Vector<T>& x_k, T& fx, Vector<T>& g,
                  int iteration) -> StepOutcome {
    if (iteration == 1) core.start(problem);
    if (!linearized) {
      if (!core.linearize(evaluator, x_k, g, false, true))
        return StepOutcome::fail(TerminationReason::NumericalFailure,
                                 "the Jacobian is not finite at the current point");
      if (marquardt) core.clamp_diagonal(options.min_diagonal, options.max_diagonal);
      linearized = true;
    }
    if (iteration == 1) {
      mu = options.initial_damping;
      if (!marquardt) mu *= std::max(core.curvature_scale(evaluator, x_k, g), 1e-300);
    }

    StepOutcome outcome;
    outcome.step_size = mu;
    const auto solve = core.solve(evaluator, x_k, g, mu, options.linear);
    outcome.inner_iterations = static_cast<int>(solve.inner_iterations);
    if (!solve.event.empty()) evaluator.event(solve.event);

    auto reject = [&](const char* why) -> StepOutcome {
      outcome.event = why;
      const double step_norm = solve.ok ? static_cast<double>(core.step().norm()) : 0.0;
      mu *= nu;
      nu *= 2;
      const double tolerance = options.termination.step_tolerance;
      if (solve.ok && tolerance > 0 &&
          step_norm <= tolerance * (1.0 + static_cast<double>(x_k.norm()))) {
        outcome.ok = false;
        outcome.failure = TerminationReason::StepTolerance;
        outcome.message = "rejected step below step_tolerance: no further progress possible";
      } else if (!(mu <= options.max_damping)) {
        outcome.ok = false;
        outcome.failure = TerminationReason::NumericalFailure;
        outcome.message = "the damping exceeded max_damping = " + std::to_string(options.max_damping);
      }
      return outcome;
    };
    if (!solve.ok) return reject("linear solve failed: step rejected");

    Vector<T>& x_trial = core.trial_point();
    Vector<T>& r_trial = core.trial_residuals();
    x_trial = x_k + core.step();
    const double f_trial = static_cast<double>(core.evaluate_residuals(evaluator, x_trial, r_trial));
    if (!std::isfinite(f_trial)) return reject("non-finite residuals: step rejected");
    const double predicted = core.predicted_reduction(g);
    const double actual = static_cast<double>(fx) - f_trial;
    const double rho = predicted > 0 ? actual / predicted : -1.0;
    if (!(rho > 0)) return reject("step rejected");

    // Accepted (Nielsen 1999; Madsen, Nielsen & Tingleff 2004, eq. 2.21).
    const double t = 2 * rho - 1;
    mu *= std::max(1.0 / 3.0, 1.0 - t * t * t);
    nu = 2;
    x_k.swap(x_trial);
    core.residuals().swap(r_trial);
    fx = static_cast<T>(f_trial);
    if (!core.linearize(evaluator, x_k, g, true, true))
      return StepOutcome::fail(TerminationReason::NumericalFailure,
                               "the Jacobian or gradient is not finite at the accepted point");
    if (marquardt) core.clamp_diagonal(options.min_diagonal, options.max_diagonal);
    evaluator.offer(x_k, fx, g);
    return outcome;
  };
  return run_solver("levenberg_marquardt", problem, x, options.termination, options.callback, step);
}

/// minimize(r, x, GaussNewtonOptions{}) with default options.
template <ResidualObjective R>
Summary gauss_newton(R& residual_objective, Vector<ScalarOf<R>>& x,
                     const GaussNewtonOptions& options = {}) {
  return minimize(residual_objective, x, options);
}

/// minimize(r, x, LevenbergMarquardtOptions{}) with default options.
template <ResidualObjective R>
Summary levenberg_marquardt(R& residual_objective, Vector<ScalarOf<R>>& x,
                            const LevenbergMarquardtOptions& options = {}) {
  return minimize(residual_objective, x, options);
}

}  // namespace hesse::optim
