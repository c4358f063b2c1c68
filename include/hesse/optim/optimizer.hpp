// Mini-batch optimizers: one `step` at a time, like torch.optim.
//
//   auto opt = hesse::optim::make_optimizer<float>("adam", {{"lr", 1e-3}});
//   StochasticAdapter<NetworkObjective<float>> f(objective);
//   for (auto batch : batches) opt->step(f, x, batch);
//
// An optimizer keeps its settings (learning rate, betas, damping rules, ...)
// apart from its per-run state (moments, curvature pairs, Kronecker factors
// and their inverses, preconditioners, damping, step count, RNG). The state
// is what `save_state` writes into a StateDict and `load_state` reads back;
// restoring it mid-run continues the trajectory bit for bit.
//
// The objective a step sees is a StochasticObjective: the training loss on
// any subset of the samples, with its gradient and, where the optimizer
// needs them, exact Hessian- and Gauss-Newton-vector products. A step selects
// the batch it was given and may select subsets of it (Hessian-free's
// curvature batch) or evaluate the same batch twice (stochastic L-BFGS's
// curvature pairs).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hesse/core/error.hpp"
#include "hesse/core/function_ref.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"
#include "hesse/optim/parameter_block.hpp"

namespace hesse::nn {
template <class T>
class NetworkObjective;
}

namespace hesse::optim {

/// The training loss restricted to a chosen subset of the samples, as seen by
/// a mini-batch optimizer. Products a model cannot provide throw
/// InvalidArgument naming the call.
template <class T>
class StochasticObjective {
 public:
  using Scalar = T;
  virtual ~StochasticObjective() = default;

  virtual Index dimension() const = 0;
  virtual Index num_samples() const = 0;
  /// Restricts every following evaluation to these samples.
  virtual void select_batch(std::span<const Index> indices) = 0;
  /// Evaluates on every sample again (full-batch methods), without gathering.
  virtual void select_all() = 0;

  /// Mean loss over the selected samples (plus any regularisation); the
  /// gradient is skipped when `gradient` is null. An objective may clip the
  /// gradient it returns (fit()'s gradient_clip_norm, like
  /// torch.nn.utils.clip_grad_norm_): the gradient of the selection as a
  /// whole is clipped.
  virtual T value_and_gradient(const Vector<T>& x, Vector<T>* gradient) = 0;
  /// For an optimizer that assembles one gradient from parts of a selection
  /// (stochastic L-BFGS's head, middle and tail): the parts come from
  /// value_and_unclipped_gradient, and clip_gradient applied to their
  /// weighted sum gives what value_and_gradient on the whole selection gives
  /// (up to rounding). Without clipping (the defaults) they are
  /// value_and_gradient and nothing.
  virtual T value_and_unclipped_gradient(const Vector<T>& x, Vector<T>* gradient) {
    return value_and_gradient(x, gradient);
  }
  virtual void clip_gradient(Vector<T>& gradient) { (void)gradient; }
  /// Work for a team of threads once a gradient is complete: every member
  /// calls it with the loss and `shared` (a team of more than one inside a
  /// parallel region, sharing work through orphaned `omp for` loops; without
  /// it one thread does all).
  using AfterGradient = FunctionRef<void(T loss, bool shared)>;
  /// value_and_gradient into `gradient`, then `then` on a team of threads.
  /// The default opens a region of omp_get_max_threads() threads for it; a
  /// network objective runs it on its gradient pass's own threads after a
  /// barrier, which saves waking sleeping threads a second time
  /// (nn::NetworkObjective::value_and_gradient_then). Returns the loss.
  virtual T value_and_gradient_then(const Vector<T>& x, Vector<T>& gradient,
                                    const AfterGradient& then);
  virtual bool has_hessian_vector() const { return false; }
  virtual void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Hv);
  virtual bool has_gauss_newton_vector() const { return false; }
  virtual void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Gv);

  /// Whether squared_gradient_sum is available (Hessian-free's diagonal
  /// preconditioner, Martens 2010 sect. 4.7, otherwise takes one
  /// single-sample value_and_gradient per sample).
  virtual bool has_squared_gradient_sum() const { return false; }
  /// out = sum over the selected samples i of grad f_i(x) squared entrywise,
  /// f_i the objective on sample i alone (regularisation included); returns
  /// the mean loss as value_and_gradient does and, when `gradient` is not
  /// null, writes the mean gradient.
  virtual T squared_gradient_sum(const Vector<T>& x, Vector<T>& out, Vector<T>* gradient) {
    (void)x, (void)out, (void)gradient;
    throw InvalidArgument(
        "squared_gradient_sum: this objective has none (check has_squared_gradient_sum())");
  }

  /// The network behind the objective (K-FAC needs its layer statistics), or
  /// null for objectives that are not networks.
  virtual nn::NetworkObjective<T>* network() { return nullptr; }
  /// The matrix-shaped parameter blocks (Shampoo's preconditioners act on
  /// them); empty when the objective has no such structure.
  virtual std::vector<ParameterBlock> parameter_blocks() const { return {}; }
};

/// Adapts any batch objective of hesse/objective/concepts.hpp (a network
/// objective, the classical models, a user's own type) to the virtual
/// interface, keeping a reference to it.
template <class F>
class StochasticAdapter;  // defined in hesse/optim/stochastic_adapter.hpp

