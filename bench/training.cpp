// Mini-batch training benchmark: hesse's fit() with first- and second-order
// optimizers on a real data set, to a target test accuracy or a time budget,
// plus each optimizer's step cost over a fixed window of steps. It also writes
// the files bench/torch_training.py reads, so PyTorch trains the same network
// from the same parameters on the same batches (bench/run_training drives both).
//
//   bench_training [--data fashion-mnist|mnist] [--target-accuracy A] [--budget SECONDS]
//                  [--epochs N] [--batch-size 128] [--threads 2] [--seed 0]
//                  [--eval-every-samples 12800] [--optimizers LIST]
//                  [--timing-steps 300] [--timing-warmup 20] [--timing-rounds 3]
//                  [--timing-budget 30]
//                  [--no-timing] [--no-runs] [--breakdown]
//                  [--set NAME.KEY=VALUE ...] [--export DIR]
//
// Problem: 784-128-64-10 ReLU MLP, softmax cross-entropy averaged over the
// batch, float32, Sequential::initial_parameters(seed), the data set loaded by
// data::load_dataset with standardize = true (a Standardizer fitted on train,
// applied to both splits).
//
// LIST is comma-separated; an entry is an optimizer name of make_optimizer, or
// NAME@BATCH to run it with another batch size (e.g. hessian-free@1000, the
// batch `hesse compare` gives it), or NAME+KEY=VALUE[+KEY=VALUE] for a
// variant with other settings (e.g. kfac+rank=16). Default:
//   adam,sgd-momentum,kfac,shampoo,hessian-free
// Settings are make_optimizer's defaults except the learning rates of the
// first-order baselines, which torch_training.py must be given too:
// adam lr 1e-3, sgd-momentum lr 0.05 (momentum 0.9). --set overrides any.
//
// Measurements:
//   runs         fit() from the initial parameters until the test accuracy
//                reaches the target, the budget (training seconds, evaluation
//                excluded) is spent or the epochs run out; the test set is
//                evaluated every eval_every_samples / batch steps (100 steps at
//                batch 128) and at each epoch's end.
//   breakdown    (--breakdown, an experiment) the parts of a K-FAC and a
//                Shampoo step timed alone, and the step costs they add up to:
//                see breakdown() below.
//   step_timing  fit() from the initial parameters for timing_warmup +
//                timing_steps steps with no evaluation before the end; the
//                durations of the last timing_steps optimizer steps (mean,
//                median, min). Over 300 steps K-FAC's inverse refreshes (every
//                20 steps) and Shampoo's (every 100) are amortised as in training.
//                Done first, every optimizer in turns, timing_rounds times; the
//                reported round is the one with the median mean (all rounds'
//                means are in round_means). A round stops early once its timed
//                steps have taken timing_budget seconds (Hessian-free at batch
//                128 takes about a second a step); `steps` then says how many
//                were timed and `capped_by_budget` is true.
//
// --export DIR writes, for torch_training.py (all NPY, C order):
//   train_features.npy, test_features.npy  float32 [n, 784], standardised as hesse sees them
//   train_labels.npy, test_labels.npy      int64 [n]
//   init.npy                               float32 [P], the flat initial parameters
//   order.npy                              int64 [epochs, n_train], BatchSampler(n, batch,
//                                          seed)'s order of every epoch (the order fit() uses;
//                                          batch b of epoch e is order[e][b*batch, (b+1)*batch))
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <nlohmann/json.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "command_line.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/data/builtin.hpp"
#include "hesse/nn/activation.hpp"
#include "hesse/nn/loss.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/nn/sequential.hpp"
#include "hesse/optim/kfac.hpp"
#include "hesse/optim/optimizer.hpp"
#include "hesse/train/fit.hpp"

