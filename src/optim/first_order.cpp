#include "hesse/optim/first_order.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "hesse/core/error.hpp"

namespace hesse::optim {

namespace {

[[noreturn]] void fail(const char* optimizer, const char* field, double value, const char* rule) {
  std::ostringstream message;
  message << optimizer << "." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

void require_non_negative(const char* optimizer, const char* field, double value) {
  if (!(value >= 0 && std::isfinite(value))) fail(optimizer, field, value, "must be finite and >= 0");
}

void require_unit_interval(const char* optimizer, const char* field, double value) {
  if (!(value >= 0 && value <= 1)) fail(optimizer, field, value, "must be in [0, 1]");
}

void require_beta(const char* optimizer, const char* field, double value) {
  if (!(value >= 0 && value < 1)) fail(optimizer, field, value, "must be in [0, 1)");
}

template <class Options>
void set_learning_rate_checked(Options& options, double lr) {
  Options changed = options;
  changed.learning_rate = lr;
  changed.validate();
  options = changed;
}

// The batch loss and gradient at x, into result; false when either is not
// finite (the step is then rejected before anything changes).
template <class T>
bool evaluate(const std::string& optimizer, StochasticObjective<T>& f, const Vector<T>& x,
              std::span<const Index> batch, Vector<T>& gradient, StepResult& result) {
  f.select_batch(batch);
  const T loss = f.value_and_gradient(x, &gradient);
  HESSE_ASSERT(gradient.size() == x.size(), optimizer + ": the objective returned a gradient of " +
                                                std::to_string(gradient.size()) + " values for " +
                                                std::to_string(x.size()) + " parameters");
  result.loss = static_cast<double>(loss);
  result.gradient_norm = static_cast<double>(gradient.norm());
  result.gradient_evaluations = 1;
  // The norm is NaN or Inf exactly when an entry is (or when the squares
  // overflow, itself numerical trouble): no separate pass over the gradient.
  if (std::isfinite(result.loss) && std::isfinite(result.gradient_norm)) return true;
  result.accepted = false;
  result.event = "non-finite loss or gradient: step rejected, x and state unchanged";
  return false;
}

// Buffers are empty before the first step; afterwards they must match x.
template <class T>
void check_dimension(const std::string& optimizer, const Vector<T>& buffer, const Vector<T>& x) {
  if (buffer.size() != 0 && buffer.size() != x.size())
    throw InvalidArgument(optimizer + ": the optimizer's state holds " +
                          std::to_string(buffer.size()) + " parameters, x has " +
                          std::to_string(x.size()));
}

void save_step(StateDict& state, const std::string& optimizer, std::int64_t steps) {
  state.scalars[optimizer + ".step"] = static_cast<double>(steps);
}

std::int64_t load_step(const StateDict& state, const std::string& optimizer) {
  const double step = state.scalar(optimizer + ".step");
  if (!(step >= 0 && step == std::floor(step) && step < 0x1p62))
    throw InvalidArgument("state: scalar '" + optimizer + ".step' = " + std::to_string(step) +
                          " is not a step count");
  return static_cast<std::int64_t>(step);
}

template <class T>
void save_buffer(StateDict& state, const std::string& key, const Vector<T>& buffer) {
  if (buffer.size() != 0) state.put(key, buffer);
}

// Reads `key` when `present` (throwing when the state lacks it), else empties
// the buffer; every loaded buffer must have the size of the first.
template <class T>
void load_buffer(const StateDict& state, const std::string& key, bool present, Vector<T>& buffer,
                 Index& size) {
  if (!present) {
    buffer.resize(0);
    return;
  }
  const Index n = static_cast<Index>(state.array(key).size());
  if (size >= 0 && n != size)
    throw InvalidArgument("state: array '" + key + "' has " + std::to_string(n) +
                          " values, the other buffers " + std::to_string(size));
  size = n;
  buffer.resize(n);
  state.get(key, buffer);
}

// Adam's moments and step (Kingma & Ba 2015, Algorithm 1) in the operation
// order of torch.optim's _single_tensor_adam: scalars in double, rounded to T
// where PyTorch rounds them; `d` is the gradient after any coupled decay.
template <class T>
void adam_update(const Vector<T>& d, Vector<T>& x, Vector<T>& exp_avg, Vector<T>& exp_avg_sq,
                 Vector<T>& max_exp_avg_sq, double lr, double beta1, double beta2, double epsilon,
                 bool amsgrad, std::int64_t step) {
  exp_avg.array() = exp_avg.array() * T(beta1) + T(1 - beta1) * d.array();
  exp_avg_sq.array() = exp_avg_sq.array() * T(beta2) + T(1 - beta2) * d.array() * d.array();
  const double k = static_cast<double>(step);
  const double bias_correction1 = 1 - std::pow(beta1, k);
  const T bias_correction2_sqrt = T(std::sqrt(1 - std::pow(beta2, k)));
  const T step_size = T(-(lr / bias_correction1));
  const Vector<T>* second_moment = &exp_avg_sq;
  if (amsgrad) {
    max_exp_avg_sq = max_exp_avg_sq.cwiseMax(exp_avg_sq);
    second_moment = &max_exp_avg_sq;
  }
  x.array() += step_size * exp_avg.array() /
               (second_moment->array().sqrt() / bias_correction2_sqrt + T(epsilon));
}

}  // namespace

// ---- options ------------------------------------------------------------------

void SgdOptions::validate() const {
  require_non_negative("sgd", "learning_rate", learning_rate);
  require_non_negative("sgd", "momentum", momentum);
  require_unit_interval("sgd", "dampening", dampening);
  require_non_negative("sgd", "weight_decay", weight_decay);
  if (nesterov && !(momentum > 0 && dampening == 0)) {
    std::ostringstream rule;
    rule << "needs momentum > 0 and dampening = 0 (momentum = " << momentum
         << ", dampening = " << dampening << ")";
    fail("sgd", "nesterov", 1, rule.str().c_str());
  }
}

SgdOptions SgdOptions::from_settings(const OptimizerSettings& settings) {
  return from_settings(settings, SgdOptions{});
}

SgdOptions SgdOptions::from_settings(const OptimizerSettings& settings, SgdOptions defaults) {
  SettingsReader r("sgd", settings);
  r.read("lr", defaults.learning_rate);
  r.read("momentum", defaults.momentum);
  r.read("dampening", defaults.dampening);
  r.read("nesterov", defaults.nesterov);
  r.read("weight_decay", defaults.weight_decay);
  r.finish();
  return defaults;
}

void AdagradOptions::validate() const {
  require_non_negative("adagrad", "learning_rate", learning_rate);
  require_non_negative("adagrad", "lr_decay", lr_decay);
  require_non_negative("adagrad", "weight_decay", weight_decay);
  require_non_negative("adagrad", "initial_accumulator_value", initial_accumulator_value);
  require_non_negative("adagrad", "epsilon", epsilon);
}

AdagradOptions AdagradOptions::from_settings(const OptimizerSettings& settings) {
  AdagradOptions o;
  SettingsReader r("adagrad", settings);
  r.read("lr", o.learning_rate);
  r.read("lr_decay", o.lr_decay);
  r.read("weight_decay", o.weight_decay);
  r.read("initial_accumulator_value", o.initial_accumulator_value);
  r.read("eps", o.epsilon);
  r.finish();
  return o;
}

void RmspropOptions::validate() const {
  require_non_negative("rmsprop", "learning_rate", learning_rate);
  require_unit_interval("rmsprop", "alpha", alpha);
  require_non_negative("rmsprop", "epsilon", epsilon);
  require_non_negative("rmsprop", "weight_decay", weight_decay);
  require_non_negative("rmsprop", "momentum", momentum);
}

RmspropOptions RmspropOptions::from_settings(const OptimizerSettings& settings) {
  RmspropOptions o;
  SettingsReader r("rmsprop", settings);
  r.read("lr", o.learning_rate);
  r.read("alpha", o.alpha);
  r.read("eps", o.epsilon);
  r.read("weight_decay", o.weight_decay);
  r.read("momentum", o.momentum);
  r.read("centered", o.centered);
  r.finish();
  return o;
}

namespace {

template <class Options>
void validate_adam(const char* optimizer, const Options& o) {
  require_non_negative(optimizer, "learning_rate", o.learning_rate);
  require_beta(optimizer, "beta1", o.beta1);
  require_beta(optimizer, "beta2", o.beta2);
  require_non_negative(optimizer, "epsilon", o.epsilon);
  require_non_negative(optimizer, "weight_decay", o.weight_decay);
}

template <class Options>
Options adam_from_settings(const char* optimizer, const OptimizerSettings& settings) {
  Options o;
  SettingsReader r(optimizer, settings);
  r.read("lr", o.learning_rate);
  r.read("beta1", o.beta1);
  r.read("beta2", o.beta2);
  r.read("eps", o.epsilon);
  r.read("weight_decay", o.weight_decay);
  r.read("amsgrad", o.amsgrad);
  r.finish();
  return o;
}

}  // namespace

void AdamOptions::validate() const { validate_adam("adam", *this); }
AdamOptions AdamOptions::from_settings(const OptimizerSettings& settings) {
  return adam_from_settings<AdamOptions>("adam", settings);
}
void AdamWOptions::validate() const { validate_adam("adamw", *this); }
AdamWOptions AdamWOptions::from_settings(const OptimizerSettings& settings) {
  return adam_from_settings<AdamWOptions>("adamw", settings);
}

// ---- SGD ------------------------------------------------------------------------

template <class T>
Sgd<T>::Sgd(SgdOptions options) : options_(options) {
  options_.validate();
}

template <class T>
void Sgd<T>::set_learning_rate(double lr) {
  set_learning_rate_checked(options_, lr);
}

template <class T>
StepResult Sgd<T>::step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) {
  check_dimension(name(), momentum_buffer_, x);
  StepResult result;
  if (!evaluate(name(), f, x, batch, gradient_, result)) return result;
  Vector<T>& d = gradient_;
  if (options_.weight_decay != 0) d += T(options_.weight_decay) * x;
  const T lr = T(options_.learning_rate);
  if (options_.momentum != 0) {
    const T momentum = T(options_.momentum);
    if (momentum_buffer_.size() == 0) {
      momentum_buffer_ = d;
    } else {
      momentum_buffer_ = momentum_buffer_ * momentum + T(1 - options_.dampening) * d;
    }
    if (options_.nesterov) {
      d += momentum * momentum_buffer_;
      x -= lr * d;
    } else {
      x -= lr * momentum_buffer_;
    }
  } else {
    x -= lr * d;
  }
  ++this->steps_;
  return result;
}

template <class T>
void Sgd<T>::save_state(StateDict& state) const {
  save_step(state, name(), this->steps_);
  save_buffer(state, name() + ".momentum_buffer", momentum_buffer_);
}

template <class T>
void Sgd<T>::load_state(const StateDict& state) {
  const std::int64_t steps = load_step(state, name());
  Index size = -1;
  Vector<T> buffer;
  load_buffer(state, name() + ".momentum_buffer", options_.momentum != 0 && steps > 0, buffer,
              size);
  momentum_buffer_.swap(buffer);
  this->steps_ = steps;
}

template <class T>
void Sgd<T>::reset() {
  momentum_buffer_.resize(0);
  this->steps_ = 0;
}

// ---- Adagrad ------------------------------------------------------------------------

template <class T>
Adagrad<T>::Adagrad(AdagradOptions options) : options_(options) {
  options_.validate();
}

template <class T>
void Adagrad<T>::set_learning_rate(double lr) {
  set_learning_rate_checked(options_, lr);
}

template <class T>
StepResult Adagrad<T>::step(StochasticObjective<T>& f, Vector<T>& x,
                            std::span<const Index> batch) {
  check_dimension(name(), sum_, x);
  StepResult result;
  if (!evaluate(name(), f, x, batch, gradient_, result)) return result;
  if (sum_.size() == 0) sum_.setConstant(x.size(), T(options_.initial_accumulator_value));
  const std::int64_t step = ++this->steps_;
  Vector<T>& d = gradient_;
  if (options_.weight_decay != 0) d += T(options_.weight_decay) * x;
  const double clr =
      options_.learning_rate / (1 + static_cast<double>(step - 1) * options_.lr_decay);
  sum_.array() += d.array() * d.array();
  x.array() += T(-clr) * d.array() / (sum_.array().sqrt() + T(options_.epsilon));
  return result;
}

template <class T>
void Adagrad<T>::save_state(StateDict& state) const {
  save_step(state, name(), this->steps_);
  save_buffer(state, name() + ".sum", sum_);
}

template <class T>
void Adagrad<T>::load_state(const StateDict& state) {
  const std::int64_t steps = load_step(state, name());
  Index size = -1;
  Vector<T> sum;
  load_buffer(state, name() + ".sum", steps > 0, sum, size);
  sum_.swap(sum);
  this->steps_ = steps;
}

template <class T>
void Adagrad<T>::reset() {
  sum_.resize(0);
  this->steps_ = 0;
}

// ---- RMSprop ------------------------------------------------------------------------

template <class T>
Rmsprop<T>::Rmsprop(RmspropOptions options) : options_(options) {
  options_.validate();
}

template <class T>
void Rmsprop<T>::set_learning_rate(double lr) {
  set_learning_rate_checked(options_, lr);
}

template <class T>
StepResult Rmsprop<T>::step(StochasticObjective<T>& f, Vector<T>& x,
                            std::span<const Index> batch) {
  check_dimension(name(), square_avg_, x);
  StepResult result;
  if (!evaluate(name(), f, x, batch, gradient_, result)) return result;
  const Index n = x.size();
  if (square_avg_.size() == 0) {
    square_avg_.setZero(n);
    if (options_.centered) grad_avg_.setZero(n);
    if (options_.momentum > 0) momentum_buffer_.setZero(n);
  }
  Vector<T>& d = gradient_;
  if (options_.weight_decay != 0) d += T(options_.weight_decay) * x;
  const T alpha = T(options_.alpha);
  const T one_minus_alpha = T(1 - options_.alpha);
  const T epsilon = T(options_.epsilon);
  const T lr = T(options_.learning_rate);
  square_avg_.array() = square_avg_.array() * alpha + one_minus_alpha * d.array() * d.array();
  // The centred variance is clamped at zero, where rounding could make it
  // negative and PyTorch would take the root of a negative number.
  auto step_with = [&](const auto& denominator) {
    if (options_.momentum > 0) {
      momentum_buffer_.array() =
          momentum_buffer_.array() * T(options_.momentum) + d.array() / denominator;
      x -= lr * momentum_buffer_;
    } else {
      x.array() += -lr * d.array() / denominator;
    }
  };
  if (options_.centered) {
    grad_avg_.array() = grad_avg_.array() * alpha + one_minus_alpha * d.array();
    step_with(
        (square_avg_.array() - grad_avg_.array() * grad_avg_.array()).max(T(0)).sqrt() + epsilon);
  } else {
    step_with(square_avg_.array().sqrt() + epsilon);
  }
  ++this->steps_;
  return result;
}

template <class T>
void Rmsprop<T>::save_state(StateDict& state) const {
  save_step(state, name(), this->steps_);
  save_buffer(state, name() + ".square_avg", square_avg_);
  save_buffer(state, name() + ".grad_avg", grad_avg_);
  save_buffer(state, name() + ".momentum_buffer", momentum_buffer_);
}

template <class T>
void Rmsprop<T>::load_state(const StateDict& state) {
  const std::int64_t steps = load_step(state, name());
  const bool started = steps > 0;
  Index size = -1;
  Vector<T> square_avg, grad_avg, momentum_buffer;
  load_buffer(state, name() + ".square_avg", started, square_avg, size);
  load_buffer(state, name() + ".grad_avg", started && options_.centered, grad_avg, size);
  load_buffer(state, name() + ".momentum_buffer", started && options_.momentum > 0,
              momentum_buffer, size);
  square_avg_.swap(square_avg);
  grad_avg_.swap(grad_avg);
  momentum_buffer_.swap(momentum_buffer);
  this->steps_ = steps;
}

template <class T>
void Rmsprop<T>::reset() {
  square_avg_.resize(0);
  grad_avg_.resize(0);
  momentum_buffer_.resize(0);
  this->steps_ = 0;
}

// ---- Adam and AdamW ---------------------------------------------------------------

namespace {

template <class T>
void save_adam_state(StateDict& state, const std::string& optimizer, std::int64_t steps,
                     const Vector<T>& exp_avg, const Vector<T>& exp_avg_sq,
                     const Vector<T>& max_exp_avg_sq) {
  save_step(state, optimizer, steps);
  save_buffer(state, optimizer + ".exp_avg", exp_avg);
  save_buffer(state, optimizer + ".exp_avg_sq", exp_avg_sq);
  save_buffer(state, optimizer + ".max_exp_avg_sq", max_exp_avg_sq);
}

template <class T>
std::int64_t load_adam_state(const StateDict& state, const std::string& optimizer, bool amsgrad,
                             Vector<T>& exp_avg, Vector<T>& exp_avg_sq,
                             Vector<T>& max_exp_avg_sq) {
  const std::int64_t steps = load_step(state, optimizer);
  const bool started = steps > 0;
  Index size = -1;
  Vector<T> m, v, v_max;
  load_buffer(state, optimizer + ".exp_avg", started, m, size);
  load_buffer(state, optimizer + ".exp_avg_sq", started, v, size);
  load_buffer(state, optimizer + ".max_exp_avg_sq", started && amsgrad, v_max, size);
  exp_avg.swap(m);
  exp_avg_sq.swap(v);
  max_exp_avg_sq.swap(v_max);
  return steps;
}

template <class T>
void start_adam_state(Index n, bool amsgrad, Vector<T>& exp_avg, Vector<T>& exp_avg_sq,
                      Vector<T>& max_exp_avg_sq) {
  if (exp_avg.size() != 0) return;
  exp_avg.setZero(n);
  exp_avg_sq.setZero(n);
  if (amsgrad) max_exp_avg_sq.setZero(n);
}

}  // namespace

template <class T>
Adam<T>::Adam(AdamOptions options) : options_(options) {
  options_.validate();
}

template <class T>
void Adam<T>::set_learning_rate(double lr) {
  set_learning_rate_checked(options_, lr);
}

template <class T>
StepResult Adam<T>::step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) {
  check_dimension(name(), exp_avg_, x);
  StepResult result;
  if (!evaluate(name(), f, x, batch, gradient_, result)) return result;
  start_adam_state(x.size(), options_.amsgrad, exp_avg_, exp_avg_sq_, max_exp_avg_sq_);
  const std::int64_t step = ++this->steps_;
  if (options_.weight_decay != 0) gradient_ += T(options_.weight_decay) * x;
  adam_update(gradient_, x, exp_avg_, exp_avg_sq_, max_exp_avg_sq_, options_.learning_rate,
              options_.beta1, options_.beta2, options_.epsilon, options_.amsgrad, step);
  return result;
}

