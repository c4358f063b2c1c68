// hesse compare: train the same network from the same seed with several
// optimizers, each to a target test accuracy or a time budget, and report a
// table, JSON, JSON lines of every evaluation and an HTML report with curves.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "commands.hpp"
#include "hesse/core/atomic_file.hpp"
#include "hesse/data/builtin.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/optim/optimizer.hpp"
#include "hesse/report/html.hpp"
#include "hesse/train/fit.hpp"

namespace hesse::cli {
namespace {

struct CompareSettings {
  std::string data = "fashion-mnist";
  std::string model = "mlp:784-128-64-10";
  std::string activation = "relu";
  std::string optimizers = "sgd-momentum,adam,kfac,hessian-free,shampoo,lbfgs";
  double target_accuracy = 0.87;
  double time_budget = 60;
  Index epochs = 20;
  Index batch_size = 128;
  Index batch_overlap = 0;
  Index eval_every = 100;
  std::uint64_t seed = 0;
  int threads = 0;
  std::string precision = "float";
  std::vector<std::string> sets;
  std::string schedule = "constant";
  double weight_decay = 0;
  double clip = 0;
  bool json = false;
  bool verbose = false;
  std::string output_dir = "hesse-compare";
  bool report = true;
};

// Per-optimizer defaults of the comparison, where they differ from the
// optimizer's own: the batch size (full batch for L-BFGS) and settings.
struct Recipe {
  optim::OptimizerSettings settings;
  Index batch_size = 0;      // 0: --batch-size; -1: the whole training set
  Index batch_overlap = -1;  // -1: --batch-overlap
};

Recipe default_recipe(const std::string& name) {
  if (name == "lbfgs") return {{}, -1};
  // Measured on the default task: Martens' empirical-Fisher preconditioner
  // needs per-sample gradients and made a step ~15x dearer, and 30 CG
  // iterations on a 200-sample curvature batch reach the target soonest.
  if (name == "hessian-free") return {{{"preconditioner", 0}, {"max_cg_iterations", 30}}, 2000};
  // Rank-16 factor inverses (KfacOptions::rank): on this task the same test
  // accuracy per step as exact inverses and 2.2x cheaper steps
  // (docs/optimizers-kfac.md, "Low-rank factors").
  if (name == "kfac") return {{{"rank", 16}}, 0};
  // Rank-16 inverse roots (ShampooOptions::rank): on this task 800 steps to
  // 87% against exact Shampoo's 900, each step about 1.2x cheaper
  // (docs/benchmarks-training.md, "Low-rank roots").
  if (name == "shampoo") return {{{"rank", 16}}, 0};
  if (name == "subsampled-newton") return {{}, 1000};
  if (name == "slbfgs") return {{}, 512};
  return {};
}

// "--set adam.lr=0.002", "--set lbfgs.batch_size=60000" and "--set slbfgs.batch_overlap=64".
void apply_sets(const std::vector<std::string>& sets, const std::vector<std::string>& names,
                std::map<std::string, Recipe>& recipes) {
  for (const auto& text : sets) {
    const auto dot = text.find('.');
    const auto eq = text.find('=');
    HESSE_REQUIRE(dot != std::string::npos && eq != std::string::npos && dot < eq,
                  "--set '" + text + "': expected OPTIMIZER.SETTING=VALUE (e.g. adam.lr=0.002)");
    const std::string name = text.substr(0, dot), key = text.substr(dot + 1, eq - dot - 1),
                      value = text.substr(eq + 1);
    HESSE_REQUIRE(std::find(names.begin(), names.end(), name) != names.end(),
                  "--set '" + text + "': optimizer '" + name + "' is not in --optimizers");
    double v = 0;
    try {
      std::size_t used = 0;
      v = std::stod(value, &used);
      HESSE_REQUIRE(used == value.size(), "");
    } catch (const std::exception&) {
      throw InvalidArgument("--set '" + text + "': value '" + value + "' is not a number");
    }
    if (key == "batch_size") {
      HESSE_REQUIRE(v >= 1 && v == std::floor(v),
                    "--set '" + text + "': batch_size must be a whole number >= 1");
      recipes[name].batch_size = Index(v);
    } else if (key == "batch_overlap") {
      HESSE_REQUIRE(v >= 0 && v == std::floor(v),
                    "--set '" + text + "': batch_overlap must be a whole number >= 0");
      recipes[name].batch_overlap = Index(v);
    } else {
      recipes[name].settings[key] = v;
    }
  }
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream in(text);
  for (std::string name; std::getline(in, name, ',');) {
    HESSE_REQUIRE(!name.empty(), "--optimizers '" + text + "': empty name");
    HESSE_REQUIRE(std::find(names.begin(), names.end(), name) == names.end(),
                  "--optimizers '" + text + "': '" + name + "' appears twice");
    names.push_back(name);
  }
  HESSE_REQUIRE(!names.empty(), "--optimizers: no optimizer named");
  return names;
}

std::string describe(const Recipe& recipe, Index batch, Index overlap) {
  std::ostringstream out;
  out << "batch=" << batch;
  if (overlap > 0) out << " batch_overlap=" << overlap;
  for (const auto& [k, v] : recipe.settings) out << " " << k << "=" << v;
  return out.str();
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", s);
  return buf;
}

nlohmann::json result_json(const report::Run& run) {
  const auto& r = run.result;
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"optimizer", run.optimizer},
          {"settings", run.settings},
          {"reached_target", r.reached_target},
          {"seconds_to_target",
           r.reached_target ? nlohmann::json(r.seconds_to_target) : nlohmann::json(nullptr)},
          {"epochs", r.epochs},
          {"steps", r.steps},
          {"seconds", r.seconds},
          {"final_test_accuracy", num(r.final_test_accuracy)},
          {"final_loss", num(r.final_test_loss)},
          {"final_train_loss", num(r.final_train_loss)},
          {"mean_step_seconds", r.mean_step_seconds},
          {"stop_reason", train::to_string(r.reason)},
          {"numerical_failures", r.numerical_failures}};
}

