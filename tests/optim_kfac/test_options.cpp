// Bad options name their field; settings map onto fields by name; objectives
// without a network are refused; NaN rejects a step and raises damping.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "../common/errors.hpp"
#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using hesse::testing::invalid_argument_message;
using kfac_test::Problem;

void expect_invalid(const std::function<void()>& call, const std::string& needle) {
  const std::string message = invalid_argument_message(call);
  EXPECT_NE(message.find(needle), std::string::npos)
      << "expected an InvalidArgument mentioning '" << needle << "', got '" << message << "'";
}

TEST(KfacOptions, DefaultsAreValid) {
  EXPECT_NO_THROW(KfacOptions{}.validate());
  Kfac<float> kfac;
  EXPECT_EQ(kfac.name(), "kfac");
  EXPECT_EQ(kfac.learning_rate(), 1e-2);
}

TEST(KfacOptions, EachBadValueNamesItsField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    std::string field;
    std::function<void(KfacOptions&)> spoil;
  };
  const std::vector<Case> cases{
      {"kfac.learning_rate = 0", [](KfacOptions& o) { o.learning_rate = 0; }},
      {"kfac.learning_rate = nan", [&](KfacOptions& o) { o.learning_rate = nan; }},
      {"kfac.damping = -1", [](KfacOptions& o) { o.damping = -1; }},
      {"kfac.momentum = 1", [](KfacOptions& o) { o.momentum = 1; }},
      {"kfac.ema_decay = 1", [](KfacOptions& o) { o.ema_decay = 1; }},
      {"kfac.ema_decay = -0.1", [](KfacOptions& o) { o.ema_decay = -0.1; }},
      {"kfac.inverse_every = 0", [](KfacOptions& o) { o.inverse_every = 0; }},
      {"kfac.statistics_every = -2", [](KfacOptions& o) { o.statistics_every = -2; }},
      {"kfac.statistics_fraction = 0", [](KfacOptions& o) { o.statistics_fraction = 0; }},
      {"kfac.statistics_fraction = 1.5", [](KfacOptions& o) { o.statistics_fraction = 1.5; }},
      {"kfac.statistics_fraction = nan", [&](KfacOptions& o) { o.statistics_fraction = nan; }},
      {"kfac.fisher = 2", [](KfacOptions& o) { o.fisher = static_cast<nn::FisherKind>(2); }},
      {"kfac.inverse = 5", [](KfacOptions& o) { o.inverse = static_cast<KfacInverse>(5); }},
      {"kfac.damping_every = 0", [](KfacOptions& o) { o.damping_every = 0; }},
      {"kfac.damping_decay = 1", [](KfacOptions& o) { o.damping_decay = 1; }},
      {"kfac.min_damping = 0", [](KfacOptions& o) { o.min_damping = 0; }},
      {"kfac.max_damping = 1e-09", [](KfacOptions& o) { o.max_damping = 1e-9; }},
      {"kfac.damping = 1e-09",
       [](KfacOptions& o) {
         o.damping = 1e-9;
         o.min_damping = 1e-6;
       }},
      {"kfac.kl_clip = -1", [](KfacOptions& o) { o.kl_clip = -1; }},
      {"kfac.weight_decay = inf",
       [](KfacOptions& o) { o.weight_decay = std::numeric_limits<double>::infinity(); }},
      {"kfac.failure_damping_factor = 1", [](KfacOptions& o) { o.failure_damping_factor = 1; }},
      {"kfac.rank = -1", [](KfacOptions& o) { o.rank = -1; }},
      {"kfac.rank = 8: low-rank factors need the Cholesky variant",
       [](KfacOptions& o) {
         o.rank = 8;
         o.inverse = KfacInverse::Eigen;
       }},
      {"kfac.subspace_iterations = 0", [](KfacOptions& o) { o.subspace_iterations = 0; }},
  };
  for (const Case& c : cases) {
    KfacOptions o;
    c.spoil(o);
    expect_invalid([&] { o.validate(); }, c.field);
    expect_invalid([&] { Kfac<double> k(o); }, c.field);
  }
}

