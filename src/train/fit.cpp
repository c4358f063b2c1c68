#include "hesse/train/fit.hpp"

#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <utility>
#include <ostream>

#include <nlohmann/json.hpp>

#include "hesse/core/atomic_file.hpp"
#include "hesse/core/error.hpp"
#include "hesse/core/finite.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/optim/clipped_objective.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::train {

void FitOptions::validate() const {
  auto positive = [](Index v, const char* name) {
    HESSE_REQUIRE(v > 0, std::string("FitOptions.") + name + " = " + std::to_string(v) +
                             ": must be positive");
  };
  auto non_negative = [](double v, const char* name) {
    HESSE_REQUIRE(v >= 0 && std::isfinite(v), std::string("FitOptions.") + name + " = " +
                                                  std::to_string(v) + ": must be finite and >= 0");
  };
  positive(epochs, "epochs");
  positive(batch_size, "batch_size");
  positive(chunk_size, "chunk_size");
  positive(max_consecutive_failures, "max_consecutive_failures");
  HESSE_REQUIRE(batch_overlap >= 0 && batch_overlap < batch_size,
                "FitOptions.batch_overlap = " + std::to_string(batch_overlap) +
                    ": must be in [0, batch_size = " + std::to_string(batch_size) + ")");
  HESSE_REQUIRE(eval_every_steps >= 0, "FitOptions.eval_every_steps = " +
                                           std::to_string(eval_every_steps) + ": must be >= 0");
  HESSE_REQUIRE(max_steps >= 0,
                "FitOptions.max_steps = " + std::to_string(max_steps) + ": must be >= 0");
  non_negative(time_limit_seconds, "time_limit_seconds");
  non_negative(gradient_clip_norm, "gradient_clip_norm");
  non_negative(weight_decay, "weight_decay");
  HESSE_REQUIRE(failure_lr_factor > 0 && failure_lr_factor <= 1,
                "FitOptions.failure_lr_factor = " + std::to_string(failure_lr_factor) +
                    ": must be in (0, 1]");
  HESSE_REQUIRE(threads >= 0, "FitOptions.threads = " + std::to_string(threads) + ": must be >= 0");
  if (target_accuracy)
    HESSE_REQUIRE(*target_accuracy > 0 && *target_accuracy <= 1,
                  "FitOptions.target_accuracy = " + std::to_string(*target_accuracy) +
                      ": must be in (0, 1]");
  if (target_loss)
    HESSE_REQUIRE(std::isfinite(*target_loss),
                  "FitOptions.target_loss = " + std::to_string(*target_loss) + ": must be finite");
  schedule.validate();
}

std::string to_string(StopReason reason) {
  switch (reason) {
    case StopReason::EpochsCompleted: return "epochs completed";
    case StopReason::TargetAccuracy: return "target accuracy reached";
    case StopReason::TargetLoss: return "target loss reached";
    case StopReason::TimeLimit: return "time limit";
    case StopReason::MaxSteps: return "step limit";
    case StopReason::Callback: return "stopped by a callback";
    case StopReason::NumericalFailure: return "numerical failure";
  }
  return "unknown";
}

// ---- built-in callbacks ---------------------------------------------------

namespace {

std::string format(const char* fmt, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, a);
  return buf;
}

nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

bool ProgressLogger::on_step(const StepRecord& r) {
  if (every_steps_ > 0 && r.step % every_steps_ == 0)
    out_ << prefix_ << "step " << r.step << "  loss " << format("%.5g", r.loss) << "  lr "
         << format("%.3g", r.learning_rate) << (r.event.empty() ? "" : "  [" + r.event + "]")
         << "\n";
  return true;
}

bool ProgressLogger::on_evaluation(const EvaluationRecord& r) {
  out_ << prefix_ << "epoch " << format("%.2f", r.epoch) << "  step " << r.step << "  "
       << format("%.2f", r.seconds) << " s  train loss " << format("%.5g", r.train_loss);
  if (std::isfinite(r.test_loss)) out_ << "  test loss " << format("%.5g", r.test_loss);
  if (std::isfinite(r.test_accuracy))
    out_ << "  test acc " << format("%.2f", 100 * r.test_accuracy) << "%";
  out_ << std::endl;
  return true;
}

