// Sophia (Liu, Li, Hall, Liang & Ma 2023, "Sophia: A scalable stochastic
// second-order optimizer for language model pre-training", ICLR 2024):
// momentum divided by a moving average of a diagonal curvature estimate,
// clipped element-wise. docs/optimizers-diagonal.md gives the update as
// formulas and the options as a table.
//
//   hesse::optim::Sophia<float> opt({.learning_rate = 1e-3});
//   hesse::optim::StochasticAdapter<hesse::nn::NetworkObjective<float>> f(objective);
//   for (auto batch : batches) opt.step(f, x, batch);
//
// The curvature estimate is the Gauss-Newton-Bartlett estimator (Sophia-G,
// network objectives only: it needs the model's predictive distribution) or
// Hutchinson's (Sophia-H, any objective with Hessian-vector products). A
// step costs one batch gradient and, every `hessian_every` steps, one more
// gradient (GNB) or one Hessian-vector product (Hutchinson) on the same
// batch. A loss, gradient or estimate with NaN/Inf rejects the step
// (accepted = false, an event) and leaves x and the whole state as they were.
// Buffers are allocated on the first step (or by load_state); later steps
// allocate nothing.
#pragma once

#include <span>
#include <string>

#include "hesse/core/rng.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::nn {
template <class T>
class NetworkObjective;
}

namespace hesse::optim {

enum class SophiaEstimator {
  GaussNewtonBartlett = 0,  ///< B g_hat (.) g_hat, targets sampled from the model (Sophia-G)
  Hutchinson = 1,           ///< u (.) (H u), u Rademacher (Sophia-H)
};

/// Defaults are the reference implementation's (Liuhong99/Sophia, SophiaG:
/// lr 1e-4, betas (0.965, 0.99), rho 0.04, weight decay 0.1) and the paper's
/// (k = 10, epsilon 1e-12). They were tuned for GPT-2 pre-training; smaller
/// models usually want a larger learning rate (every coordinate moves by at
/// most lr per step).
struct SophiaOptions {
  double learning_rate = 1e-4;
  double beta1 = 0.965;  ///< decay of the gradient's moving average m
  double beta2 = 0.99;   ///< decay of the curvature estimate's moving average h
  /// The paper's gamma (the reference code's rho): the step is
  /// clip(m / max(rho h, eps), 1).
  double rho = 0.04;
  double epsilon = 1e-12;  ///< floor of the denominator; catches h <= 0 (Hutchinson)
  /// Decoupled decay: x is multiplied by 1 - learning_rate * weight_decay
  /// before the step. With the default rate this shrinks x by 1e-5 per step,
  /// as AdamW's defaults (lr 1e-3, decay 1e-2) do.
  double weight_decay = 0.1;
  /// Estimate the curvature every this many steps (steps 1, 1 + k, 1 + 2k, ...).
  Index hessian_every = 10;
  SophiaEstimator estimator = SophiaEstimator::GaussNewtonBartlett;
  /// Seeds the generator of sampled targets / probes (part of the checkpoint).
  Index seed = 0;

  /// Throws InvalidArgument naming sophia.<field>, its value and the rule.
  void validate() const;
  /// Reads "lr", "beta1", "beta2", "rho", "eps", "weight_decay",
  /// "hessian_every", "estimator" (0 GNB, 1 Hutchinson), "seed"; throws
  /// InvalidArgument for any other name.
  static SophiaOptions from_settings(const OptimizerSettings& settings);
};

/// The Gauss-Newton-Bartlett estimate of the Gauss-Newton matrix's diagonal on
/// the network's selected samples (Liu et al. Algorithm 2): with targets
/// y_b drawn from the model's predictive distribution and g_hat the gradient
/// of the mean loss on them over the B selected samples,
///   D = (1/N) sum_{k=1..N} B g_hat_k (.) g_hat_k.
/// For losses whose sampled-target gradient has covariance equal to the
/// loss's Hessian in the outputs (softmax cross-entropy, logistic, and mean
/// squared error with the matching Gaussian), E[D] = diag(G) exactly.
/// Regularisation (NetworkObjectiveOptions::l2) is not included.
/// `sampled_gradient` is scratch.
template <class T>
void gauss_newton_bartlett_diagonal(nn::NetworkObjective<T>& network, const Vector<T>& x,
                                    Index draws, Rng& rng, Vector<T>& diagonal,
                                    Vector<T>& sampled_gradient);

/// Sophia, Liu et al. Algorithm 3 with the reference code's decoupled decay;
/// at step t (from 1) with g the batch gradient:
///   h = beta2 h + (1 - beta2) h_hat       (t = 1, 1 + k, ...; h starts at 0)
///   m = beta1 m + (1 - beta1) g
///   x = (1 - lr weight_decay) x
///   x = x - lr clip(m / max(rho h, eps), 1)      (clip to [-1, 1] per entry)
/// with h_hat the GNB or Hutchinson estimate at x on the batch. No bias
/// correction, as the paper: until h has grown, most entries are clipped and
/// the step is lr sign(m).
/// State: "sophia.step", "sophia.exp_avg", "sophia.hessian" (h) and the
/// generator "sophia.rng".
template <class T>
class Sophia final : public Optimizer<T> {
 public:
  explicit Sophia(SophiaOptions options = {});
  std::string name() const override { return "sophia"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;
  const SophiaOptions& options() const { return options_; }
  /// The moving average h of the curvature estimates; empty before the first step.
  const Vector<T>& hessian() const { return hessian_; }

 private:
  SophiaOptions options_;
  Rng rng_;
  Vector<T> gradient_, estimate_, scratch_, product_;
  Vector<T> exp_avg_, hessian_;
};

extern template class Sophia<float>;
extern template class Sophia<double>;
extern template void gauss_newton_bartlett_diagonal<float>(nn::NetworkObjective<float>&,
                                                           const Vector<float>&, Index, Rng&,
                                                           Vector<float>&, Vector<float>&);
extern template void gauss_newton_bartlett_diagonal<double>(nn::NetworkObjective<double>&,
                                                            const Vector<double>&, Index, Rng&,
                                                            Vector<double>&, Vector<double>&);

}  // namespace hesse::optim
