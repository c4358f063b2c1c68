// Hessian-free optimization (Martens 2010, "Deep learning via Hessian-free
// optimization", ICML; details from Martens & Sutskever 2012, "Training deep
// and recurrent networks with Hessian-free optimization", in Neural Networks:
// Tricks of the Trade), as a mini-batch Optimizer. One step on batch B:
//
//   1. f_B(x) and g = grad f_B(x) on the gradient batch B.
//   2. A curvature batch C, a random subset of B of round(curvature_fraction |B|)
//      samples (at least one). Martens 2010 sect. 4.3 computes curvature on
//      smaller batches than the gradient, and Byrd et al. 2011 argue that
//      curvature samples much smaller than the gradient's suffice; the
//      default 1/10 is our choice.
//   3. The damped quadratic model on C (Martens 2010 eq. 1 with Tikhonov
//      damping, sect. 4.1):
//        phi(p) = g^T p + 1/2 p^T (G_C + lambda I) p,
//      G_C the Gauss-Newton matrix (Schraudolph 2002; Martens 2010 sect. 4.2)
//      or, as an option, the Hessian of f_C.
//   4. Preconditioned CG on phi (martens_cg below) from the previous solution
//      decayed by cg_warm_start_decay = 0.95 (Martens 2010 sect. 4.5), stopped
//      by Martens' relative-progress rule (sect. 4.4), keeping the iterates at
//      i = ceil(1.3^j) for backtracking (sect. 4.6). The preconditioner is
//      Martens' (sect. 4.7)
//        M = [diag((1/|C|) sum_{i in C} grad f_i(x)^2) + lambda I]^0.75,
//      the empirical Fisher diagonal from per-sample gradients on C: one
//      batched pass when the objective has squared_gradient_sum (or its
//      network() does: every network of Dense layers), about a gradient on
//      C; otherwise |C| single-sample gradients.
//   5. CG backtracking (sect. 4.6): from the last CG iterate back through the
//      kept ones, evaluate f_B(x + p_i) and stop as soon as it gets worse;
//      the best p_i is the step p.
//   6. Levenberg-Marquardt damping (Martens 2010 sect. 4.1; Martens &
//      Sutskever 2012): the reduction ratio
//        rho = (f_B(x + p) - f_B(x)) / (q(p) - q(0)),
//      q the undamped model g^T p + 1/2 p^T G_C p (= phi(p) - lambda/2 |p|^2,
//      known from CG without another product). rho < 1/4: lambda *= 3/2;
//      rho > 3/4: lambda *= 2/3. Both values of rho are on the gradient batch
//      B, which the backtracking has already evaluated, so rho costs nothing.
//   7. A backtracking Armijo line search along p on B (Martens & Sutskever
//      2012, sufficient decrease c = 1e-2), first trial step `lr`;
//      when lr = 1 and f_B(x + p) from the backtracking already satisfies the
//      Armijo condition, that is the step and no search runs.
//
// The last CG iterate (not the backtracked one) seeds the next CG run, as in
// Martens 2010 sect. 4.6. Structural damping (Martens & Sutskever 2011, for
// recurrent networks) is not implemented.
//
// Numerical trouble (NaN/Inf in the loss, gradient or curvature products, a
// CG step that is not a descent direction, a failed line search) rejects the
// step, leaves x as it was, multiplies lambda by 3/2, clears the warm start
// after a NaN, and names what happened in StepResult::event.
//
// This header is also the family header: it declares make_hessian_free_family
// (hessian-free, subsampled-newton, slbfgs) and the pieces the three share.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hesse/core/error.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"
#include "hesse/linalg/cg.hpp"
#include "hesse/linesearch/line_search.hpp"
#include "hesse/optim/evaluator.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::optim {

// ---------------------------------------------------------------- the family

/// Builds "hessian-free", "subsampled-newton" or "slbfgs" with `settings`
/// overriding the defaults (unknown settings throw InvalidArgument naming
/// them); returns nullptr for any other name.
template <class T>
std::unique_ptr<Optimizer<T>> make_hessian_free_family(const std::string& name,
                                                       const OptimizerSettings& settings);