namespace {

using hesse::Index;
using hesse::Vector;
using nlohmann::json;

struct Options {
  std::string data = "fashion-mnist";
  double target_accuracy = 0;  // 0: the data set's default
  double budget_seconds = 120;
  Index epochs = 30;
  Index batch_size = 128;
  int threads = 2;
  std::uint64_t seed = 0;
  Index eval_every_samples = 12800;
  std::string optimizers = "adam,sgd-momentum,kfac,shampoo,hessian-free";
  Index timing_steps = 300;
  Index timing_warmup = 20;
  Index timing_rounds = 3;
  double timing_budget_seconds = 30;
  bool timing = true;
  bool runs = true;
  bool breakdown = false;
  std::vector<std::string> sets;
  std::string export_dir;
};

constexpr char kProgram[] = "bench_training";

Options parse(int argc, char** argv) {
  using hesse::bench::positive_number;
  using hesse::bench::positive_whole_number;
  Options o;
  CLI::App app{
      "Mini-batch training benchmark: hesse's fit() on a 784-128-64-10 ReLU MLP (float32,\n"
      "softmax cross-entropy) with first- and second-order optimizers, to a target test\n"
      "accuracy or a time budget, and each optimizer's step time. Prints one JSON object.",
      kProgram};
  hesse::bench::configure(app);
  app.add_option("--data", o.data, "Data set for data::load_dataset: fashion-mnist or mnist")
      ->type_name("NAME");
  app.add_option("--target-accuracy", o.target_accuracy,
                 "Stop a run at this test accuracy, in (0, 1]")
      ->type_name("A")
      ->default_str("0.87, mnist 0.94")
      ->check(positive_number(1));
  app.add_option("--budget", o.budget_seconds, "Training seconds per run (evaluation excluded)")
      ->type_name("SECONDS")
      ->check(positive_number());
  app.add_option("--epochs", o.epochs, "Epochs per run at most; also the epochs --export writes")
      ->type_name("N")
      ->transform(positive_whole_number());
  app.add_option("--batch-size", o.batch_size, "Mini-batch size (per entry: NAME@BATCH)")
      ->type_name("N")
      ->transform(positive_whole_number());
  app.add_option("--threads", o.threads, "OpenMP threads")
      ->type_name("N")
      ->transform(positive_whole_number());
  app.add_option("--seed", o.seed, "Seed of the initial parameters, the split and the batch order")
      ->type_name("S")
      ->transform(hesse::bench::seed());
  app.add_option("--eval-every-samples", o.eval_every_samples,
                 "Evaluate on the test set every this many samples (and at each epoch's end)")
      ->type_name("N")
      ->transform(positive_whole_number());
  app.add_option("--optimizers", o.optimizers, "Comma-separated entries (see below)")
      ->type_name("LIST");
  app.add_option("--timing-steps", o.timing_steps, "Timed steps per optimizer and round")
      ->type_name("N")
      ->transform(positive_whole_number());
  app.add_option("--timing-warmup", o.timing_warmup, "Untimed steps before them")
      ->type_name("N")
      ->transform(positive_whole_number());
  app.add_option("--timing-rounds", o.timing_rounds,
                 "Rounds of all optimizers in turns; the round with the median mean is reported")
      ->type_name("N")
      ->transform(positive_whole_number());
  app.add_option("--timing-budget", o.timing_budget_seconds,
                 "A round stops once its timed steps have taken this long")
      ->type_name("SECONDS")
      ->check(positive_number());
  app.add_flag_callback(
      "--no-timing", [&o] { o.timing = false; }, "Skip the step timing");
  app.add_flag_callback(
      "--no-runs", [&o] { o.runs = false; }, "Skip the runs to the target");
  app.add_flag("--breakdown", o.breakdown,
               "Also time the parts of a K-FAC and a Shampoo step alone (an experiment)");
  app.add_option("--set", o.sets,
                 "One setting of one entry of --optimizers, e.g. kfac.rank=16 (repeatable)")
      ->type_name("NAME.KEY=VALUE")
      ->default_str("")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  app.add_option("--export", o.export_dir,
                 "Write the data, initial parameters and batch order as NPY for torch_training.py")
      ->type_name("DIR");
  app.footer(
      "LIST: an entry is an optimizer name of make_optimizer, NAME@BATCH to run it with\n"
      "another batch size (hessian-free@1000), or NAME+KEY=VALUE[+KEY=VALUE] for a variant\n"
      "with other settings (kfac+rank=16); its label is the entry as written. Settings are\n"
      "make_optimizer's defaults except adam lr 1e-3 and sgd-momentum lr 0.05 (the rates\n"
      "torch_training.py is given); --set LABEL.KEY=VALUE overrides one.");
  hesse::bench::parse(app, argc, argv);
  return o;
}

[[noreturn]] void usage(const std::string& message) {
  hesse::bench::usage_error(kProgram, message);
}

// One entry of --optimizers: the registry name, the label it is reported
// under, its batch size and settings.
struct Entry {
  std::string label;
  std::string name;
  Index batch_size = 0;
  hesse::optim::OptimizerSettings settings;
};

// The learning rates torch_training.py is given for the same optimizers; the
// second-order methods keep make_optimizer's defaults.
hesse::optim::OptimizerSettings default_settings(const std::string& name) {
  if (name == "adam") return {{"lr", 1e-3}};
  if (name == "sgd-momentum") return {{"lr", 0.05}};
  return {};
}

std::vector<Entry> parse_entries(const Options& o) {
  std::vector<Entry> entries;
  std::stringstream in(o.optimizers);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) usage("--optimizers '" + o.optimizers + "': empty entry");
    Entry e{.label = item, .name = item, .batch_size = o.batch_size};
    if (const auto at = item.find('@'); at != std::string::npos) {
      e.name = item.substr(0, at);
      char* end = nullptr;
      const long b = std::strtol(item.c_str() + at + 1, &end, 10);
      if (*end != '\0' || b <= 0) usage("--optimizers: '" + item + "': expected NAME@BATCH");
      e.batch_size = b;
    }
    // NAME+KEY=VALUE...: a variant with other settings (e.g. kfac+rank=16).
    std::vector<std::pair<std::string, double>> variant;
    if (const auto plus = e.name.find('+'); plus != std::string::npos) {
      std::stringstream parts(e.name.substr(plus + 1));
      for (std::string part; std::getline(parts, part, '+');) {
        const auto eq = part.find('=');
        char* end = nullptr;
        const double v = eq == std::string::npos ? 0 : std::strtod(part.c_str() + eq + 1, &end);
        if (eq == std::string::npos || eq == 0 || end == part.c_str() + eq + 1 || *end != '\0')
          usage("--optimizers: '" + item + "': expected NAME+KEY=VALUE");
        variant.emplace_back(part.substr(0, eq), v);
      }
      e.name = e.name.substr(0, plus);
    }
    for (const auto& other : entries)
      if (other.label == e.label) usage("--optimizers: '" + item + "' appears twice");
    e.settings = default_settings(e.name);
    for (const auto& [key, value] : variant) e.settings[key] = value;
    entries.push_back(e);
  }
  for (const auto& text : o.sets) {
    const auto dot = text.find('.'), eq = text.find('=');
    if (dot == std::string::npos || eq == std::string::npos || eq < dot)
      usage("--set '" + text + "': expected NAME.KEY=VALUE");
    const std::string label = text.substr(0, dot), key = text.substr(dot + 1, eq - dot - 1);
    auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.label == label; });
    if (it == entries.end()) usage("--set '" + text + "': '" + label + "' is not in --optimizers");
    it->settings[key] = std::strtod(text.c_str() + eq + 1, nullptr);
  }
  return entries;
}