template <class T>
void Adam<T>::save_state(StateDict& state) const {
  save_adam_state(state, name(), this->steps_, exp_avg_, exp_avg_sq_, max_exp_avg_sq_);
}

template <class T>
void Adam<T>::load_state(const StateDict& state) {
  this->steps_ =
      load_adam_state(state, name(), options_.amsgrad, exp_avg_, exp_avg_sq_, max_exp_avg_sq_);
}

template <class T>
void Adam<T>::reset() {
  exp_avg_.resize(0);
  exp_avg_sq_.resize(0);
  max_exp_avg_sq_.resize(0);
  this->steps_ = 0;
}

template <class T>
AdamW<T>::AdamW(AdamWOptions options) : options_(options) {
  options_.validate();
}

template <class T>
void AdamW<T>::set_learning_rate(double lr) {
  set_learning_rate_checked(options_, lr);
}

template <class T>
StepResult AdamW<T>::step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) {
  check_dimension(name(), exp_avg_, x);
  StepResult result;
  if (!evaluate(name(), f, x, batch, gradient_, result)) return result;
  start_adam_state(x.size(), options_.amsgrad, exp_avg_, exp_avg_sq_, max_exp_avg_sq_);
  const std::int64_t step = ++this->steps_;
  x *= T(1 - options_.learning_rate * options_.weight_decay);
  adam_update(gradient_, x, exp_avg_, exp_avg_sq_, max_exp_avg_sq_, options_.learning_rate,
              options_.beta1, options_.beta2, options_.epsilon, options_.amsgrad, step);
  return result;
}