void print_table(const std::vector<report::Run>& runs) {
  std::printf("%-14s %7s %7s %10s %10s %10s %10s %9s  %s\n", "optimizer", "epochs", "steps",
              "to target", "test acc", "test loss", "step ms", "seconds", "stopped");
  for (const auto& run : runs) {
    const auto& r = run.result;
    std::printf("%-14s %7.2f %7ld %10s %9.2f%% %10.4f %10.3f %9.2f  %s\n", run.optimizer.c_str(),
                r.epochs, static_cast<long>(r.steps),
                r.reached_target ? (seconds_text(r.seconds_to_target) + " s").c_str() : "-",
                100 * r.final_test_accuracy, r.final_test_loss, 1000 * r.mean_step_seconds,
                r.seconds, train::to_string(r.reason).c_str());
  }
}

template <class T>
void compare(const CompareSettings& s) {
  HESSE_REQUIRE(s.target_accuracy > 0 && s.target_accuracy <= 1,
                "--target-accuracy " + std::to_string(s.target_accuracy) + ": must be in (0, 1]");
  HESSE_REQUIRE(s.time_budget > 0, "--time-budget " + std::to_string(s.time_budget) +
                                       ": must be positive (seconds per optimizer)");
  HESSE_REQUIRE(s.threads >= 0, "--threads " + std::to_string(s.threads) + ": must be >= 0");
  HESSE_REQUIRE(s.batch_overlap >= 0,
                "--batch-overlap " + std::to_string(s.batch_overlap) + ": must be >= 0");
  const std::vector<std::string> names = split_names(s.optimizers);
  std::map<std::string, Recipe> recipes;
  for (const auto& name : names) recipes[name] = default_recipe(name);
  apply_sets(s.sets, names, recipes);
  // Each run's batch and overlap, checked before any training. Full-batch
  // L-BFGS has one batch an epoch: no overlap.
  std::map<std::string, std::pair<Index, Index>> batches;
  for (const auto& name : names) {
    Recipe& recipe = recipes[name];
    const Index batch = recipe.batch_size < 0   ? 0
                        : recipe.batch_size > 0 ? recipe.batch_size
                                                : s.batch_size;
    const Index overlap = recipe.batch_size < 0       ? 0
                          : recipe.batch_overlap >= 0 ? recipe.batch_overlap
                                                      : s.batch_overlap;
    if (recipe.batch_size >= 0 && batch > 0 && overlap >= batch)
      throw InvalidArgument(
          (recipe.batch_overlap >= 0 ? "--set " + name + ".batch_overlap=" + std::to_string(overlap)
                                     : "--batch-overlap " + std::to_string(overlap)) +
          ": must be less than " + name + "'s batch size " + std::to_string(batch));
    // Stochastic L-BFGS takes its curvature pairs on the shared samples
    // (Berahas et al. 2016) unless told otherwise.
    if (name == "slbfgs" && overlap > 0 && !recipe.settings.count("overlap") &&
        !recipe.settings.count("overlap_size"))
      recipe.settings["overlap_size"] = double(overlap);
    batches[name] = {batch, overlap};
  }
  // Build every optimizer before any training, so a bad name or setting is
  // reported at once.
  std::vector<std::unique_ptr<optim::Optimizer<T>>> optimizers;
  for (const auto& name : names) optimizers.push_back(optim::make_optimizer<T>(name, recipes[name].settings));
  const train::Schedule schedule = train::parse_schedule(s.schedule);

  if (s.threads > 0) omp_set_num_threads(s.threads);
  const int threads = s.threads > 0 ? s.threads : omp_get_max_threads();
  data::BuiltinOptions load{.seed = s.seed, .standardize = true, .dense = true};
  const data::TrainTest<T> sets = data::load_dataset<T>(s.data, load);
  HESSE_REQUIRE(sets.train.is_classification(),
                "--data " + s.data + ": compare needs a classification data set");
  const std::vector<Index> sizes = nn::parse_layer_sizes(s.model);
  HESSE_REQUIRE(sizes.front() == sets.train.num_features(),
                "--model " + s.model + ": the network takes " + std::to_string(sizes.front()) +
                    " inputs but data set '" + s.data + "' has " +
                    std::to_string(sets.train.num_features()) + " features");
  const nn::Sequential<T> net = nn::make_mlp<T>(sizes, nn::parse_activation(s.activation));
  const nn::LossKind loss = sets.train.num_classes == 2 && sizes.back() == 1
                                ? nn::LossKind::BinaryLogistic
                                : nn::LossKind::SoftmaxCrossEntropy;
  const Vector<T> start = net.initial_parameters(s.seed);

  std::filesystem::create_directories(s.output_dir);
  std::vector<report::Run> runs;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const Recipe& recipe = recipes[names[i]];
    const Index batch =
        recipe.batch_size < 0 ? sets.train.num_samples() : batches[names[i]].first;
    const Index overlap = batches[names[i]].second;
    train::FitOptions o{.epochs = s.epochs,
                        .batch_size = batch,
                        .batch_overlap = overlap,
                        .seed = s.seed,
                        .eval_every_steps = recipe.batch_size < 0 ? 1 : s.eval_every,
                        .target_accuracy = s.target_accuracy,
                        .time_limit_seconds = s.time_budget,
                        .schedule = schedule,
                        .gradient_clip_norm = s.clip,
                        .weight_decay = s.weight_decay,
                        .threads = s.threads};
    if (recipe.batch_size < 0) o.epochs = std::max<Index>(s.epochs, 1000);  // one step per epoch
    Vector<T> x = start;
    train::ProgressLogger progress(std::cerr, names[i] + ": ");
    std::vector<train::Callback*> callbacks;
    if (s.verbose) callbacks.push_back(&progress);
    const train::FitResult r = train::fit(net, loss, sets.train, &sets.test, *optimizers[i], x, o, callbacks);
    std::fprintf(stderr, "%-14s %s after %ld steps (%.2f s): test accuracy %.2f%%\n",
                 names[i].c_str(), train::to_string(r.reason).c_str(), static_cast<long>(r.steps),
                 r.seconds, 100 * r.final_test_accuracy);
    runs.push_back({names[i], describe(recipe, batch, overlap), r});
    // Written after every run, so an interrupted comparison keeps what it has.
    write_file_atomically((std::filesystem::path(s.output_dir) / "metrics.jsonl").string(),
                          report::metrics_jsonl(runs));
  }

  if (s.report) {
    report::ComparisonInfo info{.data = sets.train.name.empty() ? s.data : s.data,
                                .model = s.model + " (" + s.activation + ")",
                                .target_accuracy = s.target_accuracy,
                                .train_samples = sets.train.num_samples(),
                                .test_samples = sets.test.num_samples(),
                                .parameters = net.num_parameters(),
                                .threads = threads,
                                .seed = s.seed,
                                .precision = s.precision};
    const auto chartjs = report::find_chartjs();
    if (!chartjs)
      std::fprintf(stderr,
                   "hesse: warning: Chart.js not found (install libjs-chart.js); the report has "
                   "tables only\n");
    write_file_atomically((std::filesystem::path(s.output_dir) / "report.html").string(),
                          report::html_report(info, runs, chartjs));
  }

  if (s.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& run : runs) out.push_back(result_json(run));
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%s, %s, target test accuracy %.1f%%, time budget %g s per optimizer, %d threads\n",
                s.data.c_str(), s.model.c_str(), 100 * s.target_accuracy, s.time_budget, threads);
    print_table(runs);
    std::printf("metrics: %s\n", (std::filesystem::path(s.output_dir) / "metrics.jsonl").c_str());
    if (s.report)
      std::printf("report:  %s\n", (std::filesystem::path(s.output_dir) / "report.html").c_str());
  }
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto s = std::make_shared<CompareSettings>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Train one network with several optimizers to a target accuracy and compare them");
  cmd->add_option("--data", s->data, "Built-in classification data set or a file")->capture_default_str();
  cmd->add_option("--model", s->model, "mlp:SIZES")->capture_default_str();
  cmd->add_option("--activation", s->activation, "Hidden activation")->capture_default_str();
  cmd->add_option("--optimizers", s->optimizers,
                  "Comma-separated optimizer names (hesse optimizers lists them)")
      ->capture_default_str();
  cmd->add_option("--target-accuracy", s->target_accuracy, "Stop a run at this test accuracy (0..1)")
      ->capture_default_str();
  cmd->add_option("--time-budget", s->time_budget, "Training seconds per optimizer")->capture_default_str();
  cmd->add_option("--epochs", s->epochs, "Epochs per optimizer at most")->capture_default_str();
  cmd->add_option("--batch-size", s->batch_size, "Mini-batch size (per-optimizer: --set NAME.batch_size=N)")
      ->capture_default_str();
  cmd->add_option("--batch-overlap", s->batch_overlap,
                  "Samples consecutive batches share; slbfgs takes its curvature pairs on them "
                  "(per-optimizer: --set NAME.batch_overlap=N)")
      ->capture_default_str();
  cmd->add_option("--eval-every", s->eval_every, "Evaluate on the test set every N steps")
      ->capture_default_str();
  cmd->add_option("--seed", s->seed, "Seed of initialisation, split and shuffling")->capture_default_str();
  cmd->add_option("--threads", s->threads, "OpenMP threads (0: all)")->capture_default_str();
  cmd->add_option("--precision", s->precision, "float | double")->capture_default_str();
  cmd->add_option("--set", s->sets, "OPTIMIZER.SETTING=VALUE, e.g. adam.lr=0.002 (repeatable)");
  cmd->add_option("--schedule", s->schedule, "Learning-rate schedule: constant, step:N:G, cosine[,warmup:N]")
      ->capture_default_str();
  cmd->add_option("--weight-decay", s->weight_decay, "L2 penalty added to the loss")->capture_default_str();
  cmd->add_option("--clip", s->clip, "Clip batch gradients to this norm (0: off)")->capture_default_str();
  cmd->add_option("--output-dir", s->output_dir, "Where metrics.jsonl and report.html go")
      ->capture_default_str();
  cmd->add_flag("!--no-report", s->report, "Skip the HTML report");
  cmd->add_flag("--json", s->json, "Print the results as a JSON array");
  cmd->add_flag("--verbose", s->verbose, "Print every evaluation to stderr");
  cmd->callback([s] {
    HESSE_REQUIRE(s->precision == "float" || s->precision == "double",
                  "--precision '" + s->precision + "': expected float or double");
    if (s->precision == "float")
      compare<float>(*s);
    else
      compare<double>(*s);
  });
}

}  // namespace hesse::cli