// ---- NPY output (format version 1.0) ----------------------------------------

void write_npy(const std::filesystem::path& path, const char* descr, const std::vector<Index>& shape,
               const void* data, std::size_t bytes) {
  std::string dims;
  for (const Index d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);  // "(n,)" for one dimension, "(a, b)" else
  else dims.pop_back();
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" +
                       dims + "), }";
  // Magic (6) + version (2) + length (2) + header, padded with spaces to a
  // multiple of 64 and closed by '\n', as numpy.save does.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  const std::uint16_t length = static_cast<std::uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&length), 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(static_cast<const char*>(data), std::streamsize(bytes));
  if (!out) throw std::runtime_error("bench_training: cannot write " + path.string());
}

void write_split(const std::filesystem::path& dir, const std::string& split,
                 const hesse::data::Dataset<float>& set) {
  // hesse's features are [d, n] column-major: byte for byte a C-order [n, d] array.
  write_npy(dir / (split + "_features.npy"), "<f4", {set.num_samples(), set.num_features()},
            set.features.data(), sizeof(float) * std::size_t(set.features.size()));
  std::vector<std::int64_t> labels(std::size_t(set.num_samples()));
  for (Index i = 0; i < set.num_samples(); ++i) labels[std::size_t(i)] = set.label(i);
  write_npy(dir / (split + "_labels.npy"), "<i8", {set.num_samples()}, labels.data(),
            sizeof(std::int64_t) * labels.size());
}

