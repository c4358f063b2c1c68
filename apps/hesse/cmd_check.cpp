// hesse check: derivative checks of a model on a data set, in double.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "commands.hpp"
#include "hesse/core/error.hpp"
#include "hesse/data/builtin.hpp"
#include "hesse/data/transforms.hpp"
#include "hesse/models/linear_least_squares.hpp"
#include "hesse/models/logistic_regression.hpp"
#include "hesse/models/softmax_regression.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/objective/derivative_check.hpp"

namespace hesse::cli {
namespace {

struct CheckSettings {
  std::string model;
  std::string data;
  std::string activation = "relu";
  std::string loss;  // empty: chosen from the data (cross-entropy or mse)
  Index samples = 200;
  double l2 = 1e-3;
  std::uint64_t seed = 0;
  double tolerance = 1e-6;
  bool json = false;
};

template <class F>
DerivativeCheckReport run_checks(F& objective, const Vector<double>& x, const CheckSettings& s) {
  DerivativeCheckOptions options;
  options.seed = s.seed;
  options.tolerance = s.tolerance;
  return check_derivatives(objective, x, options);
}

// A small random point around which the checks run: for networks their own
// initialisation, for the convex models a draw of scale 0.1.
Vector<double> random_point(Index n, std::uint64_t seed) {
  Rng rng(seed);
  Vector<double> x(n);
  fill_normal<double>(rng, x, 0.1);
  return x;
}

void run(const CheckSettings& s) {
  data::BuiltinOptions load;
  load.seed = s.seed;
  load.dense = s.model.rfind("mlp", 0) == 0;
  data::Dataset<double> set = data::load_dataset<double>(s.data, load).train;
  HESSE_REQUIRE(s.samples > 0, "--samples " + std::to_string(s.samples) + ": must be positive");
  if (set.num_samples() > s.samples) {
    std::vector<Index> first(static_cast<std::size_t>(s.samples));
    std::iota(first.begin(), first.end(), Index(0));
    set = data::subset(set, first);
  }

  DerivativeCheckReport report;
  std::string description;
  if (s.model == "linear") {
    models::LinearLeastSquares<double> objective(set, {.l2 = s.l2, .fit_intercept = true});
    report = run_checks(objective, random_point(objective.dimension(), s.seed), s);
    description = "linear least squares";
  } else if (s.model == "logistic") {
    models::LogisticRegression<double> objective(set, {.l2 = s.l2});
    report = run_checks(objective, random_point(objective.dimension(), s.seed), s);
    description = "L2 logistic regression";
  } else if (s.model == "softmax") {
    models::SoftmaxRegression<double> objective(set, {.l2 = s.l2});
    report = run_checks(objective, random_point(objective.dimension(), s.seed), s);
    description = "L2 softmax regression";
  } else if (s.model.rfind("mlp:", 0) == 0) {
    const std::vector<Index> sizes = nn::parse_layer_sizes(s.model);
    const nn::ActivationKind activation = nn::parse_activation(s.activation);
    nn::LossKind loss = set.is_classification()
                            ? (set.num_classes == 2 && sizes.back() == 1 ? nn::LossKind::BinaryLogistic
                                                                         : nn::LossKind::SoftmaxCrossEntropy)
                            : nn::LossKind::MeanSquaredError;
    if (!s.loss.empty()) loss = nn::parse_loss(s.loss);
    HESSE_REQUIRE(sizes.front() == set.num_features(),
                  "--model " + s.model + ": the network takes " + std::to_string(sizes.front()) +
                      " inputs but data set '" + s.data + "' has " +
                      std::to_string(set.num_features()) + " features");
    nn::NetworkObjective<double> objective(nn::make_mlp<double>(sizes, activation), loss, set,
                                           {.l2 = s.l2});
    report = run_checks(objective, objective.network().initial_parameters(s.seed), s);
    description = "MLP " + s.model.substr(4) + " (" + s.activation + ", " +
                  std::string(nn::to_string(loss)) + ")";
  } else {
    throw InvalidArgument("--model '" + s.model +
                          "': expected linear, logistic, softmax or mlp:SIZES (e.g. mlp:64-32-10)");
  }

  if (s.json) {
    nlohmann::json out = {{"model", s.model},   {"data", s.data},
                          {"samples", set.num_samples()}, {"passed", report.passed()},
                          {"worst_error", report.worst_error()}, {"checks", nlohmann::json::array()}};
    for (const CheckEntry& entry : report.entries)
      out["checks"].push_back({{"name", entry.name}, {"error", entry.error},
                               {"passed", entry.passed}, {"detail", entry.detail}});
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "derivative checks: " << description << " on " << s.data << " ("
              << set.num_samples() << " samples, " << set.num_features() << " features), double\n"
              << report.report();
    std::printf("worst relative error %.3e: %s\n", report.worst_error(),
                report.passed() ? "PASS" : "FAIL");
  }
  if (!report.passed()) throw CheckFailed();
}

}  // namespace

void add_check_command(CLI::App& app) {
  auto settings = std::make_shared<CheckSettings>();
  CLI::App* cmd = app.add_subcommand(
      "check", "Check a model's exact derivatives against finite differences (double precision)");
  cmd->add_option("--model", settings->model, "linear | logistic | softmax | mlp:SIZES (e.g. mlp:64-32-10)")
      ->required();
  cmd->add_option("--data", settings->data, "Built-in data set name or a CSV/LIBSVM/IDX/NPY file")
      ->required();
  cmd->add_option("--activation", settings->activation, "Hidden activation of an MLP")
      ->capture_default_str();
  cmd->add_option("--loss", settings->loss, "mse | softmax-cross-entropy | binary-logistic (default: from the data)");
  cmd->add_option("--samples", settings->samples, "Training samples used by the checks")
      ->capture_default_str();
  cmd->add_option("--l2", settings->l2, "L2 penalty l2/2 |x|^2")->capture_default_str();
  cmd->add_option("--seed", settings->seed, "Seed of the point, the directions and the split")
      ->capture_default_str();
  cmd->add_option("--tolerance", settings->tolerance, "Largest relative error that passes")
      ->capture_default_str();
  cmd->add_flag("--json", settings->json, "Print the result as JSON");
  cmd->callback([settings] { run(*settings); });
}

}  // namespace hesse::cli
