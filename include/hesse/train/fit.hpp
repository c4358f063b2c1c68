// fit(): mini-batch training of a network with any Optimizer, to a target
// or a budget, with evaluation on a test set, schedules, clipping, a NaN/Inf
// guard, callbacks and checkpoints.
//
//   auto opt = hesse::optim::make_optimizer<float>("adam");
//   hesse::train::FitOptions options{.epochs = 5, .batch_size = 128};
//   Vector<float> x = net.initial_parameters(0);
//   auto result = hesse::train::fit(net, LossKind::SoftmaxCrossEntropy, train, &test,
//                                   *opt, x, options);
//
// The three levels (as in ggml): Optimizer::step (one batch), fit (epochs,
// evaluation, stopping rules) and `hesse compare` (several optimizers on one
// task), each a thin layer over the one below.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hesse/data/dataset.hpp"
#include "hesse/nn/loss.hpp"
#include "hesse/nn/sequential.hpp"
#include "hesse/optim/optimizer.hpp"
#include "hesse/train/schedule.hpp"

namespace hesse::train {

struct FitOptions {
  Index epochs = 10;                 ///< upper bound on passes over the training set
  Index batch_size = 128;
  bool drop_last = false;            ///< skip a final batch smaller than batch_size
  Index batch_overlap = 0;           ///< samples shared by consecutive batches of an epoch
                                     ///< (data::BatchSampler); in [0, batch_size)
  std::uint64_t seed = 0;            ///< shuffling (epoch e's order depends on seed and e only)
  Index eval_every_steps = 0;        ///< evaluate on the test set every N steps; 0: each epoch
  std::optional<double> target_accuracy;  ///< stop once test accuracy >= this (0..1)
  std::optional<double> target_loss;      ///< stop once the test loss (no test set: the
                                          ///< running training loss) <= this
  double time_limit_seconds = 0;     ///< training-time budget; 0: none
  Index max_steps = 0;               ///< 0: no limit beyond epochs
  Schedule schedule;                 ///< learning-rate factor per step
  double gradient_clip_norm = 0;     ///< rescale batch gradients to at most this norm (a
                                     ///< batch's as a whole, also when an optimizer takes
                                     ///< it in parts); 0: off
  double weight_decay = 0;           ///< L2: adds weight_decay/2 |x|^2 to the loss (and its curvature)
  Index max_consecutive_failures = 5;///< NaN guard: stop after this many failures in a row
  double failure_lr_factor = 0.5;    ///< NaN guard: learning rate multiplied by this per failure
  Index chunk_size = 2048;           ///< samples per pass inside the network objective
  int threads = 0;                   ///< OpenMP threads; 0: all
  std::string checkpoint_path;       ///< written atomically at every evaluation when set
  std::string resume_from;           ///< a checkpoint of the same setup to continue from;
                                     ///< refused unless the training set's size, batch_size,
                                     ///< batch_overlap, drop_last and seed (recorded in it)
                                     ///< are the same

