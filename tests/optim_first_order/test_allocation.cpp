// After the first step, a step allocates nothing: the buffers are members
// and every update is one Eigen expression without temporaries.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "../common/allocation_counter.hpp"
#include "first_order_test_util.hpp"

namespace hesse::optim {
namespace {

class Allocation : public ::testing::TestWithParam<test_util::Config> {};

// The counter behind every allocation test of hesse (tests/common) sees a
// heap allocation, so a count of zero means something.
TEST(AllocationCounter, CountsHeapAllocations) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  std::vector<double>* kept = nullptr;
  const long long counted =
      hesse::testing::allocations_of([&] { kept = new std::vector<double>(100); });
  delete kept;
  EXPECT_GE(counted, 1);
  EXPECT_EQ(hesse::testing::allocations_of([] {}), 0);
}

TEST_P(Allocation, StepsAfterTheFirstAllocateNothing) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  auto optimizer = test_util::make<float>(GetParam());
  test_util::Quadratic<float> f(Vector<float>::LinSpaced(1000, 0.5f, 2.0f));
  Vector<float> x = Vector<float>::Ones(1000);
  const std::vector<Index> batch{0};
  optimizer->step(f, x, batch);
  EXPECT_EQ(hesse::testing::allocations_of([&] {
              for (int k = 0; k < 5; ++k) optimizer->step(f, x, batch);
            }),
            0);
  EXPECT_EQ(optimizer->step_count(), 6);
}

INSTANTIATE_TEST_SUITE_P(FirstOrder, Allocation, ::testing::ValuesIn(test_util::configs()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace hesse::optim