void ProgressLogger::on_numerical_failure(Index step, const std::string& what) {
  out_ << prefix_ << "step " << step << ": " << what << std::endl;
}

void ProgressLogger::on_end(const FitResult& r) {
  out_ << prefix_ << "stopped: " << r.message << std::endl;
}

bool JsonLinesLogger::on_step(const StepRecord& r) {
  if (!log_steps_) return true;
  nlohmann::json j{{"type", "step"},        {"run", run_},
                   {"step", r.step},        {"epoch", r.epoch},
                   {"loss", finite_or_null(r.loss)},
                   {"gradient_norm", finite_or_null(r.gradient_norm)},
                   {"learning_rate", r.learning_rate},
                   {"step_seconds", r.step_seconds},
                   {"accepted", r.accepted}};
  if (!r.event.empty()) j["event"] = r.event;
  buffer_ += j.dump() + "\n";
  return true;
}

bool JsonLinesLogger::on_evaluation(const EvaluationRecord& r) {
  const nlohmann::json j{{"type", "eval"},
                         {"run", run_},
                         {"step", r.step},
                         {"epoch", r.epoch},
                         {"seconds", r.seconds},
                         {"train_loss", finite_or_null(r.train_loss)},
                         {"test_loss", finite_or_null(r.test_loss)},
                         {"test_accuracy", finite_or_null(r.test_accuracy)},
                         {"learning_rate", r.learning_rate}};
  buffer_ += j.dump() + "\n";
  if (!path_.empty()) write_file_atomically(path_, buffer_);
  return true;
}

void JsonLinesLogger::on_end(const FitResult& r) {
  const nlohmann::json j{{"type", "result"},
                         {"run", run_},
                         {"stop_reason", to_string(r.reason)},
                         {"reached_target", r.reached_target},
                         {"seconds_to_target", r.reached_target ? nlohmann::json(r.seconds_to_target)
                                                                : nlohmann::json(nullptr)},
                         {"steps", r.steps},
                         {"epochs", r.epochs},
                         {"seconds", r.seconds},
                         {"mean_step_seconds", r.mean_step_seconds},
                         {"final_test_accuracy", finite_or_null(r.final_test_accuracy)},
                         {"final_test_loss", finite_or_null(r.final_test_loss)},
                         {"final_train_loss", finite_or_null(r.final_train_loss)},
                         {"numerical_failures", r.numerical_failures}};
  buffer_ += j.dump() + "\n";
  if (!path_.empty()) write_file_atomically(path_, buffer_);
}

bool EarlyStopping::on_evaluation(const EvaluationRecord& r) {
  const double v = std::isfinite(r.test_loss) ? r.test_loss : r.train_loss;
  if (!have_best_ || v < best_ - min_delta_) {
    best_ = v;
    have_best_ = true;
    since_best_ = 0;
    return true;
  }
  return ++since_best_ < patience_;
}

// ---- fit --------------------------------------------------------------------

