// First-order mini-batch optimizers with the update rules of PyTorch 1.13's
// torch.optim (the single-tensor code paths, foreach=False, maximize=False):
// SGD with momentum, Adagrad, RMSprop, Adam and AdamW. The same options from
// the same start see the same trajectory as torch.optim up to float rounding
// (tests/optim_first_order/test_torch_first_order.cpp); docs/optimizers-first-order.md
// gives each rule as a formula.
//
//   hesse::optim::AdamOptions options{.learning_rate = 1e-3, .amsgrad = true};
//   hesse::optim::Adam<float> adam(options);
//   hesse::optim::StochasticAdapter<hesse::nn::NetworkObjective<float>> f(objective);
//   for (auto batch : batches) adam.step(f, x, batch);
//
// Every step evaluates the batch loss and gradient once. A loss or gradient
// with NaN/Inf rejects the step (accepted = false, an event) and leaves x,
// the moments and the step count as they were. The per-parameter buffers are
// allocated on the first step (or by load_state); later steps allocate
// nothing.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hesse/optim/optimizer.hpp"

namespace hesse::optim {

// ---- options ------------------------------------------------------------
// Defaults are torch.optim's. Field names are PyTorch's except
// learning_rate (setting "lr") and epsilon (setting "eps"); Adam's betas are
// the two settings "beta1" and "beta2".

struct SgdOptions {
  /// torch.optim.SGD has no default learning rate; this is hesse's.
  double learning_rate = 1e-2;
  double momentum = 0;
  /// Damps the gradient's share of the momentum buffer by (1 - dampening).
  double dampening = 0;
  /// Sutskever et al. (2013) look-ahead, in PyTorch's form; needs momentum > 0
  /// and dampening = 0.
  bool nesterov = false;
  /// L2 penalty: weight_decay * x is added to the gradient.
  double weight_decay = 0;

  /// Throws InvalidArgument naming sgd.<field>, its value and the rule.
  void validate() const;
  /// Reads "lr", "momentum", "dampening", "nesterov", "weight_decay" over
  /// the defaults above or `defaults`; throws InvalidArgument for any other
  /// name.
  static SgdOptions from_settings(const OptimizerSettings& settings);
  static SgdOptions from_settings(const OptimizerSettings& settings, SgdOptions defaults);
};

struct AdagradOptions {
  double learning_rate = 1e-2;
  /// Step k (from 1) uses learning_rate / (1 + (k - 1) lr_decay).
  double lr_decay = 0;
  double weight_decay = 0;  ///< L2 penalty added to the gradient
  /// Starting value of every squared-gradient sum.
  double initial_accumulator_value = 0;
  double epsilon = 1e-10;  ///< added to the root of the sum

  void validate() const;
  static AdagradOptions from_settings(const OptimizerSettings& settings);
};

struct RmspropOptions {
  double learning_rate = 1e-2;
  /// Decay of the running average of squared gradients.
  double alpha = 0.99;
  double epsilon = 1e-8;  ///< added to the root of the average
  double weight_decay = 0;  ///< L2 penalty added to the gradient
  /// Momentum on the scaled step; its buffer starts at zero (unlike SGD's).
  double momentum = 0;
  /// Divide by the estimated standard deviation, sqrt(E[g^2] - E[g]^2),
  /// instead of the root mean square (Graves 2013).
  bool centered = false;

  void validate() const;
  static RmspropOptions from_settings(const OptimizerSettings& settings);
};

struct AdamOptions {
  double learning_rate = 1e-3;
  double beta1 = 0.9;    ///< decay of the first moment
  double beta2 = 0.999;  ///< decay of the second moment
  double epsilon = 1e-8;  ///< added to the bias-corrected root of the second moment
  /// L2 penalty added to the gradient, so it passes through the moments
  /// (coupled; AdamW decouples it).
  double weight_decay = 0;
  /// Normalise by the largest second moment seen so far (Reddi et al. 2018).
  bool amsgrad = false;

  void validate() const;
  static AdamOptions from_settings(const OptimizerSettings& settings);
};

struct AdamWOptions {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  /// Decoupled decay: x is multiplied by 1 - learning_rate * weight_decay
  /// before the Adam step (Loshchilov & Hutter 2019, with PyTorch's scaling
  /// by the learning rate).
  double weight_decay = 1e-2;
  bool amsgrad = false;

