// The update rules on f(x) = 1/2 (x_0^2 + 4 x_1^2) from x = (1, -2), against
// values computed by hand (in 40-digit decimal arithmetic, from the formulas
// of docs/optimizers-first-order.md), so the rules are tested without
// PyTorch; options, settings, NaN handling and allocation.
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "../common/errors.hpp"
#include "first_order_test_util.hpp"

namespace hesse::optim {
namespace {

using hesse::testing::invalid_argument_message;
using test_util::Config;
using test_util::Quadratic;

Quadratic<double> quadratic() { return Quadratic<double>(Vector<double>{{1.0, 4.0}}); }
Vector<double> start() { return Vector<double>{{1.0, -2.0}}; }

struct HandCase {
  Config config;
  std::vector<std::array<double, 2>> expected;  ///< x after step 1, 2, ...
};

class HandComputed : public ::testing::TestWithParam<HandCase> {};

// Relative 1e-13: the only error is double rounding over a few operations.
TEST_P(HandComputed, MatchesTheFormula) {
  const HandCase& c = GetParam();
  auto optimizer = test_util::make<double>(c.config);
  auto f = quadratic();
  Vector<double> x = start();
  const std::vector<Index> batch{0};
  for (std::size_t k = 0; k < c.expected.size(); ++k) {
    const StepResult r = optimizer->step(f, x, batch);
    EXPECT_TRUE(r.accepted);
    EXPECT_EQ(r.gradient_evaluations, 1);
    for (int i = 0; i < 2; ++i)
      EXPECT_NEAR(x[i], c.expected[k][i], 1e-13 * std::max(1.0, std::abs(c.expected[k][i])))
          << "step " << k + 1 << ", coordinate " << i;
  }
  EXPECT_EQ(optimizer->step_count(), Index(c.expected.size()));
}

// g = (x_0, 4 x_1); g(x_0) = (1, -8).
INSTANTIATE_TEST_SUITE_P(
    Quadratic, HandComputed,
    ::testing::Values(
        // x1 = x0 - 0.1 g0 = (0.9, -1.2); g1 = (0.9, -4.8); x2 = (0.81, -0.72).
        HandCase{{"sgd", "sgd", {{"lr", 0.1}}}, {{0.9, -1.2}, {0.81, -0.72}}},
        // b1 = g0 (first step: the gradient itself); b2 = 0.9 b1 + g1 = (1.8, -12).
        HandCase{{"momentum", "sgd", {{"lr", 0.1}, {"momentum", 0.9}}},
                 {{0.9, -1.2}, {0.72, 0.0}}},
        // The first buffer is undamped: b2 = 0.8 g0 + 0.5 g1 = (1.25, -8.8).
        HandCase{{"dampening", "sgd", {{"lr", 0.1}, {"momentum", 0.8}, {"dampening", 0.5}}},
                 {{0.9, -1.2}, {0.775, -0.32}}},
        // d0 = g0 + 0.1 x0 = (1.1, -8.2), b1 = d0, step d0 + 0.9 b1 = (2.09, -15.58);
        // d1 = (0.8701, -1.8122), b2 = (1.8601, -9.1922), step (2.54419, -10.08518).
        HandCase{{"nesterov", "sgd",
                  {{"lr", 0.1}, {"momentum", 0.9}, {"nesterov", 1}, {"weight_decay", 0.1}}},
                 {{0.791, -0.442}, {0.536581, 0.566518}}},
        HandCase{{"adagrad", "adagrad",
                  {{"lr", 0.1}, {"lr_decay", 0.5}, {"initial_accumulator_value", 0.1}}},
                 {{0.90465374108453168, -1.9000780335675602},
                  {0.86111040258724753, -1.8541792550259427}}},
        HandCase{{"rmsprop", "rmsprop", {{"lr", 0.01}, {"alpha", 0.9}}},
                 {{0.96837722439831618, -1.9683772235233162},
                  {0.94578802624585683, -1.9456096368619424}}},
        HandCase{{"rmsprop_centered", "rmsprop",
                  {{"lr", 0.01}, {"alpha", 0.9}, {"momentum", 0.5}, {"centered", 1}}},
                 {{0.96666666777777774, -1.9666666668055556},
                  {0.92492347817761419, -1.9247134861108554}}},
        // Step 1 of Adam is lr sign(g) (up to eps): m^ = g, v^ = g^2.
        HandCase{{"adam", "adam", {{"lr", 0.1}}},
                 {{0.90000000099999999, -1.9000000001250000},
                  {0.80041222971233739, -1.8001664858630046}}},
        HandCase{{"adam_l2", "adam", {{"lr", 0.1}, {"weight_decay", 0.1}}},
                 {{0.90000000090909090, -1.9000000001219512},
                  {0.80041222952678371, -1.8001664858568413}}},
        // |g_0| shrinks from 1 to 0.5: v falls below its maximum, which
        // AMSGrad keeps (plain Adam: (0.0285954900899606, ...) at step 2).
        HandCase{{"amsgrad", "adam", {{"lr", 0.5}, {"beta1", 0.5}, {"beta2", 0.5}, {"amsgrad", 1}}},
                 {{0.50000000499999995, -1.5000000006250000},
                  {0.091751717494895465, -1.0049262298573960},
                  {-0.13190940654652042, -0.59150873339055778}}},
        HandCase{{"adam_no_amsgrad", "adam", {{"lr", 0.5}, {"beta1", 0.5}, {"beta2", 0.5}}},
                 {{0.50000000499999995, -1.5000000006250000},
                  {0.028595490089960643, -1.0049262298573960},
                  {-0.29730559641339189, -0.52356281022148730}}},
        // x is first shrunk by 1 - 0.1 * 0.5, then Adam's step on the raw gradient.
        HandCase{{"adamw", "adamw", {{"lr", 0.1}, {"weight_decay", 0.5}}},
                 {{0.85000000099999999, -1.8000000001250000},
                  {0.70824844436565168, -1.6104122279204945}}}),
    [](const auto& info) { return info.param.config.label; });

TEST(FirstOrderOptions, DefaultsArePyTorchs) {
  EXPECT_EQ(SgdOptions{}.momentum, 0);
  EXPECT_EQ(SgdOptions{}.dampening, 0);
  EXPECT_FALSE(SgdOptions{}.nesterov);
  EXPECT_EQ(AdagradOptions{}.learning_rate, 1e-2);
  EXPECT_EQ(AdagradOptions{}.epsilon, 1e-10);
  EXPECT_EQ(RmspropOptions{}.learning_rate, 1e-2);
  EXPECT_EQ(RmspropOptions{}.alpha, 0.99);
  EXPECT_EQ(RmspropOptions{}.epsilon, 1e-8);
  EXPECT_EQ(AdamOptions{}.learning_rate, 1e-3);
  EXPECT_EQ(AdamOptions{}.beta1, 0.9);
  EXPECT_EQ(AdamOptions{}.beta2, 0.999);
  EXPECT_EQ(AdamOptions{}.epsilon, 1e-8);
  EXPECT_EQ(AdamOptions{}.weight_decay, 0);
  EXPECT_EQ(AdamWOptions{}.weight_decay, 1e-2);
}

TEST(FirstOrderOptions, SettingsUsePyTorchsNames) {
  const auto adam = AdamOptions::from_settings(
      {{"lr", 0.5}, {"beta1", 0.8}, {"beta2", 0.9}, {"eps", 1e-6}, {"weight_decay", 0.1},
       {"amsgrad", 1}});
  EXPECT_EQ(adam.learning_rate, 0.5);
  EXPECT_EQ(adam.beta1, 0.8);
  EXPECT_EQ(adam.beta2, 0.9);
  EXPECT_EQ(adam.epsilon, 1e-6);
  EXPECT_EQ(adam.weight_decay, 0.1);
  EXPECT_TRUE(adam.amsgrad);
  const auto adagrad = AdagradOptions::from_settings(
      {{"lr_decay", 0.1}, {"initial_accumulator_value", 0.2}, {"eps", 1e-5}});
  EXPECT_EQ(adagrad.lr_decay, 0.1);
  EXPECT_EQ(adagrad.initial_accumulator_value, 0.2);
  EXPECT_EQ(adagrad.epsilon, 1e-5);
  const auto rmsprop = RmspropOptions::from_settings({{"alpha", 0.5}, {"centered", 1}});
  EXPECT_EQ(rmsprop.alpha, 0.5);
  EXPECT_TRUE(rmsprop.centered);
  const auto sgd = SgdOptions::from_settings({{"dampening", 0.25}, {"nesterov", 0}});
  EXPECT_EQ(sgd.dampening, 0.25);
  EXPECT_FALSE(sgd.nesterov);
}

TEST(FirstOrderFactory, KnowsItsNamesAndTheConveniences) {
  for (const auto& [name, description] : first_order_catalogue()) {
    auto optimizer = make_first_order<float>(name, {});
    ASSERT_NE(optimizer, nullptr) << name;
    EXPECT_FALSE(description.empty());
  }
  EXPECT_EQ(make_first_order<double>("adamw", {})->name(), "adamw");
  EXPECT_EQ(make_first_order<double>("kfac", {}), nullptr);
  EXPECT_EQ(make_first_order<double>("", {}), nullptr);

  auto momentum = make_first_order<double>("momentum", {});
  ASSERT_EQ(momentum->name(), "sgd");
  EXPECT_EQ(dynamic_cast<Sgd<double>&>(*momentum).options().momentum, 0.9);
  EXPECT_FALSE(dynamic_cast<Sgd<double>&>(*momentum).options().nesterov);
  auto nesterov = make_first_order<double>("nesterov", {{"momentum", 0.5}, {"lr", 0.2}});
  const SgdOptions& o = dynamic_cast<Sgd<double>&>(*nesterov).options();
  EXPECT_TRUE(o.nesterov);
  EXPECT_EQ(o.momentum, 0.5);
  EXPECT_EQ(nesterov->learning_rate(), 0.2);
}

void expect_invalid(const std::string& optimizer, const OptimizerSettings& settings,
                    const std::string& message) {
  const std::string got =
      invalid_argument_message([&] { make_first_order<double>(optimizer, settings); });
  EXPECT_NE(got.find(message), std::string::npos)
      << optimizer << ": got '" << got << "', expected '" << message << "'";
}

TEST(FirstOrderOptions, BadValuesNameFieldValueAndRule) {
  expect_invalid("sgd", {{"lr", -1}}, "sgd.learning_rate = -1: must be finite and >= 0");
  expect_invalid("sgd", {{"momentum", -0.5}}, "sgd.momentum = -0.5: must be finite and >= 0");
  expect_invalid("sgd", {{"dampening", 2}}, "sgd.dampening = 2: must be in [0, 1]");
  expect_invalid("sgd", {{"weight_decay", -1}}, "sgd.weight_decay = -1");
  expect_invalid("sgd", {{"nesterov", 1}}, "sgd.nesterov = 1: needs momentum > 0 and dampening = 0");
  expect_invalid("nesterov", {{"dampening", 0.1}}, "sgd.nesterov = 1: needs momentum > 0");
  expect_invalid("adagrad", {{"lr_decay", -1}}, "adagrad.lr_decay = -1");
  expect_invalid("adagrad", {{"initial_accumulator_value", -1}},
                 "adagrad.initial_accumulator_value = -1");
  expect_invalid("adagrad", {{"eps", -1}}, "adagrad.epsilon = -1");
  expect_invalid("adagrad", {{"weight_decay", -1}}, "adagrad.weight_decay = -1");
  expect_invalid("rmsprop", {{"alpha", 1.5}}, "rmsprop.alpha = 1.5: must be in [0, 1]");
  expect_invalid("rmsprop", {{"momentum", -1}}, "rmsprop.momentum = -1");
  expect_invalid("rmsprop", {{"eps", -1}}, "rmsprop.epsilon = -1");
  expect_invalid("rmsprop", {{"lr", std::numeric_limits<double>::infinity()}},
                 "rmsprop.learning_rate = inf: must be finite and >= 0");
  expect_invalid("adam", {{"beta1", 1}}, "adam.beta1 = 1: must be in [0, 1)");
  expect_invalid("adam", {{"beta2", -0.1}}, "adam.beta2 = -0.1: must be in [0, 1)");
  expect_invalid("adam", {{"eps", -1}}, "adam.epsilon = -1");
  expect_invalid("adam", {{"weight_decay", -1}}, "adam.weight_decay = -1");
  expect_invalid("adamw", {{"beta2", 1}}, "adamw.beta2 = 1: must be in [0, 1)");
  expect_invalid("adamw", {{"lr", std::nan("")}}, "adamw.learning_rate = nan");
  expect_invalid("adam", {{"amsgrad", 2}}, "adam: setting 'amsgrad' must be 0 or 1, got 2");
  EXPECT_THROW(Adam<float>(AdamOptions{.beta1 = 1.5}), InvalidArgument);
}

TEST(FirstOrderOptions, UnknownSettingsAreRefused) {
  expect_invalid("sgd", {{"momentun", 0.9}}, "sgd: unknown setting 'momentun'");
  expect_invalid("sgd", {{"betas", 0.9}}, "unknown setting 'betas'");
  expect_invalid("adam", {{"momentum", 0.9}}, "adam: unknown setting 'momentum'");
  expect_invalid("adamw", {{"centered", 1}}, "adamw: unknown setting 'centered'");
  expect_invalid("rmsprop", {{"nesterov", 1}}, "rmsprop: unknown setting 'nesterov'");
  expect_invalid("adagrad", {{"momentum", 0.9}}, "adagrad: unknown setting 'momentum'");
  expect_invalid("adagrad", {{"learning_rate", 0.1}}, "unknown setting 'learning_rate'");
}

TEST(FirstOrderOptions, SetLearningRateValidates) {
  for (const Config& config : test_util::configs()) {
    auto optimizer = test_util::make<double>(config);
    optimizer->set_learning_rate(0.25);
    EXPECT_EQ(optimizer->learning_rate(), 0.25);
    const std::string message = invalid_argument_message([&] { optimizer->set_learning_rate(-1); });
    EXPECT_NE(message.find(optimizer->name() + ".learning_rate = -1"), std::string::npos)
        << config.label << ": " << message;
    EXPECT_EQ(optimizer->learning_rate(), 0.25);
  }
}

class EveryConfig : public ::testing::TestWithParam<Config> {};

// A NaN gradient or loss rejects the step and changes nothing: the run then
// continues exactly as one that never met it.
TEST_P(EveryConfig, NonFiniteStepIsRejectedAndChangesNothing) {
  auto optimizer = test_util::make<double>(GetParam());
  auto twin = test_util::make<double>(GetParam());
  auto f = quadratic();
  Vector<double> x = start(), y = start();
  const std::vector<Index> batch{0};
  for (int poisoned = 0; poisoned < 3; ++poisoned) {
    f.poison_gradient = poisoned != 1;
    f.poison_loss = poisoned != 0;
    const Vector<double> before = x;
    const std::int64_t steps = optimizer->step_count();
    const StepResult r = optimizer->step(f, x, batch);
    EXPECT_FALSE(r.accepted);
    EXPECT_NE(r.event.find("non-finite"), std::string::npos) << r.event;
    EXPECT_EQ(r.gradient_evaluations, 1);
    EXPECT_EQ(0, std::memcmp(x.data(), before.data(), sizeof(double) * 2));
    EXPECT_EQ(optimizer->step_count(), steps);
    f.poison_gradient = f.poison_loss = false;
    EXPECT_TRUE(optimizer->step(f, x, batch).accepted);
    EXPECT_TRUE(twin->step(f, y, batch).accepted);
  }
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), sizeof(double) * 2));
  EXPECT_EQ(optimizer->step_count(), 3);
}

