// After the first step a K-FAC step allocates nothing of its own: factors,
// inverses, the momentum buffer and the workspaces are members. The step
// allocates exactly what the objective's calls it makes (gradient or
// statistics, and the reduction ratio's product and loss) allocate when
// called on their own.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "../common/allocation_counter.hpp"
#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using hesse::testing::allocations_of;
using kfac_test::Problem;

TEST(KfacAllocation, StepsAfterTheFirstAllocateNothingOfTheirOwn) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  for (const KfacInverse inverse : {KfacInverse::Cholesky, KfacInverse::Eigen}) {
    // Eigen's SelfAdjointEigenSolver allocates Householder workspaces, so
    // the eigen variant is counted between refreshes only.
    const bool cholesky = inverse == KfacInverse::Cholesky;
    Problem<float> p;
    const auto batches = kfac_test::batches(384, 32, 1);
    Kfac<float> kfac({.inverse_every = cholesky ? 2 : 1000,
                      .statistics_every = 3,
                      .inverse = inverse,
                      .adaptive_damping = true,
                      .damping_every = 1,
                      .weight_decay = 1e-4});
    Vector<float> x = p.start();
    kfac.step(p.f, x, batches[0]);  // sets up the buffers

    // What the objective's own calls cost on this batch size, warm.
    nn::KroneckerFactors<float> factors;
    Vector<float> gradient, product;
    const Vector<float> direction = Vector<float>::Ones(x.size());
    Rng rng(1);
    p.f.select_batch(batches[1]);
    p.network.kronecker_factors(x, nn::FisherKind::True, rng, factors, &gradient);
    p.f.gauss_newton_vector(x, direction, product);
    const long long statistics = allocations_of(
        [&] { p.network.kronecker_factors(x, nn::FisherKind::True, rng, factors, &gradient); });
    const long long plain = allocations_of([&] { p.f.value_and_gradient(x, &gradient); });
    const long long ratio = allocations_of([&] {
      p.f.gauss_newton_vector(x, direction, product);
      p.f.value_and_gradient(x, nullptr);
    });

    for (std::size_t k = 1; k < 8; ++k) {
      const long long objective = (k % 3 == 0 ? statistics : plain) + ratio;
      const long long count = allocations_of([&] { kfac.step(p.f, x, batches[k]); });
      EXPECT_EQ(count, objective) << (cholesky ? "cholesky" : "eigen") << " step " << k;
    }
  }
}

// Plain steps run on the gradient pass's threads (value_and_gradient_then):
// the work handed to them is referenced, not copied, so they too allocate
// only what the objective's gradient does.
TEST(KfacAllocation, PlainStepsOnTheGradientsThreadsAllocateNothingOfTheirOwn) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  for (const Index rank : {Index{0}, Index{4}}) {
    Problem<float> p;
    const auto batches = kfac_test::batches(384, 32, 1);
    Kfac<float> kfac({.inverse_every = 1000, .statistics_every = 1000, .rank = rank});
    Vector<float> x = p.start();
    kfac.step(p.f, x, batches[0]);  // statistics, inverses, buffers
    Vector<float> gradient;
    p.f.select_batch(batches[1]);
    p.f.value_and_gradient(x, &gradient);
    const long long plain = allocations_of([&] { p.f.value_and_gradient(x, &gradient); });
    for (std::size_t k = 1; k < 6; ++k) {
      const long long count = allocations_of([&] { kfac.step(p.f, x, batches[k]); });
      EXPECT_EQ(count, plain) << "rank " << rank << ", step " << k;
    }
  }
}

}  // namespace
}  // namespace hesse::optim
