#include "hesse/optim/full_batch_lbfgs.hpp"

#include <cmath>

#include "hesse/optim/evaluator.hpp"

namespace hesse::optim {

void FullBatchLbfgsOptions::validate() const {
  HESSE_REQUIRE(lr > 0 && std::isfinite(lr),
                "lbfgs.lr = " + std::to_string(lr) + ": must be positive and finite");
  HESSE_REQUIRE(memory >= 1, "lbfgs.memory = " + std::to_string(memory) + ": must be >= 1");
  HESSE_REQUIRE(curvature_threshold >= 0 && curvature_threshold < 1,
                "lbfgs.curvature_threshold = " + std::to_string(curvature_threshold) +
                    ": must be in [0, 1)");
  line_search.validate("lbfgs.line_search");
}

FullBatchLbfgsOptions FullBatchLbfgsOptions::from_settings(const OptimizerSettings& settings) {
  FullBatchLbfgsOptions o;
  SettingsReader r("lbfgs", settings);
  r.read("lr", o.lr);
  r.read("memory", o.memory);
  r.read("curvature_threshold", o.curvature_threshold);
  r.read("max_trials", o.line_search.max_trials);
  r.finish();
  o.validate();
  return o;
}

namespace {

// The stochastic objective, restricted to all samples, as the concept-typed
// objective the line searches evaluate through an Evaluator.
template <class T>
struct WholeSet {
  using Scalar = T;
  StochasticObjective<T>& f;
  Index dimension() const { return f.dimension(); }
  T value(const Vector<T>& x) { return f.value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) { return f.value_and_gradient(x, g); }
};

}  // namespace

template <class T>
FullBatchLbfgs<T>::FullBatchLbfgs(FullBatchLbfgsOptions options) : options_(options) {
  options_.validate();
}

template <class T>
void FullBatchLbfgs<T>::reset() {
  history_ = LbfgsHistory<T>();
  have_point_ = false;
  this->steps_ = 0;
}

template <class T>
void FullBatchLbfgs<T>::on_numerical_failure() {
  history_.clear();
  have_point_ = false;
}

template <class T>
StepResult FullBatchLbfgs<T>::step(StochasticObjective<T>& f, Vector<T>& x,
                                   std::span<const Index>) {
  const Index n = x.size();
  if (history_.memory() != options_.memory || history_.s_pairs().rows() != n)
    history_.resize(n, options_.memory);
  f.select_all();
  WholeSet<T> whole{f};
  Summary summary;
  TerminationOptions termination;
  Evaluator<WholeSet<T>> evaluator(whole, termination, summary);
  StepResult result;
  // The point evaluated at the end of the previous step is reused unless x
  // was changed from outside (a restored checkpoint, the NaN guard).
  if (!have_point_ || x_.size() != n || x_ != x) {
    fx_ = evaluator.value_and_gradient(x, g_);
    x_ = x;
    have_point_ = true;
  }
  result.loss = double(fx_);
  result.gradient_norm = double(g_.norm());
  if (!std::isfinite(result.loss) || !g_.allFinite()) {
    have_point_ = false;
    result.accepted = false;
    result.event = "NaN/Inf loss or gradient on the training set; step rejected";
    result.gradient_evaluations = summary.counts.gradient;
    return result;
  }
  const double unit = result.gradient_norm > 0 ? 1.0 / result.gradient_norm : 1.0;
  history_.direction(g_, direction_);
  T f_new = 0;
  auto search = [&](double first) {
    return linesearch::line_search(evaluator, x_, fx_, g_, direction_, first * options_.lr,
                                   options_.line_search, x_new_, f_new, g_new_);
  };
  linesearch::LineSearchResult ls = search(history_.size() > 0 ? 1.0 : unit);
  if (!ls.success && history_.size() > 0) {
    history_.clear();
    result.event = "line search failed; history reset";
    direction_ = -g_;
    ls = search(unit);
  }
  result.gradient_evaluations = summary.counts.gradient;
  if (!ls.success) {
    result.accepted = false;
    result.event = "line search failed: " + ls.message;
    ++this->steps_;
    return result;
  }
  s_ = x_new_ - x_;
  y_ = g_new_ - g_;
  if (!history_.push(s_, y_, options_.curvature_threshold))
    result.event += (result.event.empty() ? "" : "; ") + std::string("curvature pair skipped");
  x_.swap(x_new_);
  g_.swap(g_new_);
  fx_ = f_new;
  x = x_;
  ++this->steps_;
  return result;
}

template <class T>
void FullBatchLbfgs<T>::save_state(StateDict& state) const {
  state.scalars["lbfgs.steps"] = double(this->steps_);
  state.scalars["lbfgs.count"] = history_.size();
  state.scalars["lbfgs.oldest"] = history_.oldest();
  state.scalars["lbfgs.have_point"] = have_point_;
  if (history_.memory() > 0) {
    state.put("lbfgs.s", history_.s_pairs());
    state.put("lbfgs.y", history_.y_pairs());
    state.put("lbfgs.rho", history_.rho());
  }
  if (have_point_) {
    state.put("lbfgs.x", x_);
    state.put("lbfgs.g", g_);
    state.scalars["lbfgs.f"] = double(fx_);
  }
}

template <class T>
void FullBatchLbfgs<T>::load_state(const StateDict& state) {
  this->steps_ = std::int64_t(state.scalar("lbfgs.steps"));
  have_point_ = state.scalar("lbfgs.have_point") != 0;
  if (state.has_array("lbfgs.rho")) {
    const Index n = Index(state.array("lbfgs.s").size() / state.array("lbfgs.rho").size());
    history_.resize(n, int(state.array("lbfgs.rho").size()));
    state.get("lbfgs.s", history_.s_pairs());
    state.get("lbfgs.y", history_.y_pairs());
    state.get("lbfgs.rho", history_.rho());
    history_.set_position(int(state.scalar("lbfgs.oldest")), int(state.scalar("lbfgs.count")));
  } else {
    history_ = LbfgsHistory<T>();
  }
  if (have_point_) {
    x_.resize(Index(state.array("lbfgs.x").size()));
    g_.resize(x_.size());
    state.get("lbfgs.x", x_);
    state.get("lbfgs.g", g_);
    fx_ = T(state.scalar("lbfgs.f"));
  }
}

template class FullBatchLbfgs<float>;
template class FullBatchLbfgs<double>;

}  // namespace hesse::optim
