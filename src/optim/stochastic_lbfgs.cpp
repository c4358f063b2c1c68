#include "hesse/optim/stochastic_lbfgs.hpp"

#include <cmath>
#include <sstream>

namespace hesse::optim {

namespace {

[[noreturn]] void fail(const char* field, double value, const char* rule) {
  std::ostringstream message;
  message << "slbfgs." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

/// Powell's damping (N&W Procedure 18.2): y is moved towards B s until
/// s^T y >= 0.2 s^T B s.
constexpr double kPowellFactor = 0.2;

}  // namespace

void StochasticLbfgsOptions::validate() const {
  if (!(learning_rate >= 0 && std::isfinite(learning_rate)))
    fail("learning_rate", learning_rate, "must be finite and >= 0");
  if (memory < 1) fail("memory", memory, "must be >= 1");
  if (!(curvature_threshold >= 0 && curvature_threshold < 1))
    fail("curvature_threshold", curvature_threshold, "must be in [0, 1)");
  if (!(sufficient_decrease > 0 && sufficient_decrease < 1))
    fail("sufficient_decrease", sufficient_decrease, "must be in (0, 1)");
  if (line_search_trials < 1) fail("line_search_trials", line_search_trials, "must be >= 1");
  if (!(overlap > 0 && overlap <= 1)) fail("overlap", overlap, "must be in (0, 1]");
}

StochasticLbfgsOptions StochasticLbfgsOptions::from_settings(const OptimizerSettings& settings) {
  StochasticLbfgsOptions o;
  SettingsReader r("slbfgs", settings);
  r.read("lr", o.learning_rate);
  r.read("memory", o.memory);
  r.read("curvature_threshold", o.curvature_threshold);
  r.read("powell_damping", o.powell_damping);
  r.read("line_search", o.line_search);
  r.read("sufficient_decrease", o.sufficient_decrease);
  r.read("line_search_trials", o.line_search_trials);
  r.read("overlap", o.overlap);
  r.finish();
  o.validate();
  return o;
}

template <class T>
StochasticLbfgs<T>::StochasticLbfgs(StochasticLbfgsOptions options) : options_(options) {
  options_.validate();
}

template <class T>
void StochasticLbfgs<T>::set_learning_rate(double lr) {
  if (!(lr >= 0 && std::isfinite(lr))) fail("learning_rate", lr, "must be finite and >= 0");
  options_.learning_rate = lr;
}

template <class T>
const char* StochasticLbfgs<T>::store_pair() {
  if (options_.powell_damping) {
    // B^0 = I / gamma = (y^T y / s^T y) I of the newest pair, or |y|/|s| I.
    T b = y_.norm() / s_.norm();
    if (const int count = history_.size(); count > 0) {
      const int newest = (history_.oldest() + count - 1) % history_.memory();
      b = history_.rho()[newest] * history_.y_pairs().col(newest).squaredNorm();
    }
    const T sBs = b * s_.squaredNorm();
    const T sy = s_.dot(y_);
    if (detail::is_finite(sBs) && sBs > T(0) && sy < T(kPowellFactor) * sBs) {
      const T theta = T(1 - kPowellFactor) * sBs / (sBs - sy);
      y_ = theta * y_ + ((T(1) - theta) * b) * s_;
    }
  }
  if (history_.push(s_, y_, options_.curvature_threshold)) return "";
  ++skipped_pairs_;
  return "curvature pair skipped: s^T y <= curvature_threshold |s| |y|";
}

template <class T>
StepResult StochasticLbfgs<T>::step(StochasticObjective<T>& f, Vector<T>& x,
                                    std::span<const Index> batch) {
  HESSE_REQUIRE(!batch.empty(), "slbfgs: step needs a non-empty batch");
  HESSE_REQUIRE(x.size() == f.dimension(), "slbfgs: x has " + std::to_string(x.size()) +
                                               " entries, the objective " +
                                               std::to_string(f.dimension()));
  ++this->steps_;
  const Index n = x.size();
  if (history_.s_pairs().rows() != n || history_.memory() != options_.memory)
    history_.resize(n, options_.memory);
  const bool first_step = gradient_.size() != n;
  if (first_step)
    for (Vector<T>* v : {&gradient_, &direction_, &x_new_, &g_new_, &s_, &y_}) v->setZero(n);
  StepResult result;
  // O_k: the first overlap_size samples of the batch (Berahas et al.'s overlap).
  const Index overlap_size =
      detail::subset_size(static_cast<Index>(batch.size()), options_.overlap);
  const bool whole_batch = overlap_size == static_cast<Index>(batch.size());

  f.select_batch(batch);
  const T loss = f.value_and_gradient(x, &gradient_);
  result.gradient_evaluations = 1;
  result.loss = static_cast<double>(loss);
  result.gradient_norm = static_cast<double>(gradient_.norm());
  auto reject = [&](const char* event) -> StepResult& {
    history_.clear();
    result.accepted = false;
    result.event = event;
    return result;
  };
  if (!detail::is_finite(loss) || !detail::is_finite(result.gradient_norm))
    return reject("non-finite loss or gradient: step rejected, history reset");
  if (result.gradient_norm == 0 || options_.learning_rate == 0) return result;
  if (options_.line_search) line_search_.reserve(x, loss, gradient_);

  const double first_trial = options_.learning_rate * std::min(1.0, 1.0 / result.gradient_norm);
  history_.direction(gradient_, direction_);
  double step = history_.size() > 0 ? options_.learning_rate : first_trial;
  if (!(static_cast<double>(gradient_.dot(direction_)) < 0)) {
    history_.clear();
    direction_ = -gradient_;
    step = first_trial;
    result.event = "quasi-Newton direction not descent: history reset";
  }

  T new_loss = 0;
  if (options_.line_search) {
    linesearch::LineSearchOptions search;
    search.kind = linesearch::LineSearchKind::Armijo;
    search.sufficient_decrease = options_.sufficient_decrease;
    search.max_trials = options_.line_search_trials;
    linesearch::LineSearchResult searched =
        line_search_.run(f, x, loss, gradient_, direction_, step, search, x_new_, new_loss, g_new_,
                         result.gradient_evaluations);
    if (!searched.success && history_.size() > 0) {
      history_.clear();
      result.event = "line search failed: history reset, searched along -g";
      direction_ = -gradient_;
      searched = line_search_.run(f, x, loss, gradient_, direction_, first_trial, search, x_new_,
                                  new_loss, g_new_, result.gradient_evaluations);
    }
    if (!searched.success)
      return reject("line search found no decrease: step rejected, history reset");
  } else {
    x_new_ = x + static_cast<T>(step) * direction_;
    // With O_k < B the new point is evaluated (and checked) on O_k below.
    if (whole_batch) {
      new_loss = f.value_and_gradient(x_new_, &g_new_);
      ++result.gradient_evaluations;
      if (!detail::is_finite(new_loss) || !g_new_.allFinite())
        return reject("non-finite loss or gradient at the new point: step rejected, history reset");
    }
  }

  // Berahas et al. 2016 sect. 2: both gradients of the pair on the same
  // samples O_k. With O_k = B they are g_k and the search's (or the fixed
  // step's) gradient at x_{k+1}; otherwise two more evaluations on O_k.
  s_ = x_new_ - x;
  if (whole_batch) {
    y_ = g_new_ - gradient_;
  } else {
    f.select_batch(batch.first(static_cast<std::size_t>(overlap_size)));
    const T overlap_new = f.value_and_gradient(x_new_, &g_new_);
    const T overlap_old = f.value_and_gradient(x, &y_);
    result.gradient_evaluations += 2;
    y_ = g_new_ - y_;
    if (!detail::is_finite(overlap_new) || !detail::is_finite(overlap_old) || !y_.allFinite())
      return reject("non-finite loss or gradient on the overlap: step rejected, history reset");
  }
  x = x_new_;
  const char* skipped = store_pair();
  if (*skipped != '\0' && result.event.empty()) result.event = skipped;
  return result;
}

template <class T>
void StochasticLbfgs<T>::save_state(StateDict& state) const {
  state.scalars["slbfgs.step"] = static_cast<double>(this->steps_);
  state.scalars["slbfgs.memory"] = history_.memory();
  state.scalars["slbfgs.oldest"] = history_.oldest();
  state.scalars["slbfgs.count"] = history_.size();
  state.scalars["slbfgs.skipped_pairs"] = static_cast<double>(skipped_pairs_);
  state.put("slbfgs.s", history_.s_pairs());
  state.put("slbfgs.y", history_.y_pairs());
  state.put("slbfgs.rho", history_.rho());
}

template <class T>
void StochasticLbfgs<T>::load_state(const StateDict& state) {
  const double memory = state.scalar("slbfgs.memory");
  const double oldest = state.scalar("slbfgs.oldest");
  const double count = state.scalar("slbfgs.count");
  if (memory == 0) {
    history_ = LbfgsHistory<T>();
  } else {
    if (memory != options_.memory)
      throw InvalidArgument("slbfgs: the state has memory = " + std::to_string(memory) +
                            ", this optimizer " + std::to_string(options_.memory));
    if (!(oldest >= 0 && oldest < memory && count >= 0 && count <= memory))
      throw InvalidArgument("slbfgs: state oldest = " + std::to_string(oldest) + ", count = " +
                            std::to_string(count) + ": must be in [0, memory) and [0, memory]");
    const Index n = static_cast<Index>(state.array("slbfgs.s").size()) / options_.memory;
    LbfgsHistory<T> history(n, options_.memory);
    state.get("slbfgs.s", history.s_pairs());
    state.get("slbfgs.y", history.y_pairs());
    state.get("slbfgs.rho", history.rho());
    history.set_position(static_cast<int>(oldest), static_cast<int>(count));
    history_ = std::move(history);
  }
  this->steps_ = static_cast<std::int64_t>(state.scalar("slbfgs.step"));
  skipped_pairs_ = static_cast<std::int64_t>(state.scalar("slbfgs.skipped_pairs"));
}

template <class T>
void StochasticLbfgs<T>::reset() {
  this->steps_ = 0;
  history_.clear();
  skipped_pairs_ = 0;
}

template class StochasticLbfgs<float>;
template class StochasticLbfgs<double>;

}  // namespace hesse::optim