void export_for_torch(const std::filesystem::path& dir, const hesse::data::TrainTest<float>& sets,
                      const Vector<float>& init, const Options& o) {
  std::filesystem::create_directories(dir);
  write_split(dir, "train", sets.train);
  write_split(dir, "test", sets.test);
  write_npy(dir / "init.npy", "<f4", {init.size()}, init.data(), sizeof(float) * std::size_t(init.size()));
  const Index n = sets.train.num_samples();
  hesse::data::BatchSampler sampler(n, o.batch_size, o.seed);
  std::vector<std::int64_t> order;
  order.reserve(std::size_t(o.epochs * n));
  for (Index e = 0; e < o.epochs; ++e) {
    sampler.start_epoch(std::uint64_t(e));
    for (Index b = 0; b < sampler.num_batches(); ++b)
      for (const Index i : sampler.batch(b)) order.push_back(i);
  }
  write_npy(dir / "order.npy", "<i8", {o.epochs, n}, order.data(), sizeof(std::int64_t) * order.size());
}

// ---- measurements -------------------------------------------------------------

json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Collects the duration of every optimizer step; stops the run once the
// steps after the warm-up have taken `budget_seconds` (0: no cap).
class StepTimes final : public hesse::train::Callback {
 public:
  StepTimes(Index warmup, double budget_seconds) : warmup_(warmup), budget_(budget_seconds) {}
  bool on_step(const hesse::train::StepRecord& r) override {
    seconds.push_back(r.step_seconds);
    if (Index(seconds.size()) > warmup_) timed_ += r.step_seconds;
    return budget_ <= 0 || timed_ < budget_;
  }
  std::vector<double> seconds;

 private:
  Index warmup_;
  double budget_;
  double timed_ = 0;
};

json settings_json(const Entry& e) {
  json s = json::object();
  for (const auto& [k, v] : e.settings) s[k] = v;
  return s;
}

