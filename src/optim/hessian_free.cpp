#include "hesse/optim/hessian_free.hpp"

#include <cmath>
#include <limits>
#include <random>
#include <sstream>

#include "hesse/nn/network_objective.hpp"
#include "hesse/optim/stochastic_lbfgs.hpp"
#include "hesse/optim/subsampled_newton.hpp"

namespace hesse::optim {

// ---------------------------------------------------------------- the family

template <class T>
std::unique_ptr<Optimizer<T>> make_hessian_free_family(const std::string& name,
                                                       const OptimizerSettings& settings) {
  if (name == "hessian-free")
    return std::make_unique<HessianFree<T>>(HessianFreeOptions::from_settings(settings));
  if (name == "subsampled-newton")
    return std::make_unique<SubsampledNewton<T>>(SubsampledNewtonOptions::from_settings(settings));
  if (name == "slbfgs")
    return std::make_unique<StochasticLbfgs<T>>(StochasticLbfgsOptions::from_settings(settings));
  return nullptr;
}

template std::unique_ptr<Optimizer<float>> make_hessian_free_family<float>(
    const std::string&, const OptimizerSettings&);
template std::unique_ptr<Optimizer<double>> make_hessian_free_family<double>(
    const std::string&, const OptimizerSettings&);

std::vector<std::pair<std::string, std::string>> hessian_free_family_catalogue() {
  return {
      {"hessian-free",
       "Martens' Hessian-free: Gauss-Newton CG on a curvature sub-batch, LM damping, backtracking"},
      {"subsampled-newton",
       "subsampled Newton-CG: batch gradient, Hessian products on a sub-sample, Armijo search"},
      {"slbfgs", "stochastic L-BFGS: curvature pairs from two gradients on the batch or its first part (overlap)"},
  };
}

namespace detail {

Index subset_size(Index batch_size, double fraction, Index fixed_size) {
  if (fixed_size > 0) return std::min(fixed_size, batch_size);
  const Index rounded = static_cast<Index>(std::llround(fraction * static_cast<double>(batch_size)));
  return std::clamp<Index>(rounded, 1, batch_size);
}

void draw_subset(Rng& rng, std::span<const Index> batch, Index count, std::vector<Index>& subset) {
  const Index size = static_cast<Index>(batch.size());
  HESSE_ASSERT(count >= 1 && count <= size, "draw_subset: count out of range");
  subset.assign(batch.begin(), batch.end());
  if (count == size) return;
  for (Index i = 0; i < count; ++i) {
    std::uniform_int_distribution<Index> pick(i, size - 1);
    std::swap(subset[static_cast<std::size_t>(i)], subset[static_cast<std::size_t>(pick(rng))]);
  }
  subset.resize(static_cast<std::size_t>(count));
}

}  // namespace detail

// ---------------------------------------------------------------- Martens' CG

const char* to_string(MartensCgStatus status) {
  switch (status) {
    case MartensCgStatus::ProgressStalled: return "progress stalled";
    case MartensCgStatus::Converged: return "converged";
    case MartensCgStatus::IterationLimit: return "iteration limit";
    case MartensCgStatus::NegativeCurvature: return "negative curvature";
    case MartensCgStatus::Breakdown: return "breakdown";
  }
  return "unknown";
}

namespace {

[[noreturn]] void fail(const std::string& owner, const char* field, double value, const char* rule) {
  std::ostringstream message;
  message << owner << "." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

}  // namespace

void MartensCgOptions::validate(const std::string& owner) const {
  if (max_iterations < 1) fail(owner, "max_iterations", double(max_iterations), "must be >= 1");
  if (!(progress_tolerance >= 0 && progress_tolerance < 1))
    fail(owner, "progress_tolerance", progress_tolerance, "must be in [0, 1)");
  if (min_window < 1) fail(owner, "min_window", double(min_window), "must be >= 1");
  if (!(window_fraction >= 0 && window_fraction < 1))
    fail(owner, "window_fraction", window_fraction, "must be in [0, 1)");
  if (!(relative_residual_tolerance >= 0 && relative_residual_tolerance < 1))
    fail(owner, "relative_residual_tolerance", relative_residual_tolerance, "must be in [0, 1)");
  if (!(backtrack_ratio > 1 && std::isfinite(backtrack_ratio)))
    fail(owner, "backtrack_ratio", backtrack_ratio, "must be finite and > 1");
}

// ---------------------------------------------------------------- options

void HessianFreeOptions::validate() const {
  const std::string owner = "hessian_free";
  if (!(learning_rate >= 0 && std::isfinite(learning_rate)))
    fail(owner, "learning_rate", learning_rate, "must be finite and >= 0");
  if (curvature != CurvatureProduct::GaussNewton && curvature != CurvatureProduct::Hessian)
    fail(owner, "curvature", double(curvature), "must be GaussNewton or Hessian");
  if (!(curvature_fraction > 0 && curvature_fraction <= 1))
    fail(owner, "curvature_fraction", curvature_fraction, "must be in (0, 1]");
  if (!(min_damping > 0 && std::isfinite(min_damping)))
    fail(owner, "min_damping", min_damping, "must be finite and > 0");
  if (!(max_damping >= min_damping && std::isfinite(max_damping)))
    fail(owner, "max_damping", max_damping, "must be finite and >= min_damping");
  if (!(damping >= min_damping && damping <= max_damping))
    fail(owner, "damping", damping, "must be in [min_damping, max_damping]");
  if (!(damping_increase > 1 && std::isfinite(damping_increase)))
    fail(owner, "damping_increase", damping_increase, "must be finite and > 1");
  if (!(damping_decrease > 0 && damping_decrease < 1))
    fail(owner, "damping_decrease", damping_decrease, "must be in (0, 1)");
  if (max_cg_iterations < 1)
    fail(owner, "max_cg_iterations", double(max_cg_iterations), "must be >= 1");
  if (!(cg_progress_tolerance >= 0 && cg_progress_tolerance < 1))
    fail(owner, "cg_progress_tolerance", cg_progress_tolerance, "must be in [0, 1)");
  if (!(cg_warm_start_decay >= 0 && cg_warm_start_decay <= 1))
    fail(owner, "cg_warm_start_decay", cg_warm_start_decay, "must be in [0, 1]");
  if (!(cg_backtrack_ratio > 1 && std::isfinite(cg_backtrack_ratio)))
    fail(owner, "cg_backtrack_ratio", cg_backtrack_ratio, "must be finite and > 1");
  if (preconditioner != HessianFreePreconditioner::None &&
      preconditioner != HessianFreePreconditioner::EmpiricalFisherDiagonal)
    fail(owner, "preconditioner", double(preconditioner), "must be None or EmpiricalFisherDiagonal");
  if (!(preconditioner_exponent >= 0 && preconditioner_exponent <= 1))
    fail(owner, "preconditioner_exponent", preconditioner_exponent, "must be in [0, 1]");
  if (!(sufficient_decrease > 0 && sufficient_decrease < 1))
    fail(owner, "sufficient_decrease", sufficient_decrease, "must be in (0, 1)");
  if (line_search_trials < 1)
    fail(owner, "line_search_trials", line_search_trials, "must be >= 1");
}

HessianFreeOptions HessianFreeOptions::from_settings(const OptimizerSettings& settings) {
  HessianFreeOptions o;
  SettingsReader r("hessian-free", settings);
  r.read("lr", o.learning_rate);
  bool gauss_newton = o.curvature == CurvatureProduct::GaussNewton;
  r.read("gauss_newton", gauss_newton);
  o.curvature = gauss_newton ? CurvatureProduct::GaussNewton : CurvatureProduct::Hessian;
  r.read("curvature_fraction", o.curvature_fraction);
  r.read("damping", o.damping);
  r.read("min_damping", o.min_damping);
  r.read("max_damping", o.max_damping);
  r.read("damping_increase", o.damping_increase);
  r.read("damping_decrease", o.damping_decrease);
  r.read("max_cg_iterations", o.max_cg_iterations);
  r.read("cg_progress_tolerance", o.cg_progress_tolerance);
  r.read("cg_warm_start_decay", o.cg_warm_start_decay);
  r.read("cg_backtrack_ratio", o.cg_backtrack_ratio);
  bool preconditioned = o.preconditioner != HessianFreePreconditioner::None;
  r.read("preconditioner", preconditioned);
  o.preconditioner = preconditioned ? HessianFreePreconditioner::EmpiricalFisherDiagonal
                                    : HessianFreePreconditioner::None;
  r.read("preconditioner_exponent", o.preconditioner_exponent);
  r.read("sufficient_decrease", o.sufficient_decrease);
  r.read("line_search_trials", o.line_search_trials);
  Index seed = static_cast<Index>(o.seed);
  r.read("seed", seed);
  if (seed < 0) fail("hessian_free", "seed", double(seed), "must be >= 0");
  o.seed = static_cast<std::uint64_t>(seed);
  r.finish();
  o.validate();
  return o;
}

// ---------------------------------------------------------------- optimizer

namespace {

/// (G_C + lambda I) v on the selected curvature batch, at x.
template <class T>
struct DampedCurvature {
  StochasticObjective<T>& f;
  const Vector<T>& x;
  CurvatureProduct kind;
  T damping;
  void apply(const Vector<T>& v, Vector<T>& out) {
    detail::curvature_vector(f, kind, x, v, out);
    out.noalias() += damping * v;
  }
};

}  // namespace

template <class T>
HessianFree<T>::HessianFree(HessianFreeOptions options)
    : options_(options), damping_(options.damping), rng_(options.seed) {
  options_.validate();
}

template <class T>
void HessianFree<T>::set_learning_rate(double lr) {
  if (!(lr >= 0 && std::isfinite(lr)))
    fail("hessian_free", "learning_rate", lr, "must be finite and >= 0");
  options_.learning_rate = lr;
}

template <class T>
void HessianFree<T>::raise_damping() {
  damping_ = std::min(options_.max_damping, damping_ * options_.damping_increase);
}

template <class T>
void HessianFree<T>::on_numerical_failure() {
  raise_damping();
  warm_start_.setZero();
}

template <class T>
StepResult& HessianFree<T>::reject(StepResult& result, const char* event) {
  raise_damping();
  result.accepted = false;
  result.event = event;
  return result;
}

template <class T>
StepResult HessianFree<T>::step(StochasticObjective<T>& f, Vector<T>& x,
                                std::span<const Index> batch) {
  HESSE_REQUIRE(!batch.empty(), "hessian-free: step needs a non-empty batch");
  HESSE_REQUIRE(x.size() == f.dimension(),
                "hessian-free: x has " + std::to_string(x.size()) + " entries, the objective " +
                    std::to_string(f.dimension()));
  detail::require_curvature(f, options_.curvature, "hessian-free");
  ++this->steps_;
  const Index n = x.size();
  if (warm_start_.size() != n) warm_start_.setZero(n);
  const bool first_step = gradient_.size() != n;
  if (first_step) {
    for (Vector<T>* v : {&gradient_, &p_, &step_, &trial_, &sample_gradient_, &fisher_diagonal_,
                         &x_new_, &g_new_, &diagonal_.inverse_diagonal})
      v->setZero(n);
  }
  StepResult result;
  last_cg_ = MartensCgResult{};
  last_rho_ = 0;
  last_backtracked_ = 0;

  f.select_batch(batch);
  const T loss = f.value_and_gradient(x, &gradient_);
  result.gradient_evaluations = 1;
  result.loss = static_cast<double>(loss);
  result.gradient_norm = static_cast<double>(gradient_.norm());
  if (!detail::is_finite(loss) || !detail::is_finite(result.gradient_norm)) {
    warm_start_.setZero();
    return reject(result, "non-finite loss or gradient: step rejected, damping raised");
  }
  if (result.gradient_norm == 0 || options_.learning_rate == 0) return result;
  line_search_.reserve(x, loss, gradient_);

  const Index curvature_size =
      detail::subset_size(static_cast<Index>(batch.size()), options_.curvature_fraction);
  detail::draw_subset(rng_, batch, curvature_size, curvature_batch_);
  const std::span<const Index> curvature_batch(curvature_batch_);

  // Martens 2010 sect. 4.7. The sum of squared per-sample gradients in one
  // batched pass when the objective (or the network behind it, as K-FAC
  // reads its statistics) has one; otherwise |C| single-sample gradients.
  if (options_.preconditioner == HessianFreePreconditioner::EmpiricalFisherDiagonal) {
    nn::NetworkObjective<T>* network = f.has_squared_gradient_sum() ? nullptr : f.network();
    if (f.has_squared_gradient_sum()) {
      f.select_batch(curvature_batch);
      f.squared_gradient_sum(x, fisher_diagonal_, nullptr);
      result.gradient_evaluations += 1;
    } else if (network != nullptr && network->has_squared_gradient_sum()) {
      f.select_batch(curvature_batch);
      network->squared_gradient_sum(x, fisher_diagonal_);
      result.gradient_evaluations += 1;
    } else {
      fisher_diagonal_.setZero(n);
      for (const Index sample : curvature_batch) {
        f.select_batch(std::span<const Index>(&sample, 1));
        f.value_and_gradient(x, &sample_gradient_);
        fisher_diagonal_.array() += sample_gradient_.array().square();
      }
      result.gradient_evaluations += curvature_size;
    }
    fisher_diagonal_ /= static_cast<T>(curvature_size);
    // A scalar loop: Eigen's vectorised pow trips GCC 12's -Wuninitialized in
    // its AVX-512 intrinsics.
    for (Index i = 0; i < n; ++i)
      diagonal_.inverse_diagonal[i] = static_cast<T>(
          std::pow(static_cast<double>(fisher_diagonal_[i]) + damping_,
                   -options_.preconditioner_exponent));
    if (!diagonal_.inverse_diagonal.allFinite()) {
      warm_start_.setZero();
      return reject(result, "non-finite per-sample gradients: step rejected, damping raised");
    }
  } else {
    diagonal_.inverse_diagonal.setOnes(n);
  }

  f.select_batch(curvature_batch);
  DampedCurvature<T> curvature{f, x, options_.curvature, static_cast<T>(damping_)};
  MartensCgOptions cg_options;
  cg_options.max_iterations = options_.max_cg_iterations;
  cg_options.progress_tolerance = options_.cg_progress_tolerance;
  cg_options.backtrack_ratio = options_.cg_backtrack_ratio;
  p_ = static_cast<T>(options_.cg_warm_start_decay) * warm_start_;
  last_cg_ = martens_cg(curvature, diagonal_, gradient_, p_, cg_options, cg_);
  result.curvature_products = last_cg_.products;
  if (last_cg_.status == MartensCgStatus::Breakdown) {
    warm_start_.setZero();
    return reject(result, "NaN/Inf in CG (curvature products): step rejected, damping raised");
  }
  warm_start_ = p_;
  const double slope = static_cast<double>(gradient_.dot(p_));
  if (!(slope < 0)) {
    warm_start_.setZero();
    return reject(result, "CG step is not a descent direction: step rejected, damping raised");
  }

  // Martens 2010 sect. 4.6: walk back from the last CG iterate through the
  // kept ones while the batch loss keeps falling.
  f.select_batch(batch);
  auto batch_loss = [&](const auto& candidate) {
    trial_ = x + candidate;
    const double value = static_cast<double>(f.value_and_gradient(trial_, nullptr));
    return std::isfinite(value) ? value : std::numeric_limits<double>::infinity();
  };
  double best_loss = batch_loss(p_);
  Index best_column = -1;
  for (Index j = cg_.saved_count - 1; j >= 0; --j) {
    if (cg_.save_at[static_cast<std::size_t>(j)] >= last_cg_.iterations) continue;
    const double value = batch_loss(cg_.saved.col(j));
    if (!(value < best_loss)) break;
    best_loss = value;
    best_column = j;
  }
  double model_value = last_cg_.model_value;
  if (best_column >= 0) {
    step_ = cg_.saved.col(best_column);
    model_value = cg_.saved_phi[static_cast<std::size_t>(best_column)];
    last_backtracked_ = cg_.save_at[static_cast<std::size_t>(best_column)];
  } else {
    step_ = p_;
    last_backtracked_ = last_cg_.iterations;
  }

  // Levenberg-Marquardt rule (Martens 2010 sect. 4.1) with the undamped
  // model q(p) = phi(p) - lambda/2 |p|^2.
  const double predicted = model_value - 0.5 * damping_ * static_cast<double>(step_.squaredNorm());
  last_rho_ = predicted < 0 && std::isfinite(best_loss)
                  ? (best_loss - static_cast<double>(loss)) / predicted
                  : -std::numeric_limits<double>::infinity();
  if (last_rho_ < 0.25)
    damping_ = std::min(options_.max_damping, damping_ * options_.damping_increase);
  else if (last_rho_ > 0.75)
    damping_ = std::max(options_.min_damping, damping_ * options_.damping_decrease);

  // Martens & Sutskever 2012: a backtracking line search on the step.
  const double step_slope = static_cast<double>(gradient_.dot(step_));
  if (options_.learning_rate == 1.0 &&
      best_loss <= static_cast<double>(loss) + options_.sufficient_decrease * step_slope) {
    x += step_;
    return result;
  }
  linesearch::LineSearchOptions search;
  search.kind = linesearch::LineSearchKind::Armijo;
  search.sufficient_decrease = options_.sufficient_decrease;
  search.max_trials = options_.line_search_trials;
  T new_loss = 0;
  const linesearch::LineSearchResult searched =
      line_search_.run(f, x, loss, gradient_, step_, options_.learning_rate, search, x_new_,
                       new_loss, g_new_, result.gradient_evaluations);
  if (!searched.success)
    return reject(result, "line search found no decrease: step rejected, damping raised");
  x = x_new_;
  return result;
}

template <class T>
void HessianFree<T>::save_state(StateDict& state) const {
  state.scalars["hessian-free.step"] = static_cast<double>(this->steps_);
  state.scalars["hessian-free.damping"] = damping_;
  state.put("hessian-free.warm_start", warm_start_);
  state.put_rng("hessian-free.rng", rng_);
}

template <class T>
void HessianFree<T>::load_state(const StateDict& state) {
  const double damping = state.scalar("hessian-free.damping");
  if (!(damping > 0 && std::isfinite(damping)))
    throw InvalidArgument("hessian-free: state damping = " + std::to_string(damping) +
                          ": must be finite and > 0");
  Vector<T> warm_start(static_cast<Index>(state.array("hessian-free.warm_start").size()));
  state.get("hessian-free.warm_start", warm_start);
  Rng rng;
  state.get_rng("hessian-free.rng", rng);
  this->steps_ = static_cast<std::int64_t>(state.scalar("hessian-free.step"));
  damping_ = damping;
  warm_start_ = std::move(warm_start);
  rng_ = rng;
}

template <class T>
void HessianFree<T>::reset() {
  this->steps_ = 0;
  damping_ = options_.damping;
  rng_.seed(options_.seed);
  warm_start_.setZero();
  last_cg_ = MartensCgResult{};
  last_rho_ = 0;
  last_backtracked_ = 0;
}

template class HessianFree<float>;
template class HessianFree<double>;

}  // namespace hesse::optim
