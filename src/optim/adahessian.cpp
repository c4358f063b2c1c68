#include "hesse/optim/adahessian.hpp"

#include <cmath>
#include <cstdint>
#include <sstream>

#include "hesse/core/error.hpp"
#include "hesse/core/finite.hpp"

namespace hesse::optim {

namespace {

[[noreturn]] void fail(const char* field, double value, const char* rule) {
  std::ostringstream message;
  message << "adahessian." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

// One random bit per entry, 64 entries per draw of the generator.
template <class T>
void fill_rademacher(Rng& rng, Vector<T>& z) {
  std::uint64_t bits = 0;
  for (Index i = 0; i < z.size(); ++i) {
    if (i % 64 == 0) bits = rng();
    z[i] = (bits & 1u) ? T(1) : T(-1);
    bits >>= 1;
  }
}

// Yao et al. eq. 10 with the reference code's absolute values.
template <class T>
void average_groups(Vector<T>& d, Index size) {
  for (Index begin = 0; begin < d.size(); begin += size) {
    const Index count = std::min(size, d.size() - begin);
    const T mean = d.segment(begin, count).cwiseAbs().sum() / T(count);
    d.segment(begin, count).setConstant(mean);
  }
}

}  // namespace

void AdaHessianOptions::validate() const {
  if (!(learning_rate >= 0 && std::isfinite(learning_rate)))
    fail("learning_rate", learning_rate, "must be finite and >= 0");
  if (!(beta1 >= 0 && beta1 < 1)) fail("beta1", beta1, "must be in [0, 1)");
  if (!(beta2 >= 0 && beta2 < 1)) fail("beta2", beta2, "must be in [0, 1)");
  if (!(epsilon > 0 && std::isfinite(epsilon))) fail("epsilon", epsilon, "must be finite and > 0");
  if (!(weight_decay >= 0 && std::isfinite(weight_decay)))
    fail("weight_decay", weight_decay, "must be finite and >= 0");
  if (!(hessian_power >= 0 && hessian_power <= 1))
    fail("hessian_power", hessian_power, "must be in [0, 1] (Yao et al. eq. 11)");
  if (hessian_every < 1) fail("hessian_every", double(hessian_every), "must be >= 1");
  if (probes < 1) fail("probes", double(probes), "must be >= 1");
  if (average_size < 1) fail("average_size", double(average_size), "must be >= 1 (1: no averaging)");
  if (seed < 0) fail("seed", double(seed), "must be >= 0");
}

AdaHessianOptions AdaHessianOptions::from_settings(const OptimizerSettings& settings) {
  AdaHessianOptions o;
  SettingsReader r("adahessian", settings);
  r.read("lr", o.learning_rate);
  r.read("beta1", o.beta1);
  r.read("beta2", o.beta2);
  r.read("eps", o.epsilon);
  r.read("weight_decay", o.weight_decay);
  r.read("hessian_power", o.hessian_power);
  r.read("hessian_every", o.hessian_every);
  r.read("probes", o.probes);
  r.read("average_size", o.average_size);
  r.read("seed", o.seed);
  r.finish();
  o.validate();
  return o;
}

template <class T>
void hutchinson_diagonal(StochasticObjective<T>& f, const Vector<T>& x, Index probes, Rng& rng,
                         Vector<T>& diagonal, Vector<T>& probe, Vector<T>& product) {
  HESSE_REQUIRE(probes >= 1, "hutchinson_diagonal: probes = " + std::to_string(probes) +
                                 ": must be >= 1");
  if (!f.has_hessian_vector())
    throw InvalidArgument(
        "Hutchinson's diagonal estimate needs Hessian-vector products "
        "(StochasticObjective::hessian_vector), which this objective does not provide");
  const Index n = x.size();
  diagonal.setZero(n);
  probe.resize(n);
  for (Index k = 0; k < probes; ++k) {
    fill_rademacher(rng, probe);
    f.hessian_vector(x, probe, product);
    diagonal.array() += probe.array() * product.array();
  }
  if (probes > 1) diagonal /= T(probes);
}

template <class T>
AdaHessian<T>::AdaHessian(AdaHessianOptions options)
    : options_(options), rng_(static_cast<std::uint64_t>(options.seed)) {
  options_.validate();
}

template <class T>
void AdaHessian<T>::set_learning_rate(double lr) {
  AdaHessianOptions changed = options_;
  changed.learning_rate = lr;
  changed.validate();
  options_ = changed;
}

template <class T>
StepResult AdaHessian<T>::step(StochasticObjective<T>& f, Vector<T>& x,
                               std::span<const Index> batch) {
  if (exp_avg_.size() != 0 && exp_avg_.size() != x.size())
    throw InvalidArgument("adahessian: the optimizer's state holds " +
                          std::to_string(exp_avg_.size()) + " parameters, x has " +
                          std::to_string(x.size()));
  StepResult result;
  f.select_batch(batch);
  const T loss = f.value_and_gradient(x, &gradient_);
  result.loss = static_cast<double>(loss);
  result.gradient_norm = static_cast<double>(gradient_.norm());
  result.gradient_evaluations = 1;
  if (!std::isfinite(result.loss) || !all_finite(gradient_)) {
    result.accepted = false;
    result.event = "non-finite loss or gradient: step rejected, x and state unchanged";
    return result;
  }

  const std::int64_t t = this->steps_ + 1;
  const bool estimate = (t - 1) % options_.hessian_every == 0;
  // The probes draw from a copy of the generator, kept only if the step is.
  Rng rng = rng_;
  if (estimate) {
    hutchinson_diagonal(f, x, options_.probes, rng, estimate_, probe_, product_);
    result.curvature_products = options_.probes;
    if (options_.average_size > 1) average_groups(estimate_, options_.average_size);
    if (!all_finite(estimate_)) {
      result.accepted = false;
      result.event =
          "non-finite Hessian diagonal estimate: step rejected, x and state unchanged";
      return result;
    }
  }

  if (exp_avg_.size() == 0) {
    exp_avg_.setZero(x.size());
    exp_hessian_diag_sq_.setZero(x.size());
    diagonal_.setZero(x.size());
  }
  if (estimate) {
    diagonal_.swap(estimate_);
    rng_ = rng;
  }
  this->steps_ = t;

  const double lr = options_.learning_rate;
  if (options_.weight_decay != 0) x *= T(1 - lr * options_.weight_decay);
  const T beta1 = T(options_.beta1), beta2 = T(options_.beta2);
  exp_avg_.array() = beta1 * exp_avg_.array() + (T(1) - beta1) * gradient_.array();
  exp_hessian_diag_sq_.array() =
      beta2 * exp_hessian_diag_sq_.array() + (T(1) - beta2) * diagonal_.array().square();
  const double k = static_cast<double>(t);
  const double bias_correction1 = 1 - std::pow(options_.beta1, k);
  const double bias_correction2 = 1 - std::pow(options_.beta2, k);
  const T step_size = T(lr / bias_correction1);
  const T epsilon = T(options_.epsilon);
  if (options_.hessian_power == 1) {
    const T root_correction = T(std::sqrt(bias_correction2));
    x.array() -= step_size * exp_avg_.array() /
                 (exp_hessian_diag_sq_.array().sqrt() / root_correction + epsilon);
  } else {
    // A scalar loop: Eigen's vectorised pow trips GCC 12's uninitialised-
    // variable warning inside the AVX-512 intrinsics.
    const T half_power = T(options_.hessian_power / 2);
    const T correction = T(bias_correction2);
    for (Index i = 0; i < x.size(); ++i)
      x[i] -= step_size * exp_avg_[i] /
              (std::pow(exp_hessian_diag_sq_[i] / correction, half_power) + epsilon);
  }
  return result;
}

template <class T>
void AdaHessian<T>::save_state(StateDict& state) const {
  state.scalars["adahessian.step"] = static_cast<double>(this->steps_);
  state.put_rng("adahessian.rng", rng_);
  if (exp_avg_.size() == 0) return;
  state.put("adahessian.exp_avg", exp_avg_);
  state.put("adahessian.exp_hessian_diag_sq", exp_hessian_diag_sq_);
  state.put("adahessian.hessian_diagonal", diagonal_);
}

template <class T>
void AdaHessian<T>::load_state(const StateDict& state) {
  const double step = state.scalar("adahessian.step");
  if (!(step >= 0 && step == std::floor(step) && step < 0x1p62))
    throw InvalidArgument("state: scalar 'adahessian.step' = " + std::to_string(step) +
                          " is not a step count");
  Rng rng;
  state.get_rng("adahessian.rng", rng);
  Vector<T> exp_avg, exp_sq, diagonal;
  if (state.has_array("adahessian.exp_avg")) {
    const Index n = static_cast<Index>(state.array("adahessian.exp_avg").size());
    exp_avg.resize(n);
    exp_sq.resize(n);
    diagonal.resize(n);
    state.get("adahessian.exp_avg", exp_avg);
    state.get("adahessian.exp_hessian_diag_sq", exp_sq);
    state.get("adahessian.hessian_diagonal", diagonal);
  }
  exp_avg_.swap(exp_avg);
  exp_hessian_diag_sq_.swap(exp_sq);
  diagonal_.swap(diagonal);
  rng_ = rng;
  this->steps_ = static_cast<std::int64_t>(step);
}

template <class T>
void AdaHessian<T>::reset() {
  exp_avg_.resize(0);
  exp_hessian_diag_sq_.resize(0);
  diagonal_.resize(0);
  rng_.seed(static_cast<std::uint64_t>(options_.seed));
  this->steps_ = 0;
}

template class AdaHessian<float>;
template class AdaHessian<double>;
template void hutchinson_diagonal<float>(StochasticObjective<float>&, const Vector<float>&, Index,
                                         Rng&, Vector<float>&, Vector<float>&, Vector<float>&);
template void hutchinson_diagonal<double>(StochasticObjective<double>&, const Vector<double>&,
                                          Index, Rng&, Vector<double>&, Vector<double>&,
                                          Vector<double>&);

}  // namespace hesse::optim