json run_to_target(const hesse::nn::Sequential<float>& net, const hesse::data::TrainTest<float>& sets,
                   const Vector<float>& init, const Entry& e, const Options& o, double target) {
  auto optimizer = hesse::optim::make_optimizer<float>(e.name, e.settings);
  const Index eval_every = std::max<Index>(1, (o.eval_every_samples + e.batch_size / 2) / e.batch_size);
  hesse::train::FitOptions fo{.epochs = o.epochs,
                              .batch_size = e.batch_size,
                              .seed = o.seed,
                              .eval_every_steps = eval_every,
                              .target_accuracy = target,
                              .time_limit_seconds = o.budget_seconds,
                              .threads = o.threads};
  Vector<float> x = init;
  const hesse::train::FitResult r =
      hesse::train::fit(net, hesse::nn::LossKind::SoftmaxCrossEntropy, sets.train, &sets.test, *optimizer, x, fo);
  json history = json::array();
  for (const auto& h : r.history)
    history.push_back({{"step", h.step}, {"train_seconds", h.seconds},
                       {"test_accuracy", finite_or_null(h.test_accuracy)},
                       {"test_loss", finite_or_null(h.test_loss)}});
  std::fprintf(stderr, "bench_training: %-18s %s after %ld steps (%.2f s), test accuracy %.4f\n",
               e.label.c_str(), hesse::train::to_string(r.reason).c_str(), long(r.steps), r.seconds,
               r.final_test_accuracy);
  return {{"optimizer", e.name},
          {"batch_size", e.batch_size},
          {"settings", settings_json(e)},
          {"eval_every_steps", eval_every},
          {"seconds_per_epoch", r.epochs > 0 ? json(r.seconds / r.epochs) : json(nullptr)},
          {"seconds_to_target", r.reached_target ? json(r.seconds_to_target) : json(nullptr)},
          {"reached_target", r.reached_target},
          {"mean_step_seconds", r.mean_step_seconds},
          {"final_test_accuracy", finite_or_null(r.final_test_accuracy)},
          {"final_test_loss", finite_or_null(r.final_test_loss)},
          {"steps", r.steps},
          {"epochs", r.epochs},
          {"seconds", r.seconds},
          {"evaluation_seconds", r.evaluation_seconds},
          {"stop_reason", hesse::train::to_string(r.reason)},
          {"numerical_failures", r.numerical_failures},
          {"rejected_steps", r.rejected_steps},
          {"history", history}};
}

json step_timing(const hesse::nn::Sequential<float>& net, const hesse::data::TrainTest<float>& sets,
                 const Vector<float>& init, const Entry& e, const Options& o) {
  auto optimizer = hesse::optim::make_optimizer<float>(e.name, e.settings);
  const Index total = o.timing_warmup + o.timing_steps;
  // No evaluation inside the window: eval_every beyond it (fit() still
  // evaluates at an epoch's end, which is outside the step clock).
  hesse::train::FitOptions fo{.epochs = total, .batch_size = e.batch_size, .seed = o.seed,
                              .eval_every_steps = total + 1, .max_steps = total,
                              .threads = o.threads};
  Vector<float> x = init;
  StepTimes times(o.timing_warmup, o.timing_budget_seconds);
  hesse::train::Callback* callbacks[] = {&times};
  hesse::train::fit(net, hesse::nn::LossKind::SoftmaxCrossEntropy, sets.train, &sets.test, *optimizer, x,
                    fo, callbacks);
  std::vector<double> t(times.seconds.begin() + std::min<std::ptrdiff_t>(o.timing_warmup, std::ptrdiff_t(times.seconds.size())),
                        times.seconds.end());
  if (t.empty()) return {{"steps", 0}};
  double sum = 0;
  for (const double s : t) sum += s;
  std::vector<double> sorted = t;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  std::fprintf(stderr, "bench_training: %-18s step %.3f ms mean, %.3f ms median over %zu steps\n",
               e.label.c_str(), 1e3 * sum / double(n), 1e3 * median, n);
  return {{"optimizer", e.name},
          {"batch_size", e.batch_size},
          {"warmup_steps", o.timing_warmup},
          {"steps", n},
          {"capped_by_budget", Index(n) < o.timing_steps},
          {"mean_step_seconds", sum / double(n)},
          {"median_step_seconds", median},
          {"min_step_seconds", sorted.front()},
          {"max_step_seconds", sorted.back()}};
}

// ---- experiment: where a K-FAC or Shampoo step's time goes -------------------

double median_seconds(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  const std::size_t n = t.size();
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

template <class F>
double time_median(int reps, F&& body) {
  body();  // warm-up: allocations, caches
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median_seconds(std::move(t));
}

// Runs the optimizers' own products as K-FAC and Shampoo do: OpenMP (and so
// Eigen) on one thread for the scope.
class OneThread {
 public:
#ifdef _OPENMP
  OneThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(saved_); }
#endif
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int saved_ = 1;
};