  void validate() const;
  static AdamWOptions from_settings(const OptimizerSettings& settings);
};

// ---- optimizers -------------------------------------------------------------

/// Stochastic gradient descent with heavy-ball momentum (Polyak 1964) or
/// Nesterov momentum, as torch.optim.SGD:
///   d = g + weight_decay x
///   b = d on the first step, else momentum b + (1 - dampening) d
///   d = d + momentum b (nesterov) or b (momentum > 0)
///   x = x - lr d
/// State: "sgd.momentum_buffer" (once it exists).
template <class T>
class Sgd final : public Optimizer<T> {
 public:
  explicit Sgd(SgdOptions options = {});
  std::string name() const override { return "sgd"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;
  const SgdOptions& options() const { return options_; }

 private:
  SgdOptions options_;
  Vector<T> gradient_, momentum_buffer_;
};

/// Adagrad (Duchi, Hazan & Singer 2011), as torch.optim.Adagrad:
///   d = g + weight_decay x,   s = s + d^2,
///   x = x - lr / (1 + (k - 1) lr_decay) d / (sqrt(s) + eps).
/// State: "adagrad.step", "adagrad.sum".
template <class T>
class Adagrad final : public Optimizer<T> {
 public:
  explicit Adagrad(AdagradOptions options = {});
  std::string name() const override { return "adagrad"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;
  const AdagradOptions& options() const { return options_; }

 private:
  AdagradOptions options_;
  Vector<T> gradient_, sum_;
};

/// RMSprop (Tieleman & Hinton 2012, lecture 6.5; centred form: Graves 2013,
/// eqs. 38-41), as torch.optim.RMSprop:
///   d = g + weight_decay x,   v = alpha v + (1 - alpha) d^2
///   c = alpha c + (1 - alpha) d,   s = sqrt(v - c^2) (centered) or sqrt(v)
///   b = momentum b + d / (s + eps),   x = x - lr b   (momentum > 0)
///   x = x - lr d / (s + eps)                          (otherwise)
/// State: "rmsprop.square_avg", "rmsprop.grad_avg" (centered),
/// "rmsprop.momentum_buffer" (momentum > 0).
template <class T>
class Rmsprop final : public Optimizer<T> {
 public:
  explicit Rmsprop(RmspropOptions options = {});
  std::string name() const override { return "rmsprop"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;
  const RmspropOptions& options() const { return options_; }

 private:
  RmspropOptions options_;
  Vector<T> gradient_, square_avg_, grad_avg_, momentum_buffer_;
};

/// Adam (Kingma & Ba 2015, Algorithm 1), as torch.optim.Adam:
///   d = g + weight_decay x
///   m = beta1 m + (1 - beta1) d,   v = beta2 v + (1 - beta2) d^2
///   v_max = max(v_max, v) (amsgrad; Reddi, Kale & Kumar 2018)
///   x = x - lr / (1 - beta1^k) m / (sqrt(v or v_max) / sqrt(1 - beta2^k) + eps)
/// State: "adam.step", "adam.exp_avg", "adam.exp_avg_sq",
/// "adam.max_exp_avg_sq" (amsgrad).
template <class T>
class Adam final : public Optimizer<T> {
 public:
  explicit Adam(AdamOptions options = {});
  std::string name() const override { return "adam"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;
  const AdamOptions& options() const { return options_; }

 private:
  AdamOptions options_;
  Vector<T> gradient_, exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
};

/// AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW: x is first
/// multiplied by 1 - lr weight_decay, then Adam's step on the raw gradient.
/// State: "adamw.step", "adamw.exp_avg", "adamw.exp_avg_sq",
/// "adamw.max_exp_avg_sq" (amsgrad).
template <class T>
class AdamW final : public Optimizer<T> {
 public:
  explicit AdamW(AdamWOptions options = {});
  std::string name() const override { return "adamw"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;
  const AdamWOptions& options() const { return options_; }

 private:
  AdamWOptions options_;
  Vector<T> gradient_, exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
};

/// The first-order optimizer called `name` with `settings` over its
/// defaults: "sgd", "adagrad", "rmsprop", "adam", "adamw", and the
/// conveniences "momentum" (sgd, momentum 0.9) and "nesterov" (sgd, momentum
/// 0.9, nesterov = 1), whose settings may still override those. Returns null
/// for any other name; throws InvalidArgument for an unknown setting or an
/// invalid value.
template <class T>
std::unique_ptr<Optimizer<T>> make_first_order(const std::string& name,
                                               const OptimizerSettings& settings);

/// The names make_first_order knows, each with a one-line description.
std::vector<std::pair<std::string, std::string>> first_order_catalogue();

extern template class Sgd<float>;
extern template class Sgd<double>;
extern template class Adagrad<float>;
extern template class Adagrad<double>;
extern template class Rmsprop<float>;
extern template class Rmsprop<double>;
extern template class Adam<float>;
extern template class Adam<double>;
extern template class AdamW<float>;
extern template class AdamW<double>;

}  // namespace hesse::optim
