// After the first step, AdaHessian and Sophia steps allocate nothing beyond
// what their objective calls allocate inside the objective, also on steps
// that estimate the curvature: estimates, probes and moments are members,
// and the generator is copied on the stack.
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "../common/allocation_counter.hpp"
#include "../common/small_network.hpp"
#include "hesse/optim/adahessian.hpp"
#include "hesse/optim/sophia.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim {
namespace {

TEST(DiagonalAllocation, StepsAfterTheFirstAllocateNothing) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  const auto data = testing::blobs<float>(64);
  // One thread: the engine's OpenMP region may allocate in its workers a
  // varying number of times, which is not the optimizers' doing.
  nn::NetworkObjective<float> net(testing::small_mlp<float>(), nn::LossKind::SoftmaxCrossEntropy,
                                  data, {.threads = 1});
  StochasticAdapter<nn::NetworkObjective<float>> f(net);
  std::vector<std::unique_ptr<Optimizer<float>>> optimizers;
  optimizers.push_back(std::make_unique<AdaHessian<float>>(
      AdaHessianOptions{.weight_decay = 1e-4, .probes = 2, .average_size = 3}));
  optimizers.push_back(
      std::make_unique<AdaHessian<float>>(AdaHessianOptions{.hessian_power = 0.5}));
  optimizers.push_back(std::make_unique<Sophia<float>>(SophiaOptions{.hessian_every = 1}));
  optimizers.push_back(std::make_unique<Sophia<float>>(
      SophiaOptions{.hessian_every = 1, .estimator = SophiaEstimator::Hutchinson}));
  std::vector<Index> batch(32);
  for (Index i = 0; i < 32; ++i) batch[static_cast<std::size_t>(i)] = i;

  // What the objective itself allocates per call (nn's loss and activation
  // temporaries, if any) is not the optimizers'.
  Vector<float> x = net.network().initial_parameters(1), g, v = x, hv;
  Rng rng(1);
  f.select_batch(batch);
  f.value_and_gradient(x, &g);
  f.hessian_vector(x, v, hv);
  net.sampled_target_gradient(x, rng, g);
  using hesse::testing::allocations_of;
  const long long per_gradient = allocations_of([&] { f.value_and_gradient(x, &g); });
  const long long per_product = allocations_of([&] { f.hessian_vector(x, v, hv); });
  const long long per_sampled = allocations_of([&] { net.sampled_target_gradient(x, rng, g); });

  for (auto& opt : optimizers) {
    x = net.network().initial_parameters(1);
    opt->step(f, x, batch);
    long long expected = 0;
    hesse::testing::start_counting_allocations();
    hesse::testing::pause_counting_allocations();
    for (int k = 0; k < 4; ++k) {
      hesse::testing::resume_counting_allocations();
      const StepResult r = opt->step(f, x, batch);
      hesse::testing::pause_counting_allocations();
      const bool gnb = r.gradient_evaluations == 2;
      expected += per_gradient + r.curvature_products * per_product + (gnb ? per_sampled : 0);
    }
    EXPECT_EQ(hesse::testing::counted_allocations(), expected) << opt->name();
  }
}

}  // namespace
}  // namespace hesse::optim
