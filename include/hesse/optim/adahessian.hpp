// AdaHessian (Yao, Gholami, Shen, Mustafa, Keutzer & Mahoney 2021, "ADAHESSIAN:
// An adaptive second order optimizer for machine learning", AAAI): Adam
// with the squared gradient replaced by the square of a Hutchinson estimate
// of the Hessian's diagonal. docs/optimizers-diagonal.md gives the update as
// formulas and the options as a table.
//
//   hesse::optim::AdaHessian<float> opt({.learning_rate = 0.1, .seed = 7});
//   hesse::optim::StochasticAdapter<hesse::nn::NetworkObjective<float>> f(objective);
//   for (auto batch : batches) opt.step(f, x, batch);
//
// Needs exact Hessian-vector products (StochasticObjective::hessian_vector).
// A step costs one batch gradient and, on steps that estimate the diagonal,
// `probes` Hessian-vector products on the same batch. A loss, gradient or
// estimate with NaN/Inf rejects the step (accepted = false, an event) and
// leaves x and the whole state (moments, estimate, step count, RNG) as they
// were. Buffers are allocated on the first step (or by load_state); later
// steps allocate nothing.
#pragma once

#include <span>
#include <string>

#include "hesse/core/rng.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::optim {

/// Defaults are those of the authors' reference code
/// (amirgholami/adahessian, image_classification/optim_adahessian.py), except
/// the seed, which is hesse's.
struct AdaHessianOptions {
  double learning_rate = 0.15;
  double beta1 = 0.9;    ///< decay of the gradient's moving average
  double beta2 = 0.999;  ///< decay of the moving average of D^2
  double epsilon = 1e-4;  ///< added to the (bias-corrected) root of that average
  /// Decoupled decay: x is multiplied by 1 - learning_rate * weight_decay
  /// before the step (Loshchilov & Hutter 2019, as the reference code).
  double weight_decay = 0;
  /// k in the denominator (sqrt(v_hat))^k + eps (Yao et al. eq. 11); 1 is
  /// the paper's choice, 0 gives momentum SGD.
  double hessian_power = 1;
  /// Estimate the diagonal every this many steps (the first step always
  /// estimates); in between the last estimate is reused.
  Index hessian_every = 1;
  /// Rademacher probes averaged per estimate (the reference uses 1).
  Index probes = 1;
  /// Spatial averaging (Yao et al. eq. 10): |D| averaged over consecutive
  /// groups of this many parameters, e.g. a convolution kernel's taps when
  /// they are contiguous. 1 (no averaging) suits Dense layers, which have no
  /// spatial dimension.
  Index average_size = 1;
  /// Seeds the probes' generator (its state is part of the checkpoint).
  Index seed = 0;

  /// Throws InvalidArgument naming adahessian.<field>, its value and the rule.
  void validate() const;
  /// Reads "lr", "beta1", "beta2", "eps", "weight_decay", "hessian_power",
  /// "hessian_every", "probes", "average_size", "seed"; throws
  /// InvalidArgument for any other name.
  static AdaHessianOptions from_settings(const OptimizerSettings& settings);
};

/// Hutchinson's estimator of the Hessian's diagonal on the selected samples
/// (Bekas, Kokiopoulou & Saad 2007; Yao et al. eq. 7):
///   D = (1/N) sum_{k=1..N} z_k (.) (H z_k),   z_k Rademacher (+-1 entries),
/// so E[D] = diag(H) and one probe's entry i has variance sum_{j != i} H_ij^2.
/// `probe` and `product` are scratch (sized here on first use).
template <class T>
void hutchinson_diagonal(StochasticObjective<T>& f, const Vector<T>& x, Index probes, Rng& rng,
                         Vector<T>& diagonal, Vector<T>& probe, Vector<T>& product);

/// AdaHessian, Yao et al. Algorithm 1 with the reference code's decoupled
/// decay; at step t (from 1), with g the batch gradient:
///   D = hutchinson_diagonal (every hessian_every steps; spatially averaged)
///   x = (1 - lr weight_decay) x
///   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) D (.) D
///   x = x - lr / (1 - beta1^t) m / ((sqrt(v / (1 - beta2^t)))^k + eps)
/// State: "adahessian.step", "adahessian.exp_avg", "adahessian.exp_hessian_diag_sq",
/// "adahessian.hessian_diagonal" (the last D) and the generator "adahessian.rng".
template <class T>
class AdaHessian final : public Optimizer<T> {
 public:
  explicit AdaHessian(AdaHessianOptions options = {});
  std::string name() const override { return "adahessian"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;
  const AdaHessianOptions& options() const { return options_; }
  /// The last estimate D of the Hessian's diagonal (after spatial
  /// averaging); empty before the first step.
  const Vector<T>& hessian_diagonal() const { return diagonal_; }

 private:
  AdaHessianOptions options_;
  Rng rng_;
  Vector<T> gradient_, estimate_, probe_, product_;
  Vector<T> diagonal_, exp_avg_, exp_hessian_diag_sq_;
};

extern template class AdaHessian<float>;
extern template class AdaHessian<double>;
extern template void hutchinson_diagonal<float>(StochasticObjective<float>&, const Vector<float>&,
                                                Index, Rng&, Vector<float>&, Vector<float>&,
                                                Vector<float>&);
extern template void hutchinson_diagonal<double>(StochasticObjective<double>&,
                                                 const Vector<double>&, Index, Rng&,
                                                 Vector<double>&, Vector<double>&,
                                                 Vector<double>&);

}  // namespace hesse::optim