namespace {

/// CRC-32 (zlib) of the training set's shape, features and targets, each
/// value as a float, in hex: the same set in float or double gives the same
/// text, and a changed value another one. A checkpoint records it so that
/// resuming on other data with the same number of samples is refused.
template <class T>
std::string training_set_crc32(const data::Dataset<T>& set) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  const auto add_bytes = [&](const void* data, std::size_t size) {
    crc = crc32_z(crc, static_cast<const Bytef*>(data), size);
  };
  Eigen::VectorXf column;
  const auto add_columns = [&](const Matrix<T>& m) {
    const std::int64_t shape[2] = {m.rows(), m.cols()};
    add_bytes(shape, sizeof(shape));
    for (Index j = 0; j < m.cols(); ++j) {
      column = m.col(j).template cast<float>();
      add_bytes(column.data(), sizeof(float) * static_cast<std::size_t>(column.size()));
    }
  };
  if (set.is_sparse()) {
    const SparseMatrix<T>& m = set.sparse_features;
    const std::int64_t shape[3] = {m.rows(), m.cols(), m.nonZeros()};
    add_bytes(shape, sizeof(shape));
    for (Index j = 0; j < m.outerSize(); ++j)
      for (typename SparseMatrix<T>::InnerIterator it(m, j); it; ++it) {
        const std::int64_t row = it.row();
        const float value = static_cast<float>(it.value());
        add_bytes(&row, sizeof(row));
        add_bytes(&value, sizeof(value));
      }
  } else {
    add_columns(set.features);
  }
  add_columns(set.targets);
  char text[9];
  std::snprintf(text, sizeof(text), "%08lx", static_cast<unsigned long>(crc & 0xffffffffUL));
  return text;
}

/// What the batch order depends on (data::BatchSampler's arguments) and the
/// training set itself (its CRC-32, empty when not computed), by name and
/// value as text, as a checkpoint records them.
std::vector<std::pair<std::string, std::string>> batch_settings(const FitOptions& options,
                                                                Index num_samples,
                                                                const std::string& crc) {
  std::vector<std::pair<std::string, std::string>> settings{
      {"training_samples", std::to_string(num_samples)},
      {"batch_size", std::to_string(options.batch_size)},
      {"batch_overlap", std::to_string(options.batch_overlap)},
      {"drop_last", options.drop_last ? "true" : "false"},
      {"seed", std::to_string(options.seed)}};
  if (!crc.empty()) settings.emplace_back("training_set_crc32", crc);
  return settings;
}

constexpr int kHistoryFields = 7;

void put_history(optim::StateDict& s, const std::vector<EvaluationRecord>& history) {
  auto& a = s.arrays["fit.history"];
  a.clear();
  for (const auto& r : history)
    a.insert(a.end(), {double(r.step), r.epoch, r.seconds, r.train_loss, r.test_loss,
                       r.test_accuracy, r.learning_rate});
}

std::vector<EvaluationRecord> get_history(const optim::StateDict& s) {
  const auto& a = s.array("fit.history");
  std::vector<EvaluationRecord> history;
  for (std::size_t i = 0; i + kHistoryFields <= a.size(); i += kHistoryFields)
    history.push_back({Index(a[i]), a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6]});
  return history;
}

}  // namespace

