// Shampoo's preconditioned steps without a root refresh run on the gradient
// pass's own threads (value_and_gradient_then): the same bits as in a region
// of their own, and a non-finite gradient still leaves x and the state
// untouched.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../common/plain_objective.hpp"
#include "../common/small_network.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/optim/shampoo.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim {
namespace {

// small_mlp on 384 blobs, the network on two threads in slices of 4 or more.
struct Problem {
  Problem()
      : data(testing::blobs<float>(384)),
        network(testing::small_mlp<float>(), nn::LossKind::SoftmaxCrossEntropy, data,
                {.threads = 2, .min_samples_per_thread = 4}),
        adapter(network),
        plain(network) {}
  data::Dataset<float> data;
  nn::NetworkObjective<float> network;
  StochasticAdapter<nn::NetworkObjective<float>> adapter;
  testing::PlainObjective<float> plain;
};

std::vector<std::vector<Index>> epoch_batches() {
  data::BatchSampler sampler(384, 32, 5);
  sampler.start_epoch(0);
  std::vector<std::vector<Index>> out;
  for (Index b = 0; b < sampler.num_batches(); ++b) {
    const auto batch = sampler.batch(b);
    out.emplace_back(batch.begin(), batch.end());
  }
  return out;
}

bool same_bits(const Vector<float>& a, const Vector<float>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

// Roots from step 2 on, refreshed every 3 steps, statistics every 2 (steps
// with and without them run fused), blocks of 8 so that a layer has several.
const ShampooOptions kOptions{.inverse_every = 3,
                              .statistics_every = 2,
                              .block_size = 8,
                              .start_preconditioning_step = 2};

TEST(ShampooFused, StepsOnTheNetworksThreadsMatchARegionOfTheirOwn) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  for (const Index rank : {Index{0}, Index{2}}) {
    ShampooOptions options = kOptions;
    options.rank = rank;
    Problem a, b;
    Shampoo<float> on_network(options), on_region(options);
    Vector<float> xa = a.network.network().initial_parameters(1), xb = xa;
    std::size_t k = 0;
    for (const auto& batch : epoch_batches()) {
      const StepResult ra = on_network.step(a.adapter, xa, batch);
      const StepResult rb = on_region.step(b.plain, xb, batch);
      ASSERT_TRUE(ra.accepted && rb.accepted) << ra.event << rb.event;
      EXPECT_EQ(ra.loss, rb.loss);
      EXPECT_EQ(ra.gradient_norm, rb.gradient_norm);
      ASSERT_TRUE(same_bits(xa, xb)) << "rank " << rank << ", step " << k;
      ++k;
    }
    StateDict sa, sb;
    on_network.save_state(sa);
    on_region.save_state(sb);
    EXPECT_EQ(sa.serialize(), sb.serialize());
  }
  omp_set_num_threads(saved);
}

TEST(ShampooFused, NonFiniteGradientLeavesEverythingUnchanged) {
  for (const int threads : {1, 2}) {
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity()}) {
      // Entry 3 lies in the first layer's weights, entry 66 in its bias
      // (outside the blocks, grafted only).
      for (const Index entry : {Index{3}, Index{4 * 16 + 2}}) {
        const int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
        Problem p;
        const auto batches = epoch_batches();
        Shampoo<float> shampoo(kOptions);
        Vector<float> x = p.network.network().initial_parameters(1);
        // Step 1 grafts, step 2 refreshes the roots; step 3 is a fused one.
        ASSERT_TRUE(shampoo.step(p.plain, x, batches[0]).accepted);
        ASSERT_TRUE(shampoo.step(p.plain, x, batches[1]).accepted);
        StateDict before;
        shampoo.save_state(before);
        const Vector<float> copy = x;
        p.plain.poison = &bad;
        p.plain.poison_index = entry;
        const StepResult r = shampoo.step(p.plain, x, batches[2]);
        omp_set_num_threads(saved);
        SCOPED_TRACE(::testing::Message() << "threads " << threads << ", " << bad << " at "
                                          << entry);
        EXPECT_FALSE(r.accepted);
        EXPECT_TRUE(std::isfinite(r.loss));
        EXPECT_NE(r.event.find("non-finite loss or gradient"), std::string::npos) << r.event;
        EXPECT_TRUE(same_bits(copy, x));
        EXPECT_EQ(shampoo.step_count(), 2);
        StateDict after;
        shampoo.save_state(after);
        EXPECT_EQ(before.serialize(), after.serialize());

        // The next finite step is taken.
        p.plain.poison = nullptr;
        EXPECT_TRUE(shampoo.step(p.plain, x, batches[3]).accepted);
        EXPECT_TRUE(x.allFinite());
      }
    }
  }
}

}  // namespace
}  // namespace hesse::optim
