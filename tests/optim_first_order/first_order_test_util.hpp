// Shared by the first-order optimizer tests: the option combinations every
// test runs, a tiny quadratic objective with known gradients (and a switch
// that poisons them with NaN), and a training-run helper.
#pragma once

#include <cmath>
#include <limits>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "hesse/optim/first_order.hpp"

namespace hesse::optim::test_util {

/// An optimizer by name with settings, labelled for test names.
struct Config {
  std::string label;
  std::string optimizer;
  OptimizerSettings settings;
};

/// How GoogleTest prints a Config in a failure message.
inline void PrintTo(const Config& config, std::ostream* out) {
  *out << config.label << " (" << config.optimizer;
  for (const auto& [key, value] : config.settings) *out << " " << key << "=" << value;
  *out << ")";
}

/// The combinations of the PyTorch golden test, also trained and
/// checkpointed by the other tests.
inline std::vector<Config> configs() {
  return {
      {"sgd_plain", "sgd", {{"lr", 0.1}}},
      {"sgd_momentum", "sgd", {{"lr", 0.05}, {"momentum", 0.9}}},
      {"sgd_nesterov_weight_decay",
       "sgd",
       {{"lr", 0.05}, {"momentum", 0.9}, {"nesterov", 1}, {"weight_decay", 0.01}}},
      {"sgd_dampening", "sgd", {{"lr", 0.05}, {"momentum", 0.8}, {"dampening", 0.5}}},
      {"adagrad_lr_decay",
       "adagrad",
       {{"lr", 0.1}, {"lr_decay", 0.05}, {"initial_accumulator_value", 0.1}, {"weight_decay", 1e-3}}},
      {"rmsprop_plain", "rmsprop", {{"lr", 0.01}}},
      {"rmsprop_centered_momentum",
       "rmsprop",
       {{"lr", 0.002}, {"alpha", 0.9}, {"momentum", 0.9}, {"centered", 1}, {"weight_decay", 1e-3}}},
      {"adam_plain", "adam", {{"lr", 0.01}}},
      {"adam_amsgrad", "adam", {{"lr", 0.01}, {"beta1", 0.8}, {"beta2", 0.95}, {"amsgrad", 1}}},
      {"adam_weight_decay", "adam", {{"lr", 0.01}, {"weight_decay", 0.05}}},
      {"adamw", "adamw", {{"lr", 0.01}}},
      {"adamw_amsgrad", "adamw", {{"lr", 0.01}, {"weight_decay", 0.1}, {"amsgrad", 1}}},
  };
}

template <class T>
std::unique_ptr<Optimizer<T>> make(const Config& config) {
  auto optimizer = make_first_order<T>(config.optimizer, config.settings);
  if (!optimizer) throw InvalidArgument("no first-order optimizer " + config.optimizer);
  return optimizer;
}

/// f(x) = 1/2 sum_i a_i x_i^2, the same for every batch. With
/// poison_gradient (poison_loss) set, g_0 (f) is NaN.
template <class T>
class Quadratic final : public StochasticObjective<T> {
 public:
  explicit Quadratic(Vector<T> curvature) : a_(std::move(curvature)) {}
  Index dimension() const override { return a_.size(); }
  Index num_samples() const override { return 1; }
  void select_batch(std::span<const Index>) override {}
  // Not marked override: the base class may or may not declare it.
  void select_all() {}
  T value_and_gradient(const Vector<T>& x, Vector<T>* gradient) override {
    if (gradient) {
      gradient->resize(x.size());
      gradient->array() = a_.array() * x.array();
      if (poison_gradient) (*gradient)[0] = std::numeric_limits<T>::quiet_NaN();
    }
    if (poison_loss) return std::numeric_limits<T>::quiet_NaN();
    return T(0.5) * (a_.array() * x.array().square()).sum();
  }

  bool poison_gradient = false;
  bool poison_loss = false;

 private:
  Vector<T> a_;
};

}  // namespace hesse::optim::test_util
