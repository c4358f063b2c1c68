// Subsampled Newton-CG (Byrd, Chin, Neveitt & Nocedal 2011, "On the use of
// stochastic Hessian information in optimization methods for machine
// learning", SIAM J. Optim. 21(3): the subsampled Hessian Newton-CG method;
// the inexact-solve analysis of Roosta-Khorasani & Mahoney 2016, "Sub-sampled
// Newton methods I/II"). One step on batch B:
//
//   1. f_B(x) and g = grad f_B(x) on the batch.
//   2. A Hessian sample S, a random subset of B: hessian_batch_size samples,
//      or round(hessian_fraction |B|) (at least one) when that is 0.
//   3. CG from p = 0 on (H_S + mu I) p = -g (N&W Alg. 5.3, linalg/cg.hpp),
//      stopped when |(H_S + mu I) p + g| <= cg_tolerance |g| (the inexact
//      condition of Roosta-Khorasani & Mahoney 2016, with theta = cg_tolerance)
//      or after max_cg_iterations (Byrd et al. 2011 also cap the CG
//      iterations). H_S is the Hessian of f_S, or its Gauss-Newton matrix.
//   4. Negative curvature (d^T (H_S + mu I) d <= 0, possible with the
//      Hessian of a non-convex model): CG stops and the step is the CG
//      iterate so far, or -g when that is still 0 (truncated Newton, N&W
//      Alg. 7.1).
//   5. An Armijo backtracking line search on B along p (N&W eq. 3.4, c1 =
//      1e-4), first trial step `lr` (1 is the Newton step).
//
// mu is `damping`. Numerical trouble (NaN/Inf, a non-descent direction, a
// failed line search) rejects the step, leaves x as it was and multiplies mu
// by damping_increase (up to max_damping); every accepted step divides it by
// the same factor, down to `damping` again.
#pragma once

#include "hesse/optim/hessian_free.hpp"

namespace hesse::optim {

struct SubsampledNewtonOptions {
  /// "lr": first trial step of the Armijo search (1: the Newton step; 0: no step).
  double learning_rate = 1.0;
  /// "gauss_newton" (1/0): Hessian products by default.
  CurvatureProduct curvature = CurvatureProduct::Hessian;
  /// "hessian_fraction": |S| = round(fraction |B|), at least 1.
  double hessian_fraction = 0.1;
  /// "hessian_batch_size": |S| when > 0 (capped at |B|); overrides the fraction.
  Index hessian_batch_size = 0;
  /// "damping": mu added to the curvature, mu I.
  double damping = 1e-4;
  double max_damping = 1e8;
  /// "damping_increase": mu's factor after numerical trouble.
  double damping_increase = 10;
  /// "cg_tolerance": theta, CG stops at |r| <= theta |g|.
  double cg_tolerance = 0.1;
  /// "max_cg_iterations".
  Index max_cg_iterations = 20;
  /// "sufficient_decrease": c1 of the Armijo line search.
  double sufficient_decrease = 1e-4;
  /// "line_search_trials": evaluations per line search.
  int line_search_trials = 20;
  /// "seed": draws the Hessian samples.
  std::uint64_t seed = 0;

  /// Throws InvalidArgument naming subsampled_newton.<field>, its value and the rule.
  void validate() const;
  static SubsampledNewtonOptions from_settings(const OptimizerSettings& settings);
};

template <class T>
class SubsampledNewton final : public Optimizer<T> {
 public:
  explicit SubsampledNewton(SubsampledNewtonOptions options = {});

  std::string name() const override { return "subsampled-newton"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  /// Multiplies mu by damping_increase.
  void on_numerical_failure() override { raise_damping(); }
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;

  const SubsampledNewtonOptions& options() const { return options_; }
  /// The current damping mu.
  double damping() const { return damping_; }
  const linalg::CgResult& last_cg() const { return last_cg_; }

 private:
  void raise_damping();
  StepResult& reject(StepResult& result, const char* event);

  SubsampledNewtonOptions options_;
  // State: saved and restored.
  double damping_;
  Rng rng_;
  // Diagnostics and workspace.
  linalg::CgResult last_cg_;
  std::vector<Index> hessian_batch_;
  Vector<T> gradient_, negative_gradient_, p_, x_new_, g_new_;
  linalg::CgWorkspace<T> cg_;
  detail::BatchLineSearch<T> line_search_;
};

extern template class SubsampledNewton<float>;
extern template class SubsampledNewton<double>;

}  // namespace hesse::optim
