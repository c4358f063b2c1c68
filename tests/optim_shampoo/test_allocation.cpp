// After the first step, a step that does not recompute the inverse roots
// allocates nothing beyond what its one batch gradient allocates inside the
// objective: statistics, roots and every buffer are members, and the
// products are small enough for Eigen to pack them on the stack.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "../common/allocation_counter.hpp"
#include "../common/small_network.hpp"
#include "hesse/optim/shampoo.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim {
namespace {

TEST(ShampooAllocation, StepsBetweenInverseRootsAllocateNothing) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  const auto data = testing::blobs<float>(64);
  // One thread: the engine's OpenMP region may allocate in its workers a
  // varying number of times, which is not the optimizer's doing.
  nn::NetworkObjective<float> net(testing::small_mlp<float>(), nn::LossKind::SoftmaxCrossEntropy,
                                  data, {.threads = 1});
  StochasticAdapter<nn::NetworkObjective<float>> f(net);
  // Roots at steps 1 and 1001; blocks of 8 (24 of them) exercise the split,
  // rank 3 the low-rank roots of their sides of 5 to 8.
  for (const Index rank : {0, 3}) {
    Shampoo<float> opt({.inverse_every = 1000,
                        .block_size = 8,
                        .rank = rank,
                        .start_preconditioning_step = 1,
                        .weight_decay = 1e-4});
    Vector<float> x = net.network().initial_parameters(1);
    std::vector<Index> batch(32);
    for (Index i = 0; i < 32; ++i) batch[static_cast<std::size_t>(i)] = i;
    opt.step(f, x, batch);
    // What the objective itself allocates for one batch gradient (nn's loss
    // and activation temporaries, if any) is not the optimizer's.
    Vector<float> g;
    f.select_batch(batch);
    f.value_and_gradient(x, &g);
    const long long per_gradient =
        hesse::testing::allocations_of([&] { f.value_and_gradient(x, &g); });
    EXPECT_EQ(hesse::testing::allocations_of([&] {
                for (int k = 0; k < 5; ++k) opt.step(f, x, batch);
              }),
              5 * per_gradient)
        << "rank " << rank;
    EXPECT_EQ(opt.step_count(), 6);
  }
}

}  // namespace
}  // namespace hesse::optim
