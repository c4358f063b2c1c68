// What the three optimizers share: the factory and its settings, validation
// messages, checkpoints that continue bit for bit, and steps that allocate
// nothing after the first.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "../common/allocation_counter.hpp"
#include "../common/errors.hpp"
#include "hesse/optim/hessian_free.hpp"
#include "hesse/optim/stochastic_lbfgs.hpp"
#include "hesse/optim/subsampled_newton.hpp"
#include "toy_objectives.hpp"
#include "training.hpp"

namespace hesse::optim {
namespace {

using testing::Classification;
using testing::SampleQuadratic;

// ---------------------------------------------------------------- factory and settings

TEST(HessianFreeFamily, FactoryKnowsItsNamesAndNoOthers) {
  for (const auto& [name, description] : hessian_free_family_catalogue()) {
    const auto optimizer = make_hessian_free_family<double>(name, {});
    ASSERT_NE(optimizer, nullptr) << name;
    EXPECT_EQ(optimizer->name(), name);
    EXPECT_FALSE(description.empty());
    EXPECT_NE(make_hessian_free_family<float>(name, {}), nullptr) << name;
  }
  EXPECT_EQ(hessian_free_family_catalogue().size(), 3u);
  EXPECT_EQ(make_hessian_free_family<double>("adam", {}), nullptr);
}

TEST(HessianFreeFamily, SettingsReachTheirFields) {
  const auto hf = HessianFreeOptions::from_settings({{"lr", 0.5},
                                                     {"gauss_newton", 0},
                                                     {"curvature_fraction", 0.5},
                                                     {"damping", 3},
                                                     {"max_cg_iterations", 40},
                                                     {"cg_warm_start_decay", 0.9},
                                                     {"preconditioner", 0},
                                                     {"seed", 7}});
  EXPECT_EQ(hf.learning_rate, 0.5);
  EXPECT_EQ(hf.curvature, CurvatureProduct::Hessian);
  EXPECT_EQ(hf.curvature_fraction, 0.5);
  EXPECT_EQ(hf.damping, 3);
  EXPECT_EQ(hf.max_cg_iterations, 40);
  EXPECT_EQ(hf.cg_warm_start_decay, 0.9);
  EXPECT_EQ(hf.preconditioner, HessianFreePreconditioner::None);
  EXPECT_EQ(hf.seed, 7u);
  const auto newton = SubsampledNewtonOptions::from_settings(
      {{"hessian_batch_size", 16}, {"gauss_newton", 1}, {"cg_tolerance", 0.01}});
  EXPECT_EQ(newton.hessian_batch_size, 16);
  EXPECT_EQ(newton.curvature, CurvatureProduct::GaussNewton);
  EXPECT_EQ(newton.cg_tolerance, 0.01);
  const auto lbfgs = StochasticLbfgsOptions::from_settings(
      {{"memory", 5}, {"powell_damping", 1}, {"line_search", 0}, {"lr", 0.1}});
  EXPECT_EQ(lbfgs.memory, 5);
  EXPECT_TRUE(lbfgs.powell_damping);
  EXPECT_FALSE(lbfgs.line_search);
  EXPECT_EQ(lbfgs.learning_rate, 0.1);
}

using hesse::testing::invalid_argument_message;

TEST(HessianFreeFamily, BadOptionsNameTheField) {
  struct Case {
    std::string optimizer;
    OptimizerSettings settings;
    std::string expected;
  };
  const std::vector<Case> cases{
      {"hessian-free", {{"curvature_fraction", 0}}, "hessian_free.curvature_fraction = 0: must be in (0, 1]"},
      {"hessian-free", {{"damping", -1}}, "hessian_free.damping = -1"},
      {"hessian-free", {{"max_cg_iterations", 0}}, "hessian_free.max_cg_iterations = 0"},
      {"hessian-free", {{"cg_warm_start_decay", 1.5}}, "hessian_free.cg_warm_start_decay = 1.5"},
      {"hessian-free", {{"damping_increase", 1}}, "hessian_free.damping_increase = 1"},
      {"hessian-free", {{"lr", -1}}, "hessian_free.learning_rate = -1: must be finite and >= 0"},
      {"hessian-free", {{"max_cg_iterations", 2.5}}, "'max_cg_iterations' must be a whole number"},
      {"hessian-free", {{"momentum", 0.9}}, "unknown setting 'momentum'"},
      {"subsampled-newton", {{"hessian_fraction", 1.5}}, "subsampled_newton.hessian_fraction = 1.5"},
      {"subsampled-newton", {{"cg_tolerance", 1}}, "subsampled_newton.cg_tolerance = 1"},
      {"subsampled-newton", {{"hessian_batch_size", -2}}, "subsampled_newton.hessian_batch_size = -2"},
      {"subsampled-newton", {{"damping", 0}}, "subsampled_newton.damping = 0"},
      {"slbfgs", {{"memory", 0}}, "slbfgs.memory = 0: must be >= 1"},
      {"slbfgs", {{"curvature_threshold", 1}}, "slbfgs.curvature_threshold = 1"},
      {"slbfgs", {{"powell_damping", 2}}, "'powell_damping' must be 0 or 1"},
      {"slbfgs", {{"overlap_size", -3}}, "slbfgs.overlap_size = -3: must be >= 0"},
  };
  for (const auto& c : cases) {
    const std::string message = invalid_argument_message(
        [&] { make_hessian_free_family<double>(c.optimizer, c.settings); });
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << c.optimizer << ": expected '" << c.expected << "', got '" << message << "'";
  }
  EXPECT_NE(invalid_argument_message([] { HessianFree<float>({.min_damping = 0}); })
                .find("hessian_free.min_damping = 0"),
            std::string::npos);
  HessianFree<double> hf;
  EXPECT_NE(invalid_argument_message([&] { hf.set_learning_rate(-1); })
                .find("hessian_free.learning_rate = -1"),
            std::string::npos);
}

// A schedule may end at lr = 0: the step evaluates the batch and stays put.
TEST(HessianFreeFamily, ZeroLearningRateTakesNoStep) {
  SampleQuadratic f(4, 16, 1);
  const auto batch = testing::all_indices(16);
  for (const auto& [name, description] : hessian_free_family_catalogue()) {
    auto optimizer = make_hessian_free_family<double>(name, {});
    optimizer->set_learning_rate(0);
    EXPECT_EQ(optimizer->learning_rate(), 0);
    Vector<double> x = Vector<double>::Ones(4);
    const StepResult r = optimizer->step(f, x, batch);
    EXPECT_TRUE(r.accepted) << name;
    EXPECT_GT(r.gradient_norm, 0) << name;
    EXPECT_EQ(x, Vector<double>::Ones(4)) << name;
  }
}

/// An objective with gradients only.
class GradientOnly final : public StochasticObjective<double> {
 public:
  Index dimension() const override { return 2; }
  Index num_samples() const override { return 4; }
  void select_batch(std::span<const Index>) override {}
  void select_all() override {}
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) override {
    if (g) *g = x;
    return 0.5 * x.squaredNorm();
  }
};

TEST(HessianFreeFamily, MissingCurvatureProductsAreNamedBeforeAnyWork) {
  GradientOnly f;
  Vector<double> x = Vector<double>::Ones(2);
  const auto batch = testing::all_indices(4);
  HessianFree<double> hf;
  EXPECT_NE(invalid_argument_message([&] { hf.step(f, x, batch); }).find("gauss_newton = 1"),
            std::string::npos);
  SubsampledNewton<double> newton;
  EXPECT_NE(invalid_argument_message([&] { newton.step(f, x, batch); }).find("hessian_vector"),
            std::string::npos);
  EXPECT_EQ(hf.step_count(), 0);
  EXPECT_EQ(x, Vector<double>::Ones(2));
  StochasticLbfgs<double> lbfgs;  // needs gradients only
  EXPECT_TRUE(lbfgs.step(f, x, batch).accepted);
}

// ---------------------------------------------------------------- checkpoints

/// k steps, save (through the binary format), load into a fresh optimizer,
/// then both continue on the same batches: every following x is bit for bit
/// the same.
template <class T>
void expect_checkpoint_continues_bit_for_bit(const std::string& name,
                                             const OptimizerSettings& settings) {
  Classification<T> problem;
  auto original = make_hessian_free_family<T>(name, settings);
  const Index k = 7;
  for (Index step = 0; step < k; ++step) original->step(problem.f, problem.x, problem.batch(step));
  StateDict saved;
  original->save_state(saved);
  const StateDict loaded = StateDict::deserialize(saved.serialize(), "memory");
  auto restored = make_hessian_free_family<T>(name, settings);
  restored->load_state(loaded);
  EXPECT_EQ(restored->step_count(), k);

  Vector<T> x_restored = problem.x;
  for (Index step = k; step < k + 8; ++step) {
    const StepResult a = original->step(problem.f, problem.x, problem.batch(step));
    const StepResult b = restored->step(problem.f, x_restored, problem.batch(step));
    ASSERT_EQ(a.loss, b.loss) << name << " step " << step;
    ASSERT_EQ(a.accepted, b.accepted) << name << " step " << step;
    ASSERT_EQ(0, std::memcmp(problem.x.data(), x_restored.data(),
                             sizeof(T) * static_cast<std::size_t>(x_restored.size())))
        << name << " diverged at step " << step;
  }
  StateDict again, again_restored;
  original->save_state(again);
  restored->save_state(again_restored);
  EXPECT_EQ(again.serialize(), again_restored.serialize()) << name;

  // reset() forgets the run: the first step matches a fresh optimizer's.
  auto fresh = make_hessian_free_family<T>(name, settings);
  original->reset();
  EXPECT_EQ(original->step_count(), 0);
  Vector<T> x1 = problem.net.network().initial_parameters(1), x2 = x1;
  original->step(problem.f, x1, problem.batch(0));
  fresh->step(problem.f, x2, problem.batch(0));
  EXPECT_EQ(x1, x2) << name;
}

TEST(HessianFreeFamily, CheckpointsContinueBitForBit) {
  expect_checkpoint_continues_bit_for_bit<double>(
      "hessian-free", {{"curvature_fraction", 0.25}, {"max_cg_iterations", 20}, {"seed", 3}});
  expect_checkpoint_continues_bit_for_bit<double>("subsampled-newton",
                                                  {{"hessian_fraction", 0.25}, {"seed", 3}});
  expect_checkpoint_continues_bit_for_bit<double>("slbfgs", {{"memory", 4}});
  expect_checkpoint_continues_bit_for_bit<double>("slbfgs", {{"memory", 4}, {"overlap", 0.25}});
}

TEST(HessianFreeFamily, CheckpointsContinueBitForBitInFloat) {
  expect_checkpoint_continues_bit_for_bit<float>(
      "hessian-free", {{"curvature_fraction", 0.25}, {"max_cg_iterations", 20}, {"seed", 3}});
  expect_checkpoint_continues_bit_for_bit<float>("subsampled-newton",
                                                 {{"hessian_fraction", 0.25}, {"seed", 3}});
  expect_checkpoint_continues_bit_for_bit<float>("slbfgs",
                                                 {{"line_search", 0}, {"lr", 0.2}});
  expect_checkpoint_continues_bit_for_bit<float>(
      "slbfgs", {{"line_search", 0}, {"lr", 0.2}, {"overlap", 0.5}});
}

TEST(HessianFreeFamily, LoadingAnotherOptimizersStateFails) {
  StateDict state;
  SubsampledNewton<double>().save_state(state);
  HessianFree<double> hf;
  EXPECT_THROW(hf.load_state(state), InvalidArgument);
  StochasticLbfgs<double> lbfgs;
  EXPECT_THROW(lbfgs.load_state(state), InvalidArgument);
}

}  // namespace

