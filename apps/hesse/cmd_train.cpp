// hesse train: fit a model on a data set, full batch, with one solver.
#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "hesse/data/builtin.hpp"
#include "hesse/models/linear_least_squares.hpp"
#include "hesse/models/logistic_regression.hpp"
#include "hesse/models/softmax_regression.hpp"
#include "hesse/nn/network_objective.hpp"
#include "solve.hpp"

namespace hesse::cli {
namespace {

struct TrainSettings {
  std::string model;
  std::string data;
  std::string activation = "relu";
  std::string precision;  // empty: float for networks, double for the classical models
  double l2 = 1e-4;
  std::uint64_t seed = 0;
  bool standardize = true;
  bool json = false;
  SolverSettings solver;
};

struct Evaluation {
  double loss = 0;
  double accuracy = -1;  // < 0: not a classification model
};

// Scores of the linear classifiers: [classes or 1, n] = W X + b, with the
// parameter layouts of models::LogisticRegression (w, b) and
// models::SoftmaxRegression (W [K, d] column-major, b [K]).
template <class T>
Matrix<T> linear_scores(const data::Dataset<T>& set, const Vector<T>& x, Index outputs) {
  const Index d = set.num_features();
  const ConstMatrixMap<T> W(x.data(), outputs, d);
  Matrix<T> scores = set.is_sparse() ? Matrix<T>(W * set.sparse_features) : Matrix<T>(W * set.features);
  scores.colwise() += x.segment(outputs * d, outputs);
  return scores;
}

template <class T>
double linear_accuracy(const data::Dataset<T>& set, const Vector<T>& x, bool binary) {
  const Matrix<T> scores = linear_scores(set, x, binary ? 1 : set.num_classes);
  Index correct = 0;
  for (Index i = 0; i < set.num_samples(); ++i) {
    Index predicted = 0;
    if (binary)
      predicted = scores(0, i) > T(0) ? 1 : 0;
    else
      scores.col(i).maxCoeff(&predicted);
    correct += predicted == set.label(i);
  }
  return static_cast<double>(correct) / static_cast<double>(set.num_samples());
}

template <class F>
Evaluation evaluate(F& objective, const Vector<ScalarOf<F>>& x, const data::Dataset<ScalarOf<F>>& set) {
  Evaluation e;
  e.loss = static_cast<double>(objective.value(x));
  if constexpr (requires { objective.accuracy(x); }) {
    if (set.is_classification()) e.accuracy = objective.accuracy(x);
  } else if constexpr (std::is_same_v<F, models::LogisticRegression<ScalarOf<F>>>) {
    e.accuracy = linear_accuracy(set, x, true);
  } else if constexpr (std::is_same_v<F, models::SoftmaxRegression<ScalarOf<F>>>) {
    e.accuracy = linear_accuracy(set, x, false);
  }
  return e;
}

void report(const TrainSettings& s, const optim::Summary& summary, Index parameters,
            const Evaluation& train, const Evaluation& test) {
  if (s.json) {
    nlohmann::json out = summary_json(summary);
    out["model"] = s.model;
    out["data"] = s.data;
    out["parameters"] = parameters;
    out["train_loss"] = train.loss;
    out["test_loss"] = test.loss;
    if (train.accuracy >= 0) {
      out["train_accuracy"] = train.accuracy;
      out["test_accuracy"] = test.accuracy;
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << summary.full_report();
  std::printf("parameters %ld  train loss %.6g  test loss %.6g", static_cast<long>(parameters),
              train.loss, test.loss);
  if (train.accuracy >= 0) std::printf("  train accuracy %.4f  test accuracy %.4f", train.accuracy, test.accuracy);
  std::printf("\n");
}

// Fits make(train) from x and evaluates the result on make(train) and make(test).
template <class T, class Make>
void fit_with(const TrainSettings& s, const data::TrainTest<T>& sets, Make&& make,
              Vector<T> x) {
  auto train_objective = make(sets.train);
  auto test_objective = make(sets.test);
  const optim::Summary summary = solve(train_objective, x, s.solver);
  report(s, summary, x.size(), evaluate(train_objective, x, sets.train),
         evaluate(test_objective, x, sets.test));
}

template <class T>
void train_network(const TrainSettings& s) {
  data::BuiltinOptions load{.seed = s.seed, .standardize = s.standardize, .dense = true};
  const data::TrainTest<T> sets = data::load_dataset<T>(s.data, load);
  const std::vector<Index> sizes = nn::parse_layer_sizes(s.model);
  HESSE_REQUIRE(sizes.front() == sets.train.num_features(),
                "--model " + s.model + ": the network takes " + std::to_string(sizes.front()) +
                    " inputs but data set '" + s.data + "' has " +
                    std::to_string(sets.train.num_features()) + " features");
  const nn::Sequential<T> net = nn::make_mlp<T>(sizes, nn::parse_activation(s.activation));
  nn::LossKind loss = nn::LossKind::MeanSquaredError;
  if (sets.train.is_classification())
    loss = sets.train.num_classes == 2 && sizes.back() == 1 ? nn::LossKind::BinaryLogistic
                                                           : nn::LossKind::SoftmaxCrossEntropy;
  fit_with<T>(s, sets,
              [&](const data::Dataset<T>& set) {
                return nn::NetworkObjective<T>(net, loss, set, {.l2 = s.l2});
              },
              net.initial_parameters(s.seed));
}

template <class T>
void train_model(const TrainSettings& s) {
  data::BuiltinOptions load{.seed = s.seed, .standardize = s.standardize};
  const data::TrainTest<T> sets = data::load_dataset<T>(s.data, load);
  if (s.model == "linear") {
    fit_with<T>(s, sets,
                [&](const data::Dataset<T>& set) {
                  return models::LinearLeastSquares<T>(set, {.l2 = s.l2, .fit_intercept = true});
                },
                Vector<T>::Zero(sets.train.num_features() + 1));
  } else if (s.model == "logistic") {
    fit_with<T>(s, sets,
                [&](const data::Dataset<T>& set) { return models::LogisticRegression<T>(set, {.l2 = s.l2}); },
                Vector<T>::Zero(sets.train.num_features() + 1));
  } else {
    fit_with<T>(s, sets,
                [&](const data::Dataset<T>& set) { return models::SoftmaxRegression<T>(set, {.l2 = s.l2}); },
                Vector<T>::Zero((sets.train.num_features() + 1) * sets.train.num_classes));
  }
}

void run(const TrainSettings& s) {
  const bool network = s.model.rfind("mlp:", 0) == 0;
  HESSE_REQUIRE(network || s.model == "linear" || s.model == "logistic" || s.model == "softmax",
                "--model '" + s.model + "': expected linear, logistic, softmax or mlp:SIZES (e.g. mlp:784-128-64-10)");
  const std::string precision = s.precision.empty() ? (network ? "float" : "double") : s.precision;
  HESSE_REQUIRE(precision == "float" || precision == "double",
                "--precision '" + precision + "': expected float or double");
  if (network) {
    if (precision == "float")
      train_network<float>(s);
    else
      train_network<double>(s);
  } else if (precision == "float") {
    train_model<float>(s);
  } else {
    train_model<double>(s);
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto s = std::make_shared<TrainSettings>();
  CLI::App* cmd = app.add_subcommand("train", "Fit a model on a data set (full batch) with one solver");
  cmd->add_option("--model", s->model, "linear | logistic | softmax | mlp:SIZES (e.g. mlp:784-128-64-10)")
      ->required();
  cmd->add_option("--data", s->data, "Built-in data set name or a CSV/LIBSVM/IDX/NPY file")->required();
  cmd->add_option("--activation", s->activation, "Hidden activation of an MLP")->capture_default_str();
  cmd->add_option("--precision", s->precision, "float | double (default: float for mlp, double otherwise)");
  cmd->add_option("--l2", s->l2, "L2 penalty l2/2 |w|^2")->capture_default_str();
  cmd->add_option("--seed", s->seed, "Seed of the initialisation and the train/test split")
      ->capture_default_str();
  cmd->add_flag("--standardize,!--no-standardize", s->standardize,
                "Standardise features with the training set's mean and deviation")
      ->capture_default_str();
  cmd->add_flag("--json", s->json, "Print the Summary and the metrics as one JSON object");
  add_solver_options(cmd, s->solver, "--optimizer");
  cmd->callback([s] { run(*s); });
}

}  // namespace hesse::cli