// Reports the loss before the step and the gradient's norm.
TEST_P(EveryConfig, ReportsLossAndGradientNormBeforeTheStep) {
  auto optimizer = test_util::make<double>(GetParam());
  auto f = quadratic();
  Vector<double> x = start();
  const std::vector<Index> batch{0};
  const StepResult r = optimizer->step(f, x, batch);
  EXPECT_EQ(r.loss, 0.5 * (1 + 4 * 4));
  EXPECT_DOUBLE_EQ(r.gradient_norm, std::sqrt(65.0));
  EXPECT_TRUE(r.event.empty());
  EXPECT_EQ(r.curvature_products, 0);
}

TEST_P(EveryConfig, ResetForgetsTheRun) {
  auto optimizer = test_util::make<double>(GetParam());
  auto fresh = test_util::make<double>(GetParam());
  auto f = quadratic();
  const std::vector<Index> batch{0};
  Vector<double> x = start(), y = start();
  for (int k = 0; k < 3; ++k) optimizer->step(f, x, batch);
  optimizer->reset();
  EXPECT_EQ(optimizer->step_count(), 0);
  x = start();
  for (int k = 0; k < 3; ++k) {
    optimizer->step(f, x, batch);
    fresh->step(f, y, batch);
  }
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), sizeof(double) * 2));
}