// The parts of a step timed alone through the public API, on the first batch
// of epoch 0, each the median of many repetitions: the batch gradient and the
// K-FAC statistics pass on `threads` threads (as in fit()); K-FAC's
// preconditioning G^-1 grad A^-1 and its inverse refresh (Cholesky of the
// damped factors, then the inverses) with the shapes of every Dense layer,
// Shampoo's statistics (two rank updates) and preconditioning (two products)
// for its blocks of 128 of [rows, cols + 1], and Adam's elementwise update,
// these on one thread as the optimizers run them. A cost model of each step
// follows from the default periods (KfacOptions: statistics_every,
// inverse_every); Shampoo's inverse roots (every ShampooOptions::inverse_every
// steps) are not timed here.
json breakdown(const hesse::nn::Sequential<float>& net, const hesse::data::TrainTest<float>& sets,
               const Vector<float>& init, const Options& o) {
  using hesse::Matrix;
  hesse::nn::NetworkObjective<float> f(net, hesse::nn::LossKind::SoftmaxCrossEntropy, sets.train,
                                       {.threads = o.threads});
  hesse::data::BatchSampler sampler(sets.train.num_samples(), o.batch_size, o.seed);
  f.select_batch(sampler.batch(0));
  Vector<float> g(init.size());
  const double gradient = time_median(200, [&] { f.value_and_gradient(init, &g); });
  // The same on a new batch each call, as in training (the batch's columns
  // come from memory, not from cache).
  Index which = 0;
  const double fresh_gradient = time_median(200, [&] {
    f.select_batch(sampler.batch(which++ % sampler.num_batches()));
    f.value_and_gradient(init, &g);
  });
  f.select_batch(sampler.batch(0));
  hesse::nn::KroneckerFactors<float> factors;
  hesse::Rng rng(0);
  const double statistics = time_median(50, [&] {
    f.kronecker_factors(init, hesse::nn::FisherKind::True, rng, factors, &g);
  });

  OneThread one;
  const auto blocks = net.parameter_blocks();
  const float gamma = std::sqrt(1e-3f);  // K-FAC's default damping, split between the factors
  std::vector<Matrix<float>> a_inverse, g_inverse, products(blocks.size()), out(blocks.size());
  json shapes = json::array();
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const Index rows = blocks[b].rows, width = blocks[b].cols + (blocks[b].bias_offset >= 0 ? 1 : 0);
    const Matrix<float> A = factors.A[b].topLeftCorner(width, width) + gamma * Matrix<float>::Identity(width, width);
    const Matrix<float> G = factors.G[b] + gamma * Matrix<float>::Identity(rows, rows);
    a_inverse.push_back(A.llt().solve(Matrix<float>::Identity(width, width)));
    g_inverse.push_back(G.llt().solve(Matrix<float>::Identity(rows, rows)));
    products[b].resize(rows, width);
    out[b].resize(rows, width);
    shapes.push_back({{"G", {rows, rows}}, {"gradient", {rows, width}}, {"A", {width, width}}});
  }
  Matrix<float> grads_storage = Matrix<float>::Random(blocks.front().rows, blocks.front().cols + 1);
  const double precondition = time_median(200, [&] {
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const auto grad = grads_storage.topLeftCorner(blocks[b].rows, a_inverse[b].rows());
      products[b].noalias() = g_inverse[b] * grad;
      out[b].noalias() = products[b] * a_inverse[b];
    }
  });
  const double refresh = time_median(10, [&] {
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const Index rows = blocks[b].rows, width = a_inverse[b].rows();
      Eigen::LLT<Matrix<float>> a_llt(factors.A[b].topLeftCorner(width, width) +
                                      gamma * Matrix<float>::Identity(width, width));
      Eigen::LLT<Matrix<float>> g_llt(factors.G[b] + gamma * Matrix<float>::Identity(rows, rows));
      a_inverse[b].setIdentity();
      a_llt.solveInPlace(a_inverse[b]);
      g_inverse[b].setIdentity();
      g_llt.solveInPlace(g_inverse[b]);
    }
  });

  // Shampoo's blocks: [rows, cols + 1] per layer cut into 128 x 128 tiles.
  struct Tile { Matrix<float> left, right, left_root, right_root, product, out; Index rows, cols; };
  std::vector<Tile> tiles;
  for (const auto& p : blocks) {
    const Index rows = p.rows, cols = p.cols + 1;
    for (Index r = 0; r < rows; r += 128)
      for (Index c = 0; c < cols; c += 128) {
        Tile t;
        t.rows = std::min<Index>(128, rows - r);
        t.cols = std::min<Index>(128, cols - c);
        t.left = t.left_root = Matrix<float>::Identity(t.rows, t.rows);
        t.right = t.right_root = Matrix<float>::Identity(t.cols, t.cols);
        t.product.resize(t.rows, t.cols);
        t.out.resize(t.rows, t.cols);
        tiles.push_back(std::move(t));
      }
  }
  const double shampoo_statistics = time_median(200, [&] {
    for (Tile& t : tiles) {
      const auto G = grads_storage.topLeftCorner(t.rows, t.cols);
      t.left.triangularView<Eigen::Lower>() *= 0.999f;
      t.right.triangularView<Eigen::Lower>() *= 0.999f;
      t.left.selfadjointView<Eigen::Lower>().rankUpdate(G, 0.001f);
      t.right.selfadjointView<Eigen::Lower>().rankUpdate(G.transpose(), 0.001f);
    }
  });
  const double shampoo_precondition = time_median(200, [&] {
    for (Tile& t : tiles) {
      t.product.noalias() = t.left_root * grads_storage.topLeftCorner(t.rows, t.cols);
      t.out.noalias() = t.product * t.right_root;
    }
  });
  Vector<float> m = Vector<float>::Zero(init.size()), v = Vector<float>::Zero(init.size()), x = init;
  const double adam_update = time_median(500, [&] {
    m = 0.9f * m + 0.1f * g;
    v = 0.999f * v + 0.001f * g.cwiseAbs2();
    x.array() -= 1e-3f * m.array() / (v.array().sqrt() + 1e-8f);
  });

  const hesse::optim::KfacOptions kfac_defaults;
  const double every_statistics = double(kfac_defaults.statistics_every);
  const double every_inverse = double(kfac_defaults.inverse_every);
  const double kfac_model = gradient * (1 - 1 / every_statistics) + statistics / every_statistics +
                            precondition + refresh / every_inverse;
  const double shampoo_model = gradient + shampoo_statistics + shampoo_precondition;
  const double adam_model = gradient + adam_update;
  auto ms = [](double s) { return 1e3 * s; };
  return {{"note",
           "each part timed alone on one thread, exact K-FAC; in a step K-FAC's preconditioning "
           "and Shampoo's blocks run over the OpenMP threads, so the models overstate both steps"},
          {"batch_size", o.batch_size},
          {"gradient_ms", ms(gradient)},
          {"gradient_new_batch_ms", ms(fresh_gradient)},
          {"adam_update_ms", ms(adam_update)},
          {"kfac_statistics_pass_ms", ms(statistics)},
          {"kfac_precondition_ms", ms(precondition)},
          {"kfac_inverse_refresh_ms", ms(refresh)},
          {"kfac_statistics_every", kfac_defaults.statistics_every},
          {"kfac_inverse_every", kfac_defaults.inverse_every},
          {"kfac_layer_shapes", shapes},
          {"shampoo_tiles", tiles.size()},
          {"shampoo_statistics_ms", ms(shampoo_statistics)},
          {"shampoo_precondition_ms", ms(shampoo_precondition)},
          {"model_adam_step_ms", ms(adam_model)},
          {"model_kfac_step_ms", ms(kfac_model)},
          {"model_shampoo_step_ms_without_roots", ms(shampoo_model)},
          {"model_kfac_over_adam", kfac_model / adam_model},
          {"model_shampoo_over_adam_without_roots", shampoo_model / adam_model}};
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    const std::vector<Entry> entries = parse_entries(o);
    // Every optimizer is built once before any work, so a bad name or setting
    // is reported at once.
    for (const auto& e : entries) (void)hesse::optim::make_optimizer<float>(e.name, e.settings);
    // OpenMP's thread count only, as `hesse compare` sets it: Eigen follows
    // omp_get_max_threads() unless Eigen::setNbThreads was called, which would
    // override the optimizers' own single-threaded sections (K-FAC, Shampoo).
