#include "hesse/optim/stochastic_lbfgs.hpp"

#include <algorithm>
#include <array>
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
  if (overlap_size < 0)
    fail("overlap_size", static_cast<double>(overlap_size), "must be >= 0 (0: use overlap)");
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
  r.read("overlap_size", o.overlap_size);
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
T StochasticLbfgs<T>::batch_gradient(StochasticObjective<T>& f, const Vector<T>& x,
                                     std::span<const Index> batch, Index head, Index overlap_size) {
  const Index size = static_cast<Index>(batch.size());
  const Index tail_begin = overlap_size < size ? size - overlap_size : size;
  // The parts: runs between the cuts 0, head, tail_begin and |B|, so each
  // lies wholly inside or outside the head and the tail.
  std::array<Index, 4> cuts{0, head, tail_begin, size};
  std::sort(cuts.begin(), cuts.end());
  const Index* cuts_end = std::unique(cuts.begin(), cuts.end());
  if (cuts_end - cuts.begin() == 2) {  // one part: the whole batch, as one call
    f.select_batch(batch);
    const T loss = f.value_and_gradient(x, &gradient_);
    if (head > 0) head_gradient_ = gradient_;
    if (tail_begin < size) tail_gradient_ = gradient_;
    return loss;
  }
  gradient_.setZero();
  if (head > 0) head_gradient_.setZero();
  if (tail_begin < size) tail_gradient_.setZero();
  double loss = 0;
  for (const Index* cut = cuts.begin(); cut + 1 != cuts_end; ++cut) {
    const Index begin = cut[0], count = cut[1] - cut[0];
    f.select_batch(batch.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(count)));
    // Unclipped: a clip (fit()'s gradient_clip_norm) applies to the sums below.
    const T part_loss = f.value_and_unclipped_gradient(x, &part_gradient_);
    const double part = static_cast<double>(count);
    loss += part / static_cast<double>(size) * static_cast<double>(part_loss);
    gradient_.noalias() += static_cast<T>(part / static_cast<double>(size)) * part_gradient_;
    if (begin + count <= head)
      head_gradient_.noalias() += static_cast<T>(part / static_cast<double>(head)) * part_gradient_;
    if (begin >= tail_begin)
      tail_gradient_.noalias() +=
          static_cast<T>(part / static_cast<double>(overlap_size)) * part_gradient_;
  }
  // Each gradient clipped as a whole, as value_and_gradient on its samples
  // would be: g_k on B, and the head and the tail on O_{k-1} and O_k, so a
  // pair's y is the same whether its ends come from parts or from the
  // gradient on O_k.
  f.clip_gradient(gradient_);
  if (head > 0) f.clip_gradient(head_gradient_);
  if (tail_begin < size) f.clip_gradient(tail_gradient_);
  return static_cast<T>(loss);
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
    for (Vector<T>* v : {&gradient_, &direction_, &x_new_, &g_new_, &s_, &y_, &part_gradient_,
                         &head_gradient_, &tail_gradient_})
      v->setZero(n);
  if (pending_ && pending_x_.size() != n) pending_ = false;  // a state for another x
  StepResult result;
  const Index size = static_cast<Index>(batch.size());
  // O_k: the last overlap_size samples of the batch (Berahas et al.'s overlap).
  const Index overlap_size = detail::subset_size(size, options_.overlap, options_.overlap_size);
  const bool whole_batch = overlap_size == size;
  if (!whole_batch) pending_samples_.reserve(batch.size());

  // The pending pair's grad f_O(x_{k+1}): the head of this batch's gradient
  // when the batch starts with O_k, else one evaluation on O_k.
  Index head = 0;
  if (pending_ && pending_samples_.size() <= batch.size() &&
      std::equal(pending_samples_.begin(), pending_samples_.end(), batch.begin()))
    head = static_cast<Index>(pending_samples_.size());
  const T loss = batch_gradient(f, x, batch, head, whole_batch ? size : overlap_size);
  result.gradient_evaluations = 1;
  result.loss = static_cast<double>(loss);
  result.gradient_norm = static_cast<double>(gradient_.norm());
  auto reject = [&](const char* event) -> StepResult& {
    history_.clear();
    pending_ = false;
    result.accepted = false;
    result.event = event;
    return result;
  };
  if (!detail::is_finite(loss) || !detail::is_finite(result.gradient_norm))
    return reject("non-finite loss or gradient: step rejected, history reset");
  bool batch_selected = head == 0 && whole_batch;  // else the last selection was a part
  if (pending_) {
    if (head == 0) {
      f.select_batch(pending_samples_);
      const T overlap_loss = f.value_and_gradient(x, &head_gradient_);
      batch_selected = false;
      ++result.gradient_evaluations;
      ++extra_overlap_gradients_;
      if (!detail::is_finite(overlap_loss) || !head_gradient_.allFinite())
        return reject("non-finite loss or gradient on the overlap: step rejected, history reset");
    } else {
      ++reused_overlap_gradients_;
    }
    // Berahas et al. 2016 sect. 2: s = x_{k+1} - x_k and y on O_k at both points.
    s_ = x - pending_x_;
    pending_ = false;
    if (s_.squaredNorm() > T(0)) {
      y_ = head_gradient_ - pending_gradient_;
      result.event = store_pair();
    }
  }
  if (!whole_batch) {
    pending_x_ = x;
    pending_gradient_ = tail_gradient_;
    pending_samples_.assign(batch.end() - overlap_size, batch.end());
    pending_ = true;
  }
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
    if (!batch_selected) f.select_batch(batch);
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
    // With O_k < B the next step evaluates the new point.
    if (whole_batch) {
      if (!batch_selected) f.select_batch(batch);
      new_loss = f.value_and_gradient(x_new_, &g_new_);
      ++result.gradient_evaluations;
      if (!detail::is_finite(new_loss) || !g_new_.allFinite())
        return reject("non-finite loss or gradient at the new point: step rejected, history reset");
    }
  }

  if (!whole_batch) {  // the pair waits for the next step
    x = x_new_;
    return result;
  }
  // O_k = B: the pair from g_k and the search's (or the fixed step's)
  // gradient at x_{k+1}.
  s_ = x_new_ - x;
  y_ = g_new_ - gradient_;
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
  state.scalars["slbfgs.reused_overlap_gradients"] = static_cast<double>(reused_overlap_gradients_);
  state.scalars["slbfgs.extra_overlap_gradients"] = static_cast<double>(extra_overlap_gradients_);
  // The pending pair: empty arrays when none.
  auto& samples = state.arrays["slbfgs.pending_samples"];
  samples.clear();
  if (pending_) {
    state.put("slbfgs.pending_x", pending_x_);
    state.put("slbfgs.pending_gradient", pending_gradient_);
    samples.assign(pending_samples_.begin(), pending_samples_.end());
  } else {
    state.arrays["slbfgs.pending_x"].clear();
    state.arrays["slbfgs.pending_gradient"].clear();
  }
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
  // The pending pair; a state written before it existed has none.
  bool pending = false;
  Vector<T> pending_x, pending_gradient;
  std::vector<Index> pending_samples;
  if (state.has_array("slbfgs.pending_samples")) {
    const std::vector<double>& samples = state.array("slbfgs.pending_samples");
    const std::size_t n = state.array("slbfgs.pending_x").size();
    if (samples.empty() != (n == 0) || state.array("slbfgs.pending_gradient").size() != n)
      throw InvalidArgument("slbfgs: state pending pair with " + std::to_string(samples.size()) +
                            " samples, " + std::to_string(n) + " entries of x and " +
                            std::to_string(state.array("slbfgs.pending_gradient").size()) +
                            " of the gradient: must be all empty or none, and x and the "
                            "gradient of one size");
    if (!samples.empty()) {
      pending = true;
      pending_x.resize(static_cast<Index>(n));
      pending_gradient.resize(static_cast<Index>(n));
      state.get("slbfgs.pending_x", pending_x);
      state.get("slbfgs.pending_gradient", pending_gradient);
      for (const double sample : samples) {
        if (!(sample >= 0 && sample == std::floor(sample)))
          throw InvalidArgument("slbfgs: state pending sample " + std::to_string(sample) +
                                ": must be a whole number >= 0");
        pending_samples.push_back(static_cast<Index>(sample));
      }
    }
  }
  this->steps_ = static_cast<std::int64_t>(state.scalar("slbfgs.step"));
  skipped_pairs_ = static_cast<std::int64_t>(state.scalar("slbfgs.skipped_pairs"));
  const auto counter = [&](const char* name) {
    return state.scalars.count(name) ? static_cast<std::int64_t>(state.scalar(name)) : 0;
  };
  reused_overlap_gradients_ = counter("slbfgs.reused_overlap_gradients");
  extra_overlap_gradients_ = counter("slbfgs.extra_overlap_gradients");
  pending_ = pending;
  if (pending) {
    pending_x_ = std::move(pending_x);
    pending_gradient_ = std::move(pending_gradient);
    pending_samples_ = std::move(pending_samples);
  }
}

template <class T>
void StochasticLbfgs<T>::reset() {
  this->steps_ = 0;
  history_.clear();
  skipped_pairs_ = 0;
  reused_overlap_gradients_ = extra_overlap_gradients_ = 0;
  pending_ = false;
}

template class StochasticLbfgs<float>;
template class StochasticLbfgs<double>;

}  // namespace hesse::optim
