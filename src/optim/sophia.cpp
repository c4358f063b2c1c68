#include "hesse/optim/sophia.hpp"

#include <cmath>
#include <cstdint>
#include <sstream>

#include "hesse/core/error.hpp"
#include "hesse/core/finite.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/optim/adahessian.hpp"

namespace hesse::optim {

namespace {

[[noreturn]] void fail(const char* field, double value, const char* rule) {
  std::ostringstream message;
  message << "sophia." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

}  // namespace

void SophiaOptions::validate() const {
  if (!(learning_rate >= 0 && std::isfinite(learning_rate)))
    fail("learning_rate", learning_rate, "must be finite and >= 0");
  if (!(beta1 >= 0 && beta1 < 1)) fail("beta1", beta1, "must be in [0, 1)");
  if (!(beta2 >= 0 && beta2 < 1)) fail("beta2", beta2, "must be in [0, 1)");
  if (!(rho > 0 && std::isfinite(rho))) fail("rho", rho, "must be finite and > 0");
  if (!(epsilon > 0 && std::isfinite(epsilon))) fail("epsilon", epsilon, "must be finite and > 0");
  if (!(weight_decay >= 0 && std::isfinite(weight_decay)))
    fail("weight_decay", weight_decay, "must be finite and >= 0");
  if (hessian_every < 1) fail("hessian_every", double(hessian_every), "must be >= 1");
  if (estimator != SophiaEstimator::GaussNewtonBartlett && estimator != SophiaEstimator::Hutchinson)
    fail("estimator", double(static_cast<int>(estimator)),
         "must be 0 (Gauss-Newton-Bartlett) or 1 (Hutchinson)");
  if (seed < 0) fail("seed", double(seed), "must be >= 0");
}

SophiaOptions SophiaOptions::from_settings(const OptimizerSettings& settings) {
  SophiaOptions o;
  SettingsReader r("sophia", settings);
  r.read("lr", o.learning_rate);
  r.read("beta1", o.beta1);
  r.read("beta2", o.beta2);
  r.read("rho", o.rho);
  r.read("eps", o.epsilon);
  r.read("weight_decay", o.weight_decay);
  r.read("hessian_every", o.hessian_every);
  int estimator = static_cast<int>(o.estimator);
  r.read("estimator", estimator);
  o.estimator = static_cast<SophiaEstimator>(estimator);
  r.read("seed", o.seed);
  r.finish();
  o.validate();
  return o;
}

template <class T>
void gauss_newton_bartlett_diagonal(nn::NetworkObjective<T>& network, const Vector<T>& x,
                                    Index draws, Rng& rng, Vector<T>& diagonal,
                                    Vector<T>& sampled_gradient) {
  HESSE_REQUIRE(draws >= 1, "gauss_newton_bartlett_diagonal: draws = " + std::to_string(draws) +
                                ": must be >= 1");
  diagonal.setZero(x.size());
  const T batch = static_cast<T>(network.num_selected());
  for (Index k = 0; k < draws; ++k) {
    network.sampled_target_gradient(x, rng, sampled_gradient);
    diagonal.array() += batch * sampled_gradient.array().square();
  }
  if (draws > 1) diagonal /= T(draws);
}

template <class T>
Sophia<T>::Sophia(SophiaOptions options)
    : options_(options), rng_(static_cast<std::uint64_t>(options.seed)) {
  options_.validate();
}

template <class T>
void Sophia<T>::set_learning_rate(double lr) {
  SophiaOptions changed = options_;
  changed.learning_rate = lr;
  changed.validate();
  options_ = changed;
}

template <class T>
StepResult Sophia<T>::step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) {
  if (exp_avg_.size() != 0 && exp_avg_.size() != x.size())
    throw InvalidArgument("sophia: the optimizer's state holds " + std::to_string(exp_avg_.size()) +
                          " parameters, x has " + std::to_string(x.size()));
  const bool gnb = options_.estimator == SophiaEstimator::GaussNewtonBartlett;
  nn::NetworkObjective<T>* network = gnb ? f.network() : nullptr;
  if (gnb && network == nullptr)
    throw InvalidArgument(
        "sophia: estimator 0 (Gauss-Newton-Bartlett) samples targets from the model and needs a "
        "network objective (StochasticObjective::network() is null); set estimator = 1 "
        "(Hutchinson)");

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
  // Draws come from a copy of the generator, kept only if the step is.
  Rng rng = rng_;
  if (estimate) {
    if (gnb) {
      gauss_newton_bartlett_diagonal(*network, x, 1, rng, estimate_, scratch_);
      result.gradient_evaluations += 1;
    } else {
      hutchinson_diagonal(f, x, 1, rng, estimate_, scratch_, product_);
      result.curvature_products = 1;
    }
    if (!all_finite(estimate_)) {
      result.accepted = false;
      result.event = "non-finite curvature estimate: step rejected, x and state unchanged";
      return result;
    }
  }

  if (exp_avg_.size() == 0) {
    exp_avg_.setZero(x.size());
    hessian_.setZero(x.size());
  }
  const T beta1 = T(options_.beta1), beta2 = T(options_.beta2);
  if (estimate) {
    hessian_.array() = beta2 * hessian_.array() + (T(1) - beta2) * estimate_.array();
    rng_ = rng;
  }
  this->steps_ = t;

  const double lr = options_.learning_rate;
  exp_avg_.array() = beta1 * exp_avg_.array() + (T(1) - beta1) * gradient_.array();
  if (options_.weight_decay != 0) x *= T(1 - lr * options_.weight_decay);
  const T rho = T(options_.rho), epsilon = T(options_.epsilon);
  x.array() -= T(lr) * (exp_avg_.array() / (rho * hessian_.array()).max(epsilon))
                           .max(T(-1))
                           .min(T(1));
  return result;
}

template <class T>
void Sophia<T>::save_state(StateDict& state) const {
  state.scalars["sophia.step"] = static_cast<double>(this->steps_);
  state.put_rng("sophia.rng", rng_);
  if (exp_avg_.size() == 0) return;
  state.put("sophia.exp_avg", exp_avg_);
  state.put("sophia.hessian", hessian_);
}

template <class T>
void Sophia<T>::load_state(const StateDict& state) {
  const double step = state.scalar("sophia.step");
  if (!(step >= 0 && step == std::floor(step) && step < 0x1p62))
    throw InvalidArgument("state: scalar 'sophia.step' = " + std::to_string(step) +
                          " is not a step count");
  Rng rng;
  state.get_rng("sophia.rng", rng);
  Vector<T> exp_avg, hessian;
  if (state.has_array("sophia.exp_avg")) {
    const Index n = static_cast<Index>(state.array("sophia.exp_avg").size());
    exp_avg.resize(n);
    hessian.resize(n);
    state.get("sophia.exp_avg", exp_avg);
    state.get("sophia.hessian", hessian);
  }
  exp_avg_.swap(exp_avg);
  hessian_.swap(hessian);
  rng_ = rng;
  this->steps_ = static_cast<std::int64_t>(step);
}

template <class T>
void Sophia<T>::reset() {
  exp_avg_.resize(0);
  hessian_.resize(0);
  rng_.seed(static_cast<std::uint64_t>(options_.seed));
  this->steps_ = 0;
}

template class Sophia<float>;
template class Sophia<double>;
template void gauss_newton_bartlett_diagonal<float>(nn::NetworkObjective<float>&,
                                                    const Vector<float>&, Index, Rng&,
                                                    Vector<float>&, Vector<float>&);
template void gauss_newton_bartlett_diagonal<double>(nn::NetworkObjective<double>&,
                                                     const Vector<double>&, Index, Rng&,
                                                     Vector<double>&, Vector<double>&);

}  // namespace hesse::optim
