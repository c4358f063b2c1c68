#include "hesse/optim/subsampled_newton.hpp"

#include <cmath>
#include <sstream>

namespace hesse::optim {

namespace {

[[noreturn]] void fail(const char* field, double value, const char* rule) {
  std::ostringstream message;
  message << "subsampled_newton." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

/// (H_S + mu I) v on the selected Hessian sample, at x.
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

void SubsampledNewtonOptions::validate() const {
  if (!(learning_rate >= 0 && std::isfinite(learning_rate)))
    fail("learning_rate", learning_rate, "must be finite and >= 0");
  if (curvature != CurvatureProduct::GaussNewton && curvature != CurvatureProduct::Hessian)
    fail("curvature", double(curvature), "must be GaussNewton or Hessian");
  if (!(hessian_fraction > 0 && hessian_fraction <= 1))
    fail("hessian_fraction", hessian_fraction, "must be in (0, 1]");
  if (hessian_batch_size < 0)
    fail("hessian_batch_size", double(hessian_batch_size), "must be >= 0 (0: use hessian_fraction)");
  if (!(damping > 0 && std::isfinite(damping)))
    fail("damping", damping, "must be finite and > 0 (raising it after trouble multiplies it)");
  if (!(max_damping >= damping && std::isfinite(max_damping)))
    fail("max_damping", max_damping, "must be finite and >= damping");
  if (!(damping_increase > 1 && std::isfinite(damping_increase)))
    fail("damping_increase", damping_increase, "must be finite and > 1");
  if (!(cg_tolerance > 0 && cg_tolerance < 1))
    fail("cg_tolerance", cg_tolerance, "must be in (0, 1)");
  if (max_cg_iterations < 1)
    fail("max_cg_iterations", double(max_cg_iterations), "must be >= 1");
  if (!(sufficient_decrease > 0 && sufficient_decrease < 1))
    fail("sufficient_decrease", sufficient_decrease, "must be in (0, 1)");
  if (line_search_trials < 1) fail("line_search_trials", line_search_trials, "must be >= 1");
}

SubsampledNewtonOptions SubsampledNewtonOptions::from_settings(const OptimizerSettings& settings) {
  SubsampledNewtonOptions o;
  SettingsReader r("subsampled-newton", settings);
  r.read("lr", o.learning_rate);
  bool gauss_newton = o.curvature == CurvatureProduct::GaussNewton;
  r.read("gauss_newton", gauss_newton);
  o.curvature = gauss_newton ? CurvatureProduct::GaussNewton : CurvatureProduct::Hessian;
  r.read("hessian_fraction", o.hessian_fraction);
  r.read("hessian_batch_size", o.hessian_batch_size);
  r.read("damping", o.damping);
  r.read("max_damping", o.max_damping);
  r.read("damping_increase", o.damping_increase);
  r.read("cg_tolerance", o.cg_tolerance);
  r.read("max_cg_iterations", o.max_cg_iterations);
  r.read("sufficient_decrease", o.sufficient_decrease);
  r.read("line_search_trials", o.line_search_trials);
  Index seed = static_cast<Index>(o.seed);
  r.read("seed", seed);
  if (seed < 0) fail("seed", double(seed), "must be >= 0");
  o.seed = static_cast<std::uint64_t>(seed);
  r.finish();
  o.validate();
  return o;
}

template <class T>
SubsampledNewton<T>::SubsampledNewton(SubsampledNewtonOptions options)
    : options_(options), damping_(options.damping), rng_(options.seed) {
  options_.validate();
}

template <class T>
void SubsampledNewton<T>::set_learning_rate(double lr) {
  if (!(lr >= 0 && std::isfinite(lr))) fail("learning_rate", lr, "must be finite and >= 0");
  options_.learning_rate = lr;
}

template <class T>
void SubsampledNewton<T>::raise_damping() {
  damping_ = std::min(options_.max_damping, damping_ * options_.damping_increase);
}

template <class T>
StepResult& SubsampledNewton<T>::reject(StepResult& result, const char* event) {
  raise_damping();
  result.accepted = false;
  result.event = event;
  return result;
}

template <class T>
StepResult SubsampledNewton<T>::step(StochasticObjective<T>& f, Vector<T>& x,
                                     std::span<const Index> batch) {
  HESSE_REQUIRE(!batch.empty(), "subsampled-newton: step needs a non-empty batch");
  HESSE_REQUIRE(x.size() == f.dimension(),
                "subsampled-newton: x has " + std::to_string(x.size()) +
                    " entries, the objective " + std::to_string(f.dimension()));
  detail::require_curvature(f, options_.curvature, "subsampled-newton");
  ++this->steps_;
  const Index n = x.size();
  const bool first_step = gradient_.size() != n;
  if (first_step) {
    for (Vector<T>* v : {&gradient_, &negative_gradient_, &p_, &x_new_, &g_new_}) v->setZero(n);
    cg_.resize(n);
  }
  StepResult result;
  last_cg_ = linalg::CgResult{};

  f.select_batch(batch);
  const T loss = f.value_and_gradient(x, &gradient_);
  result.gradient_evaluations = 1;
  result.loss = static_cast<double>(loss);
  result.gradient_norm = static_cast<double>(gradient_.norm());
  if (!detail::is_finite(loss) || !detail::is_finite(result.gradient_norm))
    return reject(result, "non-finite loss or gradient: step rejected, damping raised");
  if (result.gradient_norm == 0 || options_.learning_rate == 0) return result;
  line_search_.reserve(x, loss, gradient_);

  const Index sample_size = detail::subset_size(static_cast<Index>(batch.size()),
                                                options_.hessian_fraction,
                                                options_.hessian_batch_size);
  detail::draw_subset(rng_, batch, sample_size, hessian_batch_);
  f.select_batch(std::span<const Index>(hessian_batch_));

  DampedCurvature<T> curvature{f, x, options_.curvature, static_cast<T>(damping_)};
  linalg::IdentityPreconditioner identity;
  linalg::CgOptions cg_options;
  cg_options.relative_tolerance = options_.cg_tolerance;
  cg_options.max_iterations = options_.max_cg_iterations;
  negative_gradient_ = -gradient_;
  last_cg_ = linalg::conjugate_gradient(curvature, identity, negative_gradient_, p_, cg_options, cg_);
  result.curvature_products = last_cg_.iterations;
  if (last_cg_.status == linalg::CgStatus::Breakdown)
    return reject(result, "NaN/Inf in CG (curvature products): step rejected, damping raised");
  if (last_cg_.status == linalg::CgStatus::NegativeCurvature) {
    if (last_cg_.iterations == 1) {
      p_ = negative_gradient_;
      result.event = "negative curvature in CG: steepest descent";
    } else {
      result.event = "negative curvature in CG: truncated";
    }
  }

  f.select_batch(batch);
  if (!(static_cast<double>(gradient_.dot(p_)) < 0))
    return reject(result, "CG step is not a descent direction: step rejected, damping raised");
  linesearch::LineSearchOptions search;
  search.kind = linesearch::LineSearchKind::Armijo;
  search.sufficient_decrease = options_.sufficient_decrease;
  search.max_trials = options_.line_search_trials;
  T new_loss = 0;
  const linesearch::LineSearchResult searched =
      line_search_.run(f, x, loss, gradient_, p_, options_.learning_rate, search, x_new_, new_loss,
                       g_new_, result.gradient_evaluations);
  if (!searched.success)
    return reject(result, "line search found no decrease: step rejected, damping raised");
  x = x_new_;
  damping_ = std::max(options_.damping, damping_ / options_.damping_increase);
  return result;
}

template <class T>
void SubsampledNewton<T>::save_state(StateDict& state) const {
  state.scalars["subsampled-newton.step"] = static_cast<double>(this->steps_);
  state.scalars["subsampled-newton.damping"] = damping_;
  state.put_rng("subsampled-newton.rng", rng_);
}

template <class T>
void SubsampledNewton<T>::load_state(const StateDict& state) {
  const double damping = state.scalar("subsampled-newton.damping");
  if (!(damping > 0 && std::isfinite(damping)))
    throw InvalidArgument("subsampled-newton: state damping = " + std::to_string(damping) +
                          ": must be finite and > 0");
  Rng rng;
  state.get_rng("subsampled-newton.rng", rng);
  this->steps_ = static_cast<std::int64_t>(state.scalar("subsampled-newton.step"));
  damping_ = damping;
  rng_ = rng;
}

template <class T>
void SubsampledNewton<T>::reset() {
  this->steps_ = 0;
  damping_ = options_.damping;
  rng_.seed(options_.seed);
  last_cg_ = linalg::CgResult{};
}

template class SubsampledNewton<float>;
template class SubsampledNewton<double>;

}  // namespace hesse::optim