// ---------------------------------------------------------------- no allocation after the first step

namespace {

// Stochastic L-BFGS with O_k smaller than the batch runs on batches that
// partition the epoch (a gradient on O_k per pair) and on batches that share
// 8 samples (windows of 32 with stride 24: 32, 32, 32 and 24 samples; the
// pair from the next batch's head, and a gradient on O_k when the epoch's
// batches start again).
TEST(HessianFreeFamily, StepsAfterTheFirstAllocateNothing) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  SampleQuadratic f(10, 96, 4, 1e-3);
  auto epoch_batches = [](Index overlap) {
    data::BatchSampler sampler(96, 32, 2, false, overlap);
    sampler.start_epoch(0);
    std::vector<std::vector<Index>> batches;
    for (Index b = 0; b < sampler.num_batches(); ++b)
      batches.emplace_back(sampler.batch(b).begin(), sampler.batch(b).end());
    return batches;
  };
  const std::vector<std::vector<Index>> apart = epoch_batches(0), sharing = epoch_batches(8);
  struct Run {
    std::string name;
    OptimizerSettings settings;
    const std::vector<std::vector<Index>>* batches;
  };
  const std::vector<Run> runs{
      {"hessian-free", {{"curvature_fraction", 0.25}, {"damping", 1}}, &apart},
      {"hessian-free", {{"lr", 0.5}, {"gauss_newton", 0}, {"preconditioner", 0}}, &apart},
      {"subsampled-newton", {{"hessian_fraction", 0.5}}, &apart},
      {"slbfgs", {{"memory", 3}}, &apart},
      {"slbfgs", {{"line_search", 0}, {"lr", 0.5}, {"powell_damping", 1}}, &apart},
      {"slbfgs", {{"memory", 3}, {"overlap", 0.25}}, &apart},
      {"slbfgs", {{"line_search", 0}, {"lr", 0.5}, {"overlap", 0.5}}, &apart},
      {"slbfgs", {{"memory", 3}, {"overlap_size", 8}}, &sharing},
      {"slbfgs", {{"line_search", 0}, {"lr", 0.5}, {"overlap_size", 8}}, &sharing},
      {"slbfgs", {{"line_search", 0}, {"lr", 0.5}, {"overlap_size", 20}}, &sharing},
  };
  for (const auto& [name, settings, batches] : runs) {
    auto optimizer = make_hessian_free_family<double>(name, settings);
    Vector<double> x = Vector<double>::Zero(10);
    optimizer->step(f, x, batches->front());
    hesse::testing::start_counting_allocations();
    for (std::size_t k = 1; k < 12; ++k) {
      const StepResult r = optimizer->step(f, x, (*batches)[k % batches->size()]);
      hesse::testing::pause_counting_allocations();
      ASSERT_TRUE(r.accepted) << name << ": " << r.event;
      hesse::testing::resume_counting_allocations();
    }
    hesse::testing::pause_counting_allocations();
    EXPECT_EQ(hesse::testing::counted_allocations(), 0) << name;
  }
}

}  // namespace
}  // namespace hesse::optim