  void validate() const;
};

/// Why fit() stopped.
enum class StopReason {
  EpochsCompleted,
  TargetAccuracy,
  TargetLoss,
  TimeLimit,
  MaxSteps,
  Callback,
  NumericalFailure,
};
std::string to_string(StopReason reason);

/// One evaluation on the test set (and of the running training loss).
struct EvaluationRecord {
  Index step = 0;
  double epoch = 0;              ///< fractional: steps / steps per epoch
  double seconds = 0;            ///< training time so far, evaluation excluded
  double train_loss = 0;         ///< mean batch loss since the previous evaluation
  double test_loss = 0;          ///< NaN without a test set
  double test_accuracy = 0;      ///< NaN without a classification test set
  double learning_rate = 0;
};

/// One optimizer step as seen by callbacks.
struct StepRecord {
  Index step = 0;                ///< 1-based count of steps taken, this one included
  Index epoch = 0;
  double loss = 0;               ///< batch loss before the step
  double gradient_norm = 0;
  double learning_rate = 0;
  double step_seconds = 0;
  bool accepted = true;
  std::string event;
};

struct FitResult {
  StopReason reason = StopReason::EpochsCompleted;
  std::string message;
  bool reached_target = false;
  double seconds_to_target = -1;  ///< training seconds when the target was first met; -1: never
  Index steps = 0;
  double epochs = 0;
  double seconds = 0;             ///< training time, evaluation excluded
  double evaluation_seconds = 0;
  double mean_step_seconds = 0;
  double final_train_loss = 0;
  double final_test_loss = 0;
  double final_test_accuracy = 0;
  Index numerical_failures = 0;
  Index rejected_steps = 0;       ///< steps the optimizer itself declined (x unchanged)
  std::vector<EvaluationRecord> history;
  std::vector<std::string> events;
};

/// Named hooks into fit(); returning false from a hook stops the run
/// (StopReason::Callback). All hooks default to doing nothing.
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_begin(const FitOptions&, Index /*steps_per_epoch*/) {}
  virtual bool on_step(const StepRecord&) { return true; }
  virtual bool on_evaluation(const EvaluationRecord&) { return true; }
  virtual bool on_epoch_end(Index epoch) { (void)epoch; return true; }
  virtual void on_numerical_failure(Index step, const std::string& what) { (void)step, (void)what; }
  virtual void on_end(const FitResult&) {}
};

/// Prints one line per evaluation (and per `every_steps` steps when > 0).
class ProgressLogger final : public Callback {
 public:
  explicit ProgressLogger(std::ostream& out, std::string prefix = {}, Index every_steps = 0)
      : out_(out), prefix_(std::move(prefix)), every_steps_(every_steps) {}
  bool on_step(const StepRecord& r) override;
  bool on_evaluation(const EvaluationRecord& r) override;
  void on_numerical_failure(Index step, const std::string& what) override;
  void on_end(const FitResult& r) override;

 private:
  std::ostream& out_;
  std::string prefix_;
  Index every_steps_;
};

/// Every evaluation as one JSON object per line ({"type": "eval", ...}),
/// plus steps ({"type": "step", ...}) when log_steps, and the final result;
/// the file is rewritten atomically at each evaluation, so a reader never sees
/// a torn line.
class JsonLinesLogger final : public Callback {
 public:
  JsonLinesLogger(std::string path, std::string run_name, bool log_steps = false)
      : path_(std::move(path)), run_(std::move(run_name)), log_steps_(log_steps) {}
  bool on_step(const StepRecord& r) override;
  bool on_evaluation(const EvaluationRecord& r) override;
  void on_end(const FitResult& r) override;
  const std::string& contents() const { return buffer_; }

 private:
  std::string path_, run_;
  bool log_steps_;
  std::string buffer_;
};

/// Stops when the test loss has not improved by min_delta for `patience`
/// evaluations.
class EarlyStopping final : public Callback {
 public:
  explicit EarlyStopping(Index patience, double min_delta = 0)
      : patience_(patience), min_delta_(min_delta) {}
  bool on_evaluation(const EvaluationRecord& r) override;

 private:
  Index patience_;
  double min_delta_;
  double best_ = 0;
  bool have_best_ = false;
  Index since_best_ = 0;
};

/// Trains `parameters` of `model` on `train` with `optimizer`; `test` may be
/// null. On return `parameters` holds the final point (after a numerical
/// failure: the last good point).
template <class T>
FitResult fit(const nn::Sequential<T>& model, nn::LossKind loss, const data::Dataset<T>& train,
              const data::Dataset<T>* test, optim::Optimizer<T>& optimizer, Vector<T>& parameters,
              const FitOptions& options, std::span<Callback* const> callbacks = {});

extern template FitResult fit<float>(const nn::Sequential<float>&, nn::LossKind,
                                     const data::Dataset<float>&, const data::Dataset<float>*,
                                     optim::Optimizer<float>&, Vector<float>&, const FitOptions&,
                                     std::span<Callback* const>);
extern template FitResult fit<double>(const nn::Sequential<double>&, nn::LossKind,
                                      const data::Dataset<double>&, const data::Dataset<double>*,
                                      optim::Optimizer<double>&, Vector<double>&,
                                      const FitOptions&, std::span<Callback* const>);

}  // namespace hesse::train
