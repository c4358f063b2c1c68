// K-FAC's plain steps (no statistics, refresh, adaptive rule or weight decay)
// precondition and step on the gradient pass's own threads
// (value_and_gradient_then): the same bits as in a region of their own, and
// a non-finite gradient still leaves x and the state untouched.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../common/plain_objective.hpp"
#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using kfac_test::Problem;

// Two threads in the network's passes, slices of 4 samples or more.
constexpr nn::NetworkObjectiveOptions kTwoThreads{.threads = 2, .min_samples_per_thread = 4};

TEST(KfacFused, PlainStepsOnTheNetworksThreadsMatchARegionOfTheirOwn) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  for (const Index rank : {Index{0}, Index{4}}) {
    const KfacOptions options{.inverse_every = 3, .statistics_every = 2, .rank = rank};
    Problem<float> a(384, kTwoThreads), b(384, kTwoThreads);
    testing::PlainObjective<float> separate(b.network);
    Kfac<float> on_network(options), on_region(options);
    Vector<float> xa = a.start(), xb = b.start();
    std::size_t k = 0;
    for (const auto& batch : kfac_test::batches(384, 32, 1)) {
      const StepResult ra = on_network.step(a.f, xa, batch);
      const StepResult rb = on_region.step(separate, xb, batch);
      ASSERT_TRUE(ra.accepted && rb.accepted) << ra.event << rb.event;
      EXPECT_EQ(ra.loss, rb.loss);
      ASSERT_EQ(std::memcmp(xa.data(), xb.data(), sizeof(float) * std::size_t(xa.size())), 0)
          << "rank " << rank << ", step " << k;
      ++k;
    }
  }
  omp_set_num_threads(saved);
}

TEST(KfacFused, NonFiniteGradientOnAPlainStepLeavesEverythingUnchanged) {
  for (const int threads : {1, 2}) {
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity()}) {
      const int saved = omp_get_max_threads();
      omp_set_num_threads(threads);
      Problem<float> p(384, kTwoThreads);
      testing::PlainObjective<float> f(p.network);
      const auto batches = kfac_test::batches(384, 32, 1);
      // Step 0 gathers statistics and inverts; step 1 is a plain one.
      Kfac<float> kfac({.inverse_every = 10, .statistics_every = 10});
      Vector<float> x = p.start();
      ASSERT_TRUE(kfac.step(f, x, batches[0]).accepted);
      StateDict before;
      kfac.save_state(before);
      const Vector<float> copy = x;
      f.poison = &bad;
      const StepResult r = kfac.step(f, x, batches[1]);
      omp_set_num_threads(saved);
      EXPECT_FALSE(r.accepted);
      EXPECT_TRUE(std::isfinite(r.loss));
      EXPECT_NE(r.event.find("non-finite loss or gradient"), std::string::npos) << r.event;
      EXPECT_EQ(std::memcmp(copy.data(), x.data(), sizeof(float) * std::size_t(x.size())), 0)
          << "threads " << threads << ", " << bad;
      EXPECT_EQ(kfac.step_count(), 1);
      StateDict after;
      kfac.save_state(after);
      before.scalars.erase("kfac.damping");
      after.scalars.erase("kfac.damping");
      EXPECT_EQ(before.arrays, after.arrays);  // factors, inverses, momentum
      EXPECT_GT(kfac.damping(), KfacOptions{}.damping);

      // The next finite step is taken.
      f.poison = nullptr;
      EXPECT_TRUE(kfac.step(f, x, batches[2]).accepted);
      EXPECT_TRUE(x.allFinite());
    }
  }
}

}  // namespace
}  // namespace hesse::optim