/// The names make_hessian_free_family knows, with a one-line description.
std::vector<std::pair<std::string, std::string>> hessian_free_family_catalogue();

/// Which curvature matrix a second-order step multiplies by.
enum class CurvatureProduct {
  GaussNewton,  ///< G = J^T H_loss J, positive semi-definite for convex losses
  Hessian,      ///< the exact Hessian; may be indefinite
};

namespace detail {

/// Throws InvalidArgument naming `optimizer` and the setting to change when f
/// lacks the product `kind` needs.
template <class T>
void require_curvature(const StochasticObjective<T>& f, CurvatureProduct kind,
                       const char* optimizer) {
  if (kind == CurvatureProduct::GaussNewton && !f.has_gauss_newton_vector())
    throw InvalidArgument(std::string(optimizer) +
                          ": gauss_newton = 1 needs an objective with gauss_newton_vector(x, v, "
                          "Gv); this one has none (set gauss_newton = 0 for Hessian products)");
  if (kind == CurvatureProduct::Hessian && !f.has_hessian_vector())
    throw InvalidArgument(std::string(optimizer) +
                          ": gauss_newton = 0 needs an objective with hessian_vector(x, v, Hv); "
                          "this one has none");
}

template <class T>
void curvature_vector(StochasticObjective<T>& f, CurvatureProduct kind, const Vector<T>& x,
                      const Vector<T>& v, Vector<T>& out) {
  if (kind == CurvatureProduct::GaussNewton)
    f.gauss_newton_vector(x, v, out);
  else
    f.hessian_vector(x, v, out);
}

/// round(fraction |batch|) samples, at least 1; a positive `fixed_size` wins
/// (capped at |batch|).
Index subset_size(Index batch_size, double fraction, Index fixed_size = 0);

/// Makes `subset` a uniformly drawn subset of `batch` with `count` entries
/// (partial Fisher-Yates on a copy). When count = |batch| the subset is the
/// batch in its order and `rng` is not used. Reuses subset's capacity.
void draw_subset(Rng& rng, std::span<const Index> batch, Index count, std::vector<Index>& subset);

/// The selected samples of a StochasticObjective as a DifferentiableObjective
/// (hesse/objective/concepts.hpp), so the line searches of hesse/linesearch
/// run on a mini-batch unchanged.
template <class T>
struct SelectedSamples {
  using Scalar = T;
  StochasticObjective<T>* objective = nullptr;
  Index dimension() const { return objective->dimension(); }
  T value(const Vector<T>& x) { return objective->value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    return objective->value_and_gradient(x, g);
  }
};

/// linesearch::line_search on the currently selected samples of f. Keeps its
/// Evaluator (and the Evaluator's buffers) from step to step.
template <class T>
class BatchLineSearch {
 public:
  BatchLineSearch() : evaluator_(samples_, termination_, summary_) {}
  BatchLineSearch(const BatchLineSearch&) = delete;
  BatchLineSearch& operator=(const BatchLineSearch&) = delete;

  /// Sizes the Evaluator's buffers at a finite (x, fx, g) once, so that a
  /// first search in a later step allocates nothing.
  void reserve(const Vector<T>& x, T fx, const Vector<T>& g) {
    if (!evaluator_.has_best()) evaluator_.offer(x, fx, g);
  }

  /// Adds the trials' gradient evaluations to `gradient_evaluations`.
  linesearch::LineSearchResult run(StochasticObjective<T>& f, const Vector<T>& x, T fx,
                                   const Vector<T>& g, const Vector<T>& direction,
                                   double initial_step, const linesearch::LineSearchOptions& options,
                                   Vector<T>& x_new, T& f_new, Vector<T>& g_new,
                                   Index& gradient_evaluations) {
    samples_.objective = &f;
    const long long before = summary_.counts.gradient;
    linesearch::LineSearchResult result = linesearch::line_search(
        evaluator_, x, fx, g, direction, initial_step, options, x_new, f_new, g_new);
    gradient_evaluations += static_cast<Index>(summary_.counts.gradient - before);
    return result;
  }