template <class T>
void AdamW<T>::save_state(StateDict& state) const {
  save_adam_state(state, name(), this->steps_, exp_avg_, exp_avg_sq_, max_exp_avg_sq_);
}

template <class T>
void AdamW<T>::load_state(const StateDict& state) {
  this->steps_ =
      load_adam_state(state, name(), options_.amsgrad, exp_avg_, exp_avg_sq_, max_exp_avg_sq_);
}

template <class T>
void AdamW<T>::reset() {
  exp_avg_.resize(0);
  exp_avg_sq_.resize(0);
  max_exp_avg_sq_.resize(0);
  this->steps_ = 0;
}

// ---- factory ------------------------------------------------------------------------

template <class T>
std::unique_ptr<Optimizer<T>> make_first_order(const std::string& name,
                                               const OptimizerSettings& settings) {
  if (name == "sgd") return std::make_unique<Sgd<T>>(SgdOptions::from_settings(settings));
  if (name == "momentum")
    return std::make_unique<Sgd<T>>(SgdOptions::from_settings(settings, SgdOptions{.momentum = 0.9}));
  if (name == "nesterov")
    return std::make_unique<Sgd<T>>(
        SgdOptions::from_settings(settings, SgdOptions{.momentum = 0.9, .nesterov = true}));
  if (name == "adagrad")
    return std::make_unique<Adagrad<T>>(AdagradOptions::from_settings(settings));
  if (name == "rmsprop")
    return std::make_unique<Rmsprop<T>>(RmspropOptions::from_settings(settings));
  if (name == "adam") return std::make_unique<Adam<T>>(AdamOptions::from_settings(settings));
  if (name == "adamw") return std::make_unique<AdamW<T>>(AdamWOptions::from_settings(settings));
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> first_order_catalogue() {
  return {
      {"sgd", "stochastic gradient descent; momentum, dampening, nesterov, weight_decay (torch.optim.SGD)"},
      {"momentum", "sgd with momentum 0.9 (heavy ball)"},
      {"nesterov", "sgd with momentum 0.9 and nesterov = 1"},
      {"adagrad", "Adagrad: steps scaled by the root of summed squared gradients (torch.optim.Adagrad)"},
      {"rmsprop", "RMSprop, optionally centred and with momentum (torch.optim.RMSprop)"},
      {"adam", "Adam with coupled L2 weight decay and optional AMSGrad (torch.optim.Adam)"},
      {"adamw", "Adam with decoupled weight decay, default 0.01 (torch.optim.AdamW)"},
  };
}

template class Sgd<float>;
template class Sgd<double>;
template class Adagrad<float>;
template class Adagrad<double>;
template class Rmsprop<float>;
template class Rmsprop<double>;
template class Adam<float>;
template class Adam<double>;
template class AdamW<float>;
template class AdamW<double>;

template std::unique_ptr<Optimizer<float>> make_first_order<float>(const std::string&,
                                                                   const OptimizerSettings&);
template std::unique_ptr<Optimizer<double>> make_first_order<double>(const std::string&,
                                                                     const OptimizerSettings&);

}  // namespace hesse::optim