TEST_P(EveryConfig, StateOfAnotherSizeOrOptimizerIsRefused) {
  auto optimizer = test_util::make<double>(GetParam());
  auto f = quadratic();
  const std::vector<Index> batch{0};
  Vector<double> x = start();
  optimizer->step(f, x, batch);
  StateDict state;
  optimizer->save_state(state);
  EXPECT_EQ(state.scalar(optimizer->name() + ".step"), 1);

  // Loaded into the same optimizer, then asked to step a point of another size.
  auto other = test_util::make<double>(GetParam());
  other->load_state(state);
  Quadratic<double> larger(Vector<double>::Ones(3));
  Vector<double> z = Vector<double>::Ones(3);
  if (!state.arrays.empty()) {
    EXPECT_THROW(other->step(larger, z, batch), InvalidArgument);
  }

  // A state without this optimizer's entries.
  StateDict foreign;
  foreign.scalars["kfac.step"] = 1;
  EXPECT_THROW(other->load_state(foreign), InvalidArgument);
  StateDict negative;
  negative.scalars[optimizer->name() + ".step"] = -1;
  EXPECT_THROW(other->load_state(negative), InvalidArgument);
  // Buffers of different sizes.
  if (state.arrays.size() >= 2) {
    StateDict broken = state;
    broken.arrays.begin()->second.push_back(0);
    EXPECT_THROW(other->load_state(broken), InvalidArgument);
  }
}

INSTANTIATE_TEST_SUITE_P(FirstOrder, EveryConfig, ::testing::ValuesIn(test_util::configs()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace hesse::optim