 private:
  SelectedSamples<T> samples_;
  TerminationOptions termination_;
  Summary summary_;
  Evaluator<SelectedSamples<T>> evaluator_;
};

template <class T>
bool is_finite(T value) {
  return std::isfinite(static_cast<double>(value));
}

}  // namespace detail

// ---------------------------------------------------------------- Martens' CG

enum class MartensCgStatus {
  ProgressStalled,    ///< Martens' relative-progress rule held (Martens 2010 sect. 4.4)
  Converged,          ///< |A p + g| <= relative_residual_tolerance |g|
  IterationLimit,     ///< max_iterations reached
  NegativeCurvature,  ///< d^T A d <= 0; p is the iterate before d
  Breakdown,          ///< NaN/Inf in the operator's output or the recurrences
};

const char* to_string(MartensCgStatus status);

struct MartensCgOptions {
  Index max_iterations = 250;
  /// epsilon of the rule: stop at iteration i when i > k, phi_i < 0 and
  /// (phi_i - phi_{i-k}) / phi_i < k epsilon, k = max(min_window, window_fraction i).
  double progress_tolerance = 5e-4;
  Index min_window = 10;
  double window_fraction = 0.1;
  /// A floor under Martens' rule: an exactly solved system (a small
  /// quadratic) stops instead of iterating on rounding noise.
  double relative_residual_tolerance = 1e-10;
  /// gamma: the iterates i = ceil(gamma^j), j = 0, 1, ... are kept for
  /// backtracking (Martens 2010 sect. 4.6).
  double backtrack_ratio = 1.3;

  /// Throws InvalidArgument naming owner.field, its value and the rule.
  void validate(const std::string& owner) const;
};

struct MartensCgResult {
  MartensCgStatus status = MartensCgStatus::IterationLimit;
  Index iterations = 0;           ///< CG iterations: p is p_iterations
  Index products = 0;             ///< operator applications, the warm start's included
  bool warm_started = false;      ///< started from the given p (phi(p_0) < 0) rather than 0
  double initial_model_value = 0; ///< phi(p_0)
  double model_value = 0;         ///< phi(p) at the returned p
};

/// Scratch of martens_cg, sized once per (dimension, options).
template <class T>
struct MartensCgWorkspace {
  Vector<T> r, z, d, Ad;
  Vector<double> phi;                ///< phi(p_i), i = 0 .. iterations
  Matrix<T> saved;                   ///< kept iterates, one per column
  std::vector<Index> save_at;        ///< the iterations ceil(gamma^j), increasing
  std::vector<double> saved_phi;     ///< phi of each kept iterate
  Index saved_count = 0;             ///< columns of `saved` filled by the last solve

  void resize(Index n, const MartensCgOptions& options) {
    if (r.size() == n && phi.size() == options.max_iterations + 1 &&
        ratio_ == options.backtrack_ratio)
      return;
    r.resize(n);
    z.resize(n);
    d.resize(n);
    Ad.resize(n);
    phi.resize(options.max_iterations + 1);
    save_at.clear();
    for (double power = 1; power <= static_cast<double>(options.max_iterations) + 0.5;
         power *= options.backtrack_ratio) {
      const Index i = static_cast<Index>(std::ceil(power));
      if (i > options.max_iterations) break;
      if (save_at.empty() || save_at.back() != i) save_at.push_back(i);
    }
    saved.resize(n, static_cast<Index>(save_at.size()));
    saved_phi.assign(save_at.size(), 0.0);
    ratio_ = options.backtrack_ratio;
  }

 private:
  double ratio_ = 0;
};