template <class T>
FitResult fit(const nn::Sequential<T>& model, nn::LossKind loss, const data::Dataset<T>& train,
              const data::Dataset<T>* test, optim::Optimizer<T>& optimizer, Vector<T>& x,
              const FitOptions& options, std::span<Callback* const> callbacks) {
  using Clock = std::chrono::steady_clock;
  options.validate();
  HESSE_REQUIRE(x.size() == model.num_parameters(),
                "fit: the parameter vector has " + std::to_string(x.size()) +
                    " entries, the model has " + std::to_string(model.num_parameters()));
  HESSE_REQUIRE(all_finite(x), "fit: the initial parameters contain NaN or Inf");
  if (options.target_accuracy)
    HESSE_REQUIRE(test && test->is_classification(),
                  "fit: a target accuracy needs a classification test set");

  nn::NetworkObjective<T> train_objective(
      model, loss, train,
      {.chunk_size = options.chunk_size, .l2 = options.weight_decay, .threads = options.threads});
  std::optional<nn::NetworkObjective<T>> test_objective;
  if (test)
    test_objective.emplace(model, loss, *test,
                           nn::NetworkObjectiveOptions{.chunk_size = options.chunk_size,
                                                       .threads = options.threads});
  // The network as the optimizers see it, its batch gradients clipped to
  // gradient_clip_norm (nothing clipped at 0).
  optim::StochasticAdapter<nn::NetworkObjective<T>> network_objective(train_objective);
  optim::ClippedObjective<T> objective(network_objective, options.gradient_clip_norm);

  data::BatchSampler sampler(train.num_samples(), options.batch_size, options.seed,
                             options.drop_last, options.batch_overlap);
  sampler.start_epoch(0);
  const Index steps_per_epoch = sampler.num_batches();
  HESSE_REQUIRE(steps_per_epoch > 0, "fit: batch_size " + std::to_string(options.batch_size) +
                                         " with drop_last leaves no batch of " +
                                         std::to_string(train.num_samples()) + " samples");
  Index planned = options.epochs * steps_per_epoch;
  if (options.max_steps > 0) planned = std::min(planned, options.max_steps);
  Schedule schedule = options.schedule;
  if (schedule.kind == ScheduleKind::Cosine && schedule.total_steps == 0)
    schedule.total_steps = planned;
  const Index eval_every = options.eval_every_steps > 0 ? options.eval_every_steps : steps_per_epoch;

  FitResult result;
  double base_lr = optimizer.learning_rate();
  double lr_backoff = 1.0;
  Index step = 0, epoch = 0, batch = 0;
  double seconds = 0;

  // Once per run, only when a checkpoint is written or read (a pass over
  // the set: 0.04 s for fashion-mnist's 60,000 images, 0.15 s when they were
  // not read since loading).
  const std::string crc =
      options.checkpoint_path.empty() && options.resume_from.empty() ? "" : training_set_crc32(train);
  if (!options.resume_from.empty()) {
    const optim::StateDict s = optim::StateDict::load(options.resume_from);
    HESSE_REQUIRE(s.text("fit.optimizer") == optimizer.name(),
                  "fit: checkpoint " + options.resume_from + " was written by optimizer '" +
                      s.text("fit.optimizer") + "', not '" + optimizer.name() + "'");
    // The batch order depends on these; another value would resume on other
    // batches. A checkpoint written before they were recorded is not checked.
    auto same_batches = [&](const std::string& setting, const std::string& requested) {
      const std::string key = "fit." + setting;
      if (!s.texts.count(key)) return;
      HESSE_REQUIRE(s.text(key) == requested || setting != "training_set_crc32",
                    "fit: checkpoint " + options.resume_from +
                        " was written on another training set (CRC-32 of its features and "
                        "targets " + s.text(key) + ", this run's " + requested +
                        "): resuming needs the same data");
      HESSE_REQUIRE(s.text(key) == requested,
                    "fit: checkpoint " + options.resume_from + " was written with " + setting +
                        " = " + s.text(key) + ", this run has " + setting + " = " + requested +
                        ": resuming needs the same batches");
    };
    for (const auto& [setting, value] : batch_settings(options, train.num_samples(), crc))
      same_batches(setting, value);
    HESSE_REQUIRE(Index(s.array("fit.parameters").size()) == x.size(),
                  "fit: checkpoint " + options.resume_from + " holds " +
                      std::to_string(s.array("fit.parameters").size()) +
                      " parameters, the model has " + std::to_string(x.size()));
    s.get("fit.parameters", x);
    optimizer.load_state(s);
    step = Index(s.scalar("fit.step"));
    epoch = Index(s.scalar("fit.epoch"));
    batch = Index(s.scalar("fit.batch"));
    seconds = s.scalar("fit.seconds");
    lr_backoff = s.scalar("fit.lr_backoff");
    base_lr = s.scalar("fit.base_lr");
    result.numerical_failures = Index(s.scalar("fit.numerical_failures"));
    result.rejected_steps = Index(s.scalar("fit.rejected_steps"));
    result.seconds_to_target = s.scalar("fit.seconds_to_target");
    result.reached_target = result.seconds_to_target >= 0;
    result.history = get_history(s);
  }

  // The last good state, for the NaN guard: refreshed at every evaluation.
  optim::StateDict good;
  Vector<T> good_x = x;
  auto snapshot = [&] {
    good = optim::StateDict();
    optimizer.save_state(good);
    good_x = x;
  };
  snapshot();

  for (Callback* c : callbacks) c->on_begin(options, steps_per_epoch);

  double running_loss = 0;
  Index running_count = 0, consecutive_failures = 0;
  bool stop = false;
  auto finish = [&](StopReason reason, std::string message) {
    if (stop) return;
    stop = true;
    result.reason = reason;
    result.message = std::move(message);
  };

  auto checkpoint = [&](Index next_epoch, Index next_batch) {
    if (options.checkpoint_path.empty()) return;
    optim::StateDict s;
    optimizer.save_state(s);
    s.put("fit.parameters", x);
    s.texts["fit.optimizer"] = optimizer.name();
    for (const auto& [setting, value] : batch_settings(options, train.num_samples(), crc))
      s.texts["fit." + setting] = value;
    s.scalars["fit.step"] = double(step);
    s.scalars["fit.epoch"] = double(next_epoch);
    s.scalars["fit.batch"] = double(next_batch);
    s.scalars["fit.seconds"] = seconds;
    s.scalars["fit.lr_backoff"] = lr_backoff;
    s.scalars["fit.base_lr"] = base_lr;
    s.scalars["fit.numerical_failures"] = double(result.numerical_failures);
    s.scalars["fit.rejected_steps"] = double(result.rejected_steps);
    s.scalars["fit.seconds_to_target"] = result.seconds_to_target;
    put_history(s, result.history);
    s.save(options.checkpoint_path);
  };

  auto evaluate = [&] {
    const auto t0 = Clock::now();
    EvaluationRecord r;
    r.step = step;
    r.epoch = double(step) / double(steps_per_epoch);
    r.seconds = seconds;
    r.train_loss = running_count > 0 ? running_loss / double(running_count)
                                     : std::numeric_limits<double>::quiet_NaN();
    r.test_loss = r.test_accuracy = std::numeric_limits<double>::quiet_NaN();
    if (test_objective) {
      r.test_loss = double(test_objective->value(x));
      if (test->is_classification()) r.test_accuracy = test_objective->accuracy(x);
    }
    r.learning_rate = optimizer.learning_rate();
    running_loss = 0;
    running_count = 0;
    result.history.push_back(r);
    result.evaluation_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    for (Callback* c : callbacks)
      if (!c->on_evaluation(r)) finish(StopReason::Callback, "stopped by a callback at step " + std::to_string(step));
    if (options.target_accuracy && r.test_accuracy >= *options.target_accuracy) {
      if (!result.reached_target) result.seconds_to_target = seconds;
      result.reached_target = true;
      finish(StopReason::TargetAccuracy,
             "test accuracy " + format("%.4f", r.test_accuracy) + " >= target " +
                 format("%.4f", *options.target_accuracy) + " at step " + std::to_string(step));
    }
    const double watched = test_objective ? r.test_loss : r.train_loss;
    if (options.target_loss && watched <= *options.target_loss) {
      if (!result.reached_target) result.seconds_to_target = seconds;
      result.reached_target = true;
      finish(StopReason::TargetLoss, std::string(test_objective ? "test" : "training") +
                                         " loss " + format("%.6g", watched) + " <= target " +
                                         format("%.6g", *options.target_loss) + " at step " +
                                         std::to_string(step));
    }
    if (std::isfinite(watched)) snapshot();
  };

  bool evaluated_last = !result.history.empty() && result.history.back().step == step;
  for (; epoch < options.epochs && !stop; ++epoch, batch = 0) {
    sampler.start_epoch(std::uint64_t(epoch));
    for (; batch < steps_per_epoch && !stop; ++batch) {
      if (options.max_steps > 0 && step >= options.max_steps) {
        finish(StopReason::MaxSteps, "step limit " + std::to_string(options.max_steps) + " reached");
        break;
      }
      const double lr = base_lr * schedule.factor(step) * lr_backoff;
      optimizer.set_learning_rate(lr);
      const auto t0 = Clock::now();
      optim::StepResult r = optimizer.step(objective, x, sampler.batch(batch));
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      seconds += dt;
      ++step;
      evaluated_last = false;

      const bool x_finite = all_finite(x);
      if (!x_finite || !std::isfinite(r.loss)) {
        ++result.numerical_failures;
        ++consecutive_failures;
        std::string what = !x_finite ? "the step made the parameters NaN/Inf; restored the last "
                                       "good state"
                                     : "NaN/Inf loss on this batch; step rejected";
        if (!x_finite) {
          x = good_x;
          optimizer.load_state(good);
        }
        optimizer.on_numerical_failure();
        lr_backoff *= options.failure_lr_factor;
        what += ", learning rate x" + format("%g", options.failure_lr_factor);
        result.events.push_back("step " + std::to_string(step) + ": " + what);
        for (Callback* c : callbacks) c->on_numerical_failure(step, what);
        if (consecutive_failures >= options.max_consecutive_failures) {
          x = good_x;
          finish(StopReason::NumericalFailure,
                 std::to_string(consecutive_failures) +
                     " numerical failures in a row; kept the last good parameters");
        }
      } else {
        consecutive_failures = 0;
        running_loss += r.loss;
        ++running_count;
        if (!r.accepted) ++result.rejected_steps;
      }
      if (!r.event.empty() && result.events.size() < 1000)
        result.events.push_back("step " + std::to_string(step) + ": " + r.event);

      const StepRecord record{step, epoch, r.loss, r.gradient_norm, lr, dt, r.accepted, r.event};
      for (Callback* c : callbacks)
        if (!c->on_step(record)) finish(StopReason::Callback, "stopped by a callback at step " + std::to_string(step));
      if (stop) break;

      if (step % eval_every == 0 || batch + 1 == steps_per_epoch) {
        evaluate();
        evaluated_last = true;
        if (batch + 1 == steps_per_epoch)
          checkpoint(epoch + 1, 0);
        else
          checkpoint(epoch, batch + 1);
      }
      if (options.time_limit_seconds > 0 && seconds >= options.time_limit_seconds)
        finish(StopReason::TimeLimit,
               "time limit " + format("%g", options.time_limit_seconds) + " s reached");
    }
    if (!stop)
      for (Callback* c : callbacks)
        if (!c->on_epoch_end(epoch)) finish(StopReason::Callback, "stopped by a callback after epoch " + std::to_string(epoch));
  }
  if (!stop) finish(StopReason::EpochsCompleted, std::to_string(options.epochs) + " epochs completed");
  if (!evaluated_last && result.reason != StopReason::NumericalFailure) {
    const bool was_stopped = stop;
    stop = false;  // the final evaluation may record a target but not change the reason
    evaluate();
    stop = was_stopped;
  }

  result.steps = step;
  result.epochs = double(step) / double(steps_per_epoch);
  result.seconds = seconds;
  result.mean_step_seconds = step > 0 ? seconds / double(step) : 0;
  if (!result.history.empty()) {
    const auto& last = result.history.back();
    result.final_train_loss = last.train_loss;
    result.final_test_loss = last.test_loss;
    result.final_test_accuracy = last.test_accuracy;
  }
  optimizer.set_learning_rate(base_lr);
  for (Callback* c : callbacks) c->on_end(result);
  return result;
}

template FitResult fit<float>(const nn::Sequential<float>&, nn::LossKind,
                              const data::Dataset<float>&, const data::Dataset<float>*,
                              optim::Optimizer<float>&, Vector<float>&, const FitOptions&,
                              std::span<Callback* const>);
template FitResult fit<double>(const nn::Sequential<double>&, nn::LossKind,
                               const data::Dataset<double>&, const data::Dataset<double>*,
                               optim::Optimizer<double>&, Vector<double>&, const FitOptions&,
                               std::span<Callback* const>);

}  // namespace hesse::train