#ifdef _OPENMP
    omp_set_num_threads(o.threads);
#endif
    const double target = o.target_accuracy > 0 ? o.target_accuracy : o.data == "mnist" ? 0.94 : 0.87;

    const auto load_start = std::chrono::steady_clock::now();
    const auto sets = hesse::data::load_dataset<float>(o.data, {.seed = o.seed, .standardize = true, .dense = true});
    const double load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    const std::vector<Index> sizes{sets.train.num_features(), 128, 64, sets.train.num_classes};
    const auto net = hesse::nn::make_mlp<float>(sizes, hesse::nn::ActivationKind::ReLU);
    const Vector<float> init = net.initial_parameters(o.seed);
    if (!o.export_dir.empty()) export_for_torch(o.export_dir, sets, init, o);

    json out;
    out["problem"] = {{"data", o.data},
                      {"train_samples", sets.train.num_samples()},
                      {"test_samples", sets.test.num_samples()},
                      {"features", sets.train.num_features()},
                      {"classes", sets.train.num_classes},
                      {"sizes", sizes},
                      {"parameters", net.num_parameters()},
                      {"activation", "relu"},
                      {"loss", "softmax cross-entropy (batch mean)"},
                      {"dtype", "float32"},
                      {"batch_size", o.batch_size},
                      {"seed", o.seed},
                      {"threads", o.threads},
                      {"target_accuracy", target},
                      {"budget_seconds", o.budget_seconds},
                      {"epochs", o.epochs},
                      {"eval_every_samples", o.eval_every_samples},
                      {"load_seconds", load_seconds}};
    if (!o.export_dir.empty()) out["export_dir"] = o.export_dir;
    if (o.breakdown) out["breakdown"] = breakdown(net, sets, init, o);
    // Step timing first, all optimizers in turns, `timing_rounds` times, so a
    // change of machine load touches them alike; the figure per optimizer is
    // the round with the median mean.
    out["step_timing"] = json::object();
    if (o.timing) {
      std::map<std::string, std::vector<json>> rounds;
      for (Index round = 0; round < o.timing_rounds; ++round)
        for (const auto& e : entries) rounds[e.label].push_back(step_timing(net, sets, init, e, o));
      for (const auto& e : entries) {
        auto& r = rounds[e.label];
        std::vector<double> means;
        for (const auto& j : r) means.push_back(j.value("mean_step_seconds", 0.0));
        std::sort(r.begin(), r.end(), [](const json& a, const json& b) {
          return a.value("mean_step_seconds", 0.0) < b.value("mean_step_seconds", 0.0);
        });
        json chosen = r[r.size() / 2];
        chosen["round_means"] = means;
        out["step_timing"][e.label] = chosen;
      }
    }
    out["runs"] = json::object();
    if (o.runs)
      for (const auto& e : entries) out["runs"][e.label] = run_to_target(net, sets, init, e, o, target);
    std::cout << out.dump(1) << "\n";
  } catch (const std::exception& ex) {
    std::cerr << "bench_training: " << ex.what() << "\n";
    return 2;
  }
  return 0;
}