/// Minimises phi(p) = g^T p + 1/2 p^T A p, i.e. solves A p = -g, by
/// preconditioned CG (Nocedal & Wright, 2nd ed., Alg. 5.3) from the given p
/// (Martens 2010 sect. 4.5: a decayed previous solution; a p of the wrong
/// size, all zeros, or with phi(p) >= 0 starts from 0 instead). phi is tracked
/// without extra products as phi(p) = 1/2 p^T (r + g), r = A p + g. Stops by
/// Martens' relative-progress rule (sect. 4.4), the residual floor, the
/// iteration limit, non-positive curvature or a NaN. The iterates at
/// workspace.save_at are copied into workspace.saved for backtracking.
///
/// A has `apply(v, out)`: out = A v; M has `apply(v, out)`: out = M^{-1} v.
template <class T, class Operator, class Preconditioner>
MartensCgResult martens_cg(Operator& A, Preconditioner& M, const Vector<T>& g, Vector<T>& p,
                           const MartensCgOptions& options, MartensCgWorkspace<T>& ws) {
  const Index n = g.size();
  ws.resize(n, options);
  ws.saved_count = 0;
  MartensCgResult result;
  auto phi_of = [&]() { return 0.5 * static_cast<double>(p.dot(ws.r) + p.dot(g)); };

  bool warm = p.size() == n && p.allFinite() && !p.isZero(0);
  if (warm) {
    A.apply(p, ws.r);
    ++result.products;
    ws.r += g;
    const double phi0 = phi_of();
    warm = detail::is_finite(phi0) && phi0 < 0;
    if (warm) result.initial_model_value = phi0;
  }
  if (!warm) {
    p.setZero(n);
    ws.r = g;
  }
  result.warm_started = warm;
  result.model_value = result.initial_model_value;
  ws.phi[0] = result.initial_model_value;

  const double g_norm = static_cast<double>(g.norm());
  if (!detail::is_finite(g_norm)) {
    result.status = MartensCgStatus::Breakdown;
    return result;
  }
  const double tolerance = options.relative_residual_tolerance * g_norm;
  if (static_cast<double>(ws.r.norm()) <= tolerance) {
    result.status = MartensCgStatus::Converged;
    return result;
  }
  M.apply(ws.r, ws.z);
  ws.d = -ws.z;
  T rz = ws.r.dot(ws.z);
  std::size_t next_save = 0;
  for (Index i = 1; i <= options.max_iterations; ++i) {
    A.apply(ws.d, ws.Ad);
    ++result.products;
    const T curvature = ws.d.dot(ws.Ad);
    if (!detail::is_finite(curvature)) {
      result.status = MartensCgStatus::Breakdown;
      return result;
    }
    if (curvature <= T(0)) {
      result.status = MartensCgStatus::NegativeCurvature;
      return result;
    }
    const T alpha = rz / curvature;
    p.noalias() += alpha * ws.d;
    ws.r.noalias() += alpha * ws.Ad;
    const double phi = phi_of();
    if (!detail::is_finite(phi)) {
      result.status = MartensCgStatus::Breakdown;
      return result;
    }
    ws.phi[i] = phi;
    result.iterations = i;
    result.model_value = phi;
    if (next_save < ws.save_at.size() && ws.save_at[next_save] == i) {
      ws.saved.col(static_cast<Index>(next_save)) = p;
      ws.saved_phi[next_save] = phi;
      ws.saved_count = static_cast<Index>(++next_save);
    }
    // Martens 2010 sect. 4.4: the average relative decrease of phi over the
    // last k iterations is below epsilon.
    const Index k = std::max(options.min_window,
                             static_cast<Index>(options.window_fraction * static_cast<double>(i)));
    if (i > k && phi < 0 &&
        (phi - ws.phi[i - k]) / phi < static_cast<double>(k) * options.progress_tolerance) {
      result.status = MartensCgStatus::ProgressStalled;
      return result;
    }
    if (static_cast<double>(ws.r.norm()) <= tolerance) {
      result.status = MartensCgStatus::Converged;
      return result;
    }
    M.apply(ws.r, ws.z);
    const T rz_next = ws.r.dot(ws.z);
    const T beta = rz_next / rz;
    rz = rz_next;
    ws.d = beta * ws.d - ws.z;
  }
  result.status = MartensCgStatus::IterationLimit;
  return result;
}

// ---------------------------------------------------------------- Hessian-free