/// Named arrays of an optimizer's (or a training run's) state. Values are
/// stored as double, which holds every float exactly, so a round trip through
/// a checkpoint is bit for bit for both precisions.
struct StateDict {
  std::map<std::string, std::vector<double>> arrays;
  std::map<std::string, double> scalars;
  std::map<std::string, std::string> texts;  ///< e.g. an RNG's serialised state

  template <class Derived>
  void put(const std::string& name, const Eigen::DenseBase<Derived>& m) {
    auto& a = arrays[name];
    a.resize(static_cast<std::size_t>(m.size()));
    const auto& d = m.derived();
    Index k = 0;
    for (Index j = 0; j < d.cols(); ++j)
      for (Index i = 0; i < d.rows(); ++i) a[static_cast<std::size_t>(k++)] = double(d(i, j));
  }
  /// Reads array `name` into m, which must already have the stored size.
  template <class Derived>
  void get(const std::string& name, Eigen::DenseBase<Derived>& m) const {
    const auto& a = array(name);
    if (Index(a.size()) != m.size())
      throw InvalidArgument("state: array '" + name + "' has " + std::to_string(a.size()) +
                            " values, expected " + std::to_string(m.size()));
    auto& d = m.derived();
    Index k = 0;
    for (Index j = 0; j < d.cols(); ++j)
      for (Index i = 0; i < d.rows(); ++i)
        d(i, j) = static_cast<typename Derived::Scalar>(a[static_cast<std::size_t>(k++)]);
  }
  const std::vector<double>& array(const std::string& name) const;
  double scalar(const std::string& name) const;
  const std::string& text(const std::string& name) const;
  bool has_array(const std::string& name) const { return arrays.count(name) != 0; }

  void put_rng(const std::string& name, const Rng& rng);
  void get_rng(const std::string& name, Rng& rng) const;

  /// Binary serialisation (little-endian, versioned). `load` throws DataError
  /// naming the file and what was malformed.
  std::string serialize() const;
  static StateDict deserialize(const std::string& bytes, const std::string& source);
  /// Written atomically: a temporary file in the same directory, fsync, rename.
  void save(const std::string& path) const;
  static StateDict load(const std::string& path);
};

/// What one step did. `loss` is the mini-batch loss at the point the step
/// started from; a rejected step (NaN/Inf, failed reduction) leaves x as it
/// was.
struct StepResult {
  double loss = 0;
  double gradient_norm = 0;
  bool accepted = true;
  std::string event;  ///< empty, or what went wrong and what was done about it
  Index gradient_evaluations = 0;   ///< batch gradients computed in the step
  Index curvature_products = 0;     ///< Hessian- or Gauss-Newton-vector products
};

/// A mini-batch optimizer. Implementations take their settings in the
/// constructor (an options struct with defaults at the field, validated) and
/// keep everything that changes during a run in state that save_state and
/// load_state round-trip exactly.
template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// The name make_optimizer knows it by ("adam", "kfac", ...).
  virtual std::string name() const = 0;

  /// One update of x from the samples `batch`.
  virtual StepResult step(StochasticObjective<T>& f, Vector<T>& x,
                          std::span<const Index> batch) = 0;

  /// The base learning rate (schedules in fit() set it every step).
  virtual double learning_rate() const = 0;
  virtual void set_learning_rate(double lr) = 0;

  /// Called when a step produced NaN/Inf and was undone: the optimizer
  /// should become more careful (raise damping, shrink its trust). The
  /// default does nothing; fit() also lowers the learning rate.
  virtual void on_numerical_failure() {}

  virtual void save_state(StateDict& state) const = 0;
  virtual void load_state(const StateDict& state) = 0;
  /// Forgets all per-run state (as freshly constructed).
  virtual void reset() = 0;

  /// Steps taken since construction or reset().
  std::int64_t step_count() const { return steps_; }

 protected:
  std::int64_t steps_ = 0;
};

/// Settings given by name, as from the command line ("lr", "momentum", ...).
using OptimizerSettings = std::map<std::string, double>;

/// Builds the optimizer called `name` with `settings` overriding its
/// defaults; unknown names or settings throw InvalidArgument listing the
/// known ones.
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const std::string& name,
                                             const OptimizerSettings& settings = {});

/// Every name make_optimizer accepts, with a one-line description.
std::vector<std::pair<std::string, std::string>> optimizer_catalogue();

}  // namespace hesse::optim

namespace hesse::optim {

/// Reads an OptimizerSettings map into an options struct field by field and
/// refuses names no field took:
///
///   SettingsReader r("adam", settings);
///   r.read("lr", o.learning_rate); r.read("beta1", o.beta1); r.finish();
class SettingsReader {
 public:
  SettingsReader(std::string optimizer, const OptimizerSettings& settings)
      : optimizer_(std::move(optimizer)), settings_(settings) {}
  void read(const std::string& key, double& field);
  void read(const std::string& key, float& field);
  void read(const std::string& key, Index& field);
  void read(const std::string& key, int& field);
  void read(const std::string& key, bool& field);
  /// Throws InvalidArgument naming the first unknown setting and the known ones.
  void finish() const;

 private:
  const double* find(const std::string& key);
  std::string optimizer_;
  const OptimizerSettings& settings_;
  std::vector<std::string> known_;
};

}  // namespace hesse::optim
