// NetworkObjective keeps its chunk buffers when the selection alternates
// between two sizes or cycles through three (a batch and its curvature subset or overlap, as
// Hessian-free, subsampled Newton and stochastic L-BFGS with overlap use
// it): alternating calls allocate no more than the same calls at a fixed
// size (which allocate only Eigen's own temporaries, if any).
#include <gtest/gtest.h>

#include <vector>

#include "../common/allocation_counter.hpp"
#include "../common/small_network.hpp"
#include "hesse/nn/network_objective.hpp"

namespace hesse::nn {
namespace {

TEST(NetworkObjectiveAllocation, AlternatingSelectionSizesReuseTheBuffers) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  const auto data = testing::blobs<float>(96);
  // One thread: libgomp's own team allocations are not the objective's.
  NetworkObjective<float> net(testing::small_mlp<float>(), LossKind::SoftmaxCrossEntropy, data,
                              {.threads = 1});
  std::vector<Index> batch(32), subset(8);
  for (Index i = 0; i < 32; ++i) batch[static_cast<std::size_t>(i)] = 2 * i + 1;
  for (Index i = 0; i < 8; ++i) subset[static_cast<std::size_t>(i)] = 3 * i;
  const Vector<float> x = net.network().initial_parameters(1);
  const Vector<float> v = Vector<float>::Ones(x.size());
  Vector<float> g, Gv;
  const auto gradient = [&] { net.value_and_gradient(x, &g); };
  const auto product = [&] { net.gauss_newton_vector(x, v, Gv); };
  // Each call at a fixed size, after a first one.
  net.select_batch(batch);
  gradient();
  const long long on_batch = hesse::testing::allocations_of(gradient);
  net.select_batch(subset);
  gradient();
  product();
  const long long on_subset =
      hesse::testing::allocations_of(gradient) + hesse::testing::allocations_of(product);
  // The same calls alternating between the sizes.
  const long long alternating = hesse::testing::allocations_of([&] {
    for (int k = 0; k < 5; ++k) {
      net.select_batch(batch);
      gradient();
      net.select_batch(subset);
      gradient();
      product();
    }
  });
  EXPECT_EQ(alternating, 5 * (on_batch + on_subset));
  // The softmax loss's per-column buffer is kept too: at most Eigen's
  // temporaries remain (2 per gradient on this two-layer network).
  EXPECT_LE(on_batch, 2);
}

// Three sizes in turn, as stochastic L-BFGS's parts of a batch (head,
// middle, tail) and its line search on the whole batch: still no more than
// at fixed sizes. With two sets of buffers every call resized them.
TEST(NetworkObjectiveAllocation, ThreeSelectionSizesInTurnReuseTheBuffers) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  const auto data = testing::blobs<float>(96);
  NetworkObjective<float> net(testing::small_mlp<float>(), LossKind::SoftmaxCrossEntropy, data,
                              {.threads = 1});
  std::vector<std::vector<Index>> parts{{}, {}, {}};
  for (Index i = 0; i < 32; ++i) parts[0].push_back(i);
  for (Index i = 0; i < 8; ++i) parts[1].push_back(40 + i);
  for (Index i = 0; i < 20; ++i) parts[2].push_back(50 + i);
  const Vector<float> x = net.network().initial_parameters(1);
  Vector<float> g;
  long long fixed = 0;
  for (const auto& part : parts) {
    net.select_batch(part);
    net.value_and_gradient(x, &g);
    fixed += hesse::testing::allocations_of([&] { net.value_and_gradient(x, &g); });
  }
  const long long cycling = hesse::testing::allocations_of([&] {
    for (int k = 0; k < 4; ++k)
      for (const auto& part : parts) {
        net.select_batch(part);
        net.value_and_gradient(x, &g);
      }
  });
  EXPECT_EQ(cycling, 4 * fixed);
}

}  // namespace
}  // namespace hesse::nn