enum class HessianFreePreconditioner {
  None,
  /// Martens 2010 sect. 4.7: [diag(mean_i grad f_i^2) + lambda]^exponent on C.
  EmpiricalFisherDiagonal,
};

struct HessianFreeOptions {
  /// "lr": first trial step of the Armijo search along the CG step; 0 takes
  /// no step (the end of a schedule).
  double learning_rate = 1.0;
  /// "gauss_newton" (1/0): Gauss-Newton or Hessian products.
  CurvatureProduct curvature = CurvatureProduct::GaussNewton;
  /// "curvature_fraction": |C| = round(fraction |B|), at least 1.
  double curvature_fraction = 0.1;
  /// "damping": initial Tikhonov damping lambda.
  double damping = 1.0;
  double min_damping = 1e-8;
  double max_damping = 1e8;
  /// Martens 2010 sect. 4.1: lambda *= 3/2 when rho < 1/4, *= 2/3 when rho > 3/4.
  double damping_increase = 1.5;
  double damping_decrease = 2.0 / 3.0;
  /// "max_cg_iterations": a cap; Martens' rule usually stops CG well before.
  Index max_cg_iterations = 250;
  /// "cg_progress_tolerance": epsilon of Martens' CG stopping rule.
  double cg_progress_tolerance = 5e-4;
  /// "cg_warm_start_decay": CG starts from this times the previous solution.
  double cg_warm_start_decay = 0.95;
  /// "cg_backtrack_ratio": gamma, CG iterates ceil(gamma^j) are kept for backtracking.
  double cg_backtrack_ratio = 1.3;
  /// "preconditioner" (1/0): Martens' diagonal or none.
  HessianFreePreconditioner preconditioner = HessianFreePreconditioner::EmpiricalFisherDiagonal;
  /// "preconditioner_exponent": alpha of Martens' preconditioner.
  double preconditioner_exponent = 0.75;
  /// "sufficient_decrease": c1 of the Armijo line search.
  double sufficient_decrease = 1e-2;
  /// "line_search_trials": evaluations per line search.
  int line_search_trials = 20;
  /// "seed": draws the curvature batches.
  std::uint64_t seed = 0;

  /// Throws InvalidArgument naming hessian_free.<field>, its value and the rule.
  void validate() const;
  /// Settings by name, as listed at each field; unknown names throw.
  static HessianFreeOptions from_settings(const OptimizerSettings& settings);
};

template <class T>
class HessianFree final : public Optimizer<T> {
 public:
  explicit HessianFree(HessianFreeOptions options = {});

  std::string name() const override { return "hessian-free"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  /// Raises lambda by damping_increase and drops the warm start.
  void on_numerical_failure() override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;

  const HessianFreeOptions& options() const { return options_; }
  /// The current Tikhonov damping lambda.
  double damping() const { return damping_; }
  /// The last CG solve, the reduction ratio it led to, and which kept CG
  /// iterate the backtracking chose (its iteration number).
  const MartensCgResult& last_cg() const { return last_cg_; }
  double last_reduction_ratio() const { return last_rho_; }
  Index last_backtracked_iteration() const { return last_backtracked_; }

 private:
  void raise_damping();
  StepResult& reject(StepResult& result, const char* event);

  HessianFreeOptions options_;
  // State: saved and restored.
  double damping_;
  Rng rng_;
  Vector<T> warm_start_;  ///< the last CG iterate; zero when there is none
  // Diagnostics of the last step.
  MartensCgResult last_cg_;
  double last_rho_ = 0;
  Index last_backtracked_ = 0;
  // Workspace, sized at the first step.
  std::vector<Index> curvature_batch_;
  Vector<T> gradient_, p_, step_, trial_, sample_gradient_, fisher_diagonal_, x_new_, g_new_;
  linalg::DiagonalPreconditioner<T> diagonal_;
  MartensCgWorkspace<T> cg_;
  detail::BatchLineSearch<T> line_search_;
};

extern template class HessianFree<float>;
extern template class HessianFree<double>;

}  // namespace hesse::optim
