// Every optimizer make_optimizer knows, through fit(): it trains (the test
// loss falls), it fires every hook, and a run interrupted by a checkpoint
// and resumed ends bit for bit where an uninterrupted run ends.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "../common/errors.hpp"
#include "../common/small_network.hpp"
#include "hesse/optim/optimizer.hpp"
#include "hesse/train/fit.hpp"

namespace hesse::train {
namespace {

struct Hooks final : Callback {
  int begin = 0, steps = 0, evals = 0, epochs = 0, end = 0;
  void on_begin(const FitOptions&, Index) override { ++begin; }
  bool on_step(const StepRecord&) override { return ++steps, true; }
  bool on_evaluation(const EvaluationRecord&) override { return ++evals, true; }
  bool on_epoch_end(Index) override { return ++epochs, true; }
  void on_end(const FitResult&) override { ++end; }
};

class EveryOptimizer : public ::testing::TestWithParam<std::string> {
 protected:
  data::Dataset<double> train = testing::blobs<double>(384, 7);
  data::Dataset<double> test = testing::blobs<double>(192, 8);
  nn::Sequential<double> net = testing::small_mlp<double>();
  static constexpr auto kLoss = nn::LossKind::SoftmaxCrossEntropy;
};

// Defaults tuned for large models move too little in 48 steps of this small
// problem; these rates are what the optimizers' own tests use.
optim::OptimizerSettings quick_settings(const std::string& name) {
  if (name == "adam" || name == "adamw" || name == "shampoo" || name == "sophia") return {{"lr", 0.01}};
  return {};
}

TEST_P(EveryOptimizer, TrainsAndFiresEveryHook) {
  auto opt = optim::make_optimizer<double>(GetParam(), quick_settings(GetParam()));
  EXPECT_EQ(opt->name() == GetParam() || GetParam() == "sgd-momentum" || GetParam() == "nesterov",
            true)
      << opt->name();
  Vector<double> x = net.initial_parameters(3);
  // Training loss on the whole training set: what every optimizer minimises
  // (full-batch L-BFGS overfits this small set, so the test loss may rise).
  nn::NetworkObjective<double> probe(net, kLoss, train);
  const double initial = probe.value(x);
  Hooks hooks;
  Callback* cbs[] = {&hooks};
  const FitResult r =
      fit(net, kLoss, train, &test, *opt, x, {.epochs = 4, .batch_size = 32, .seed = 1}, cbs);
  EXPECT_EQ(hooks.begin, 1);
  EXPECT_EQ(hooks.end, 1);
  EXPECT_EQ(hooks.steps, r.steps);
  EXPECT_EQ(hooks.evals, 4);
  EXPECT_EQ(hooks.epochs, 4);
  EXPECT_EQ(r.numerical_failures, 0) << (r.events.empty() ? "" : r.events.front());
  const double final_loss = probe.value(x);
  EXPECT_LT(final_loss, 0.8 * initial) << GetParam() << ": " << initial << " -> " << final_loss;
}

TEST_P(EveryOptimizer, CheckpointResumesBitForBit) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("hesse_every_optimizer_" + GetParam() + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "run.ckpt").string();
  const FitOptions o{.epochs = 3, .batch_size = 50, .seed = 2, .eval_every_steps = 4};

  Vector<double> straight = net.initial_parameters(5);
  auto a = optim::make_optimizer<double>(GetParam());
  fit(net, kLoss, train, &test, *a, straight, o);

  Vector<double> first = net.initial_parameters(5);
  auto b = optim::make_optimizer<double>(GetParam());
  FitOptions ob = o;
  ob.checkpoint_path = path;
  ob.max_steps = 11;  // the last checkpoint is at step 8
  fit(net, kLoss, train, &test, *b, first, ob);

  Vector<double> resumed = net.initial_parameters(6);
  auto c = optim::make_optimizer<double>(GetParam());
  FitOptions oc = o;
  oc.resume_from = path;
  fit(net, kLoss, train, &test, *c, resumed, oc);
  EXPECT_EQ(0, std::memcmp(straight.data(), resumed.data(), sizeof(double) * std::size_t(straight.size())))
      << GetParam() << ": resumed run differs by " << (straight - resumed).norm();
  std::filesystem::remove_all(dir);
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& [name, description] : optim::optimizer_catalogue()) out.push_back(name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, EveryOptimizer, ::testing::ValuesIn(names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(MakeOptimizer, RefusesUnknownNamesAndSettings) {
  const std::string message =
      testing::invalid_argument_message([] { optim::make_optimizer<float>("adamm"); });
  EXPECT_NE(message.find("unknown optimizer 'adamm' (known: sgd"), std::string::npos) << message;
  EXPECT_THROW(optim::make_optimizer<float>("kfac", {{"lrr", 1}}), InvalidArgument);
  EXPECT_THROW(optim::make_optimizer<float>("lbfgs", {{"memory", 0}}), InvalidArgument);
  auto m = optim::make_optimizer<float>("sgd-momentum", {{"lr", 0.2}});
  EXPECT_EQ(m->learning_rate(), 0.2);
}

}  // namespace
}  // namespace hesse::train