TEST(KfacOptions, SettingsMapOntoFieldsByName) {
  const KfacOptions o = KfacOptions::from_settings({{"lr", 0.5},
                                                    {"damping", 0.02},
                                                    {"momentum", 0.5},
                                                    {"ema_decay", 0.9},
                                                    {"inverse_every", 7},
                                                    {"statistics_every", 3},
                                                    {"statistics_fraction", 0.25},
                                                    {"fisher", 1},
                                                    {"inverse", 1},
                                                    {"adaptive_damping", 1},
                                                    {"damping_every", 4},
                                                    {"damping_decay", 0.9},
                                                    {"min_damping", 1e-6},
                                                    {"max_damping", 10},
                                                    {"kl_clip", 0},
                                                    {"weight_decay", 1e-4},
                                                    {"failure_damping_factor", 3},
                                                    {"rank", 0},
                                                    {"subspace_iterations", 5},
                                                    {"seed", 42}});
  EXPECT_EQ(o.learning_rate, 0.5);
  EXPECT_EQ(o.damping, 0.02);
  EXPECT_EQ(o.momentum, 0.5);
  EXPECT_EQ(o.ema_decay, 0.9);
  EXPECT_EQ(o.inverse_every, 7);
  EXPECT_EQ(o.statistics_every, 3);
  EXPECT_EQ(o.statistics_fraction, 0.25);
  EXPECT_EQ(o.fisher, nn::FisherKind::Empirical);
  EXPECT_EQ(o.inverse, KfacInverse::Eigen);
  EXPECT_TRUE(o.adaptive_damping);
  EXPECT_EQ(o.damping_every, 4);
  EXPECT_EQ(o.damping_decay, 0.9);
  EXPECT_EQ(o.subspace_iterations, 5);
  EXPECT_EQ(KfacOptions::from_settings({{"rank", 32}}).rank, 32);
  EXPECT_EQ(o.min_damping, 1e-6);
  EXPECT_EQ(o.max_damping, 10);
  EXPECT_EQ(o.kl_clip, 0);
  EXPECT_EQ(o.weight_decay, 1e-4);
  EXPECT_EQ(o.failure_damping_factor, 3);
  EXPECT_EQ(o.seed, 42u);

  expect_invalid([] { KfacOptions::from_settings({{"stat_decay", 0.9}}); }, "'stat_decay'");
  expect_invalid([] { KfacOptions::from_settings({{"fisher", 2}}); }, "kfac.fisher = 2");
  expect_invalid([] { KfacOptions::from_settings({{"inverse", -1}}); }, "kfac.inverse = -1");
  expect_invalid([] { KfacOptions::from_settings({{"seed", -3}}); }, "kfac.seed = -3");
  expect_invalid([] { KfacOptions::from_settings({{"inverse_every", 2.5}}); }, "whole number");
  expect_invalid([] { KfacOptions::from_settings({{"lr", -1}}); }, "kfac.learning_rate = -1");

  const auto made = make_kfac<double>({{"lr", 0.25}});
  EXPECT_EQ(made->name(), "kfac");
  EXPECT_EQ(made->learning_rate(), 0.25);
  made->set_learning_rate(0.125);
  EXPECT_EQ(made->learning_rate(), 0.125);
  expect_invalid([&] { made->set_learning_rate(0); }, "kfac.learning_rate = 0");
  EXPECT_EQ(made->learning_rate(), 0.125);
}

// An objective with gradients but no network behind it.
class Bowl final : public StochasticObjective<double> {
 public:
  Index dimension() const override { return 3; }
  Index num_samples() const override { return 1; }
  void select_batch(std::span<const Index>) override {}
  // Not marked override: the base class may or may not declare it.
  void select_all() {}
  double value_and_gradient(const Vector<double>& x, Vector<double>* gradient) override {
    if (gradient) *gradient = x;
    return 0.5 * x.squaredNorm();
  }
};

TEST(KfacErrors, ObjectiveWithoutNetworkIsRefused) {
  Bowl bowl;
  Kfac<double> kfac;
  Vector<double> x = Vector<double>::Ones(3);
  const std::vector<Index> batch{0};
  expect_invalid([&] { kfac.step(bowl, x, batch); }, "not a neural network");
  EXPECT_EQ(x, Vector<double>::Ones(3));
}

TEST(KfacErrors, WrongSizeOfXIsRefused) {
  Problem<double> p(64);
  Kfac<double> kfac;
  Vector<double> x = Vector<double>::Zero(5);
  const std::vector<Index> batch{0, 1};
  expect_invalid([&] { kfac.step(p.f, x, batch); }, "x has 5 entries");
  x = p.start();
  kfac.step(p.f, x, batch);
  Vector<double> y = Vector<double>::Zero(7);
  expect_invalid([&] { kfac.step(p.f, y, batch); }, "x has 7 entries");
}

TEST(KfacErrors, NanRejectsTheStepAndRaisesDamping) {
  for (const KfacInverse inverse : {KfacInverse::Cholesky, KfacInverse::Eigen}) {
    Problem<float> p;
    const auto batches = kfac_test::batches(384, 32, 1);
    Kfac<float> kfac({.statistics_every = 1, .inverse = inverse});
    Vector<float> x = p.start();
    kfac.step(p.f, x, batches[0]);
    kfac.step(p.f, x, batches[1]);
    StateDict before;
    kfac.save_state(before);

    Vector<float> poisoned = x;
    poisoned[3] = std::numeric_limits<float>::quiet_NaN();
    const Vector<float> copy = poisoned;
    const StepResult r = kfac.step(p.f, poisoned, batches[2]);
    EXPECT_FALSE(r.accepted);
    EXPECT_NE(r.event.find("non-finite"), std::string::npos) << r.event;
    EXPECT_NE(r.event.find("damping raised"), std::string::npos) << r.event;
    EXPECT_EQ(0, std::memcmp(copy.data(), poisoned.data(), sizeof(float) * std::size_t(x.size())));
    EXPECT_DOUBLE_EQ(kfac.damping(), 10 * KfacOptions{}.damping);
    EXPECT_EQ(kfac.step_count(), 2);
    StateDict after;
    kfac.save_state(after);
    EXPECT_EQ(before.arrays, after.arrays);  // factors, inverses, momentum unchanged

    // The next finite step is taken, with inverses refreshed at the new damping.
    const StepResult next = kfac.step(p.f, x, batches[2]);
    EXPECT_TRUE(next.accepted) << next.event;
    EXPECT_EQ(kfac.step_count(), 3);
    StateDict refreshed;
    kfac.save_state(refreshed);
    const std::string key =
        inverse == KfacInverse::Cholesky ? "kfac.A_inverse.0" : "kfac.A_eigenvalues.0";
    EXPECT_NE(refreshed.array(key), before.array(key));
  }
}

}  // namespace
}  // namespace hesse::optim
