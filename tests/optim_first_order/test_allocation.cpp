// After the first step, a step allocates nothing: the buffers are members
// and every update is one Eigen expression without temporaries.
#include <gtest/gtest.h>

#include <cstddef>

#include "first_order_test_util.hpp"

namespace {
long long g_allocations = 0;
bool g_counting = false;
}  // namespace

// Counts every heap allocation (operator new and Eigen's aligned allocations
// both end in malloc) by interposing glibc's malloc. AddressSanitizer owns
// malloc itself, so under it the interposition is left out and the test skips.
#if defined(__SANITIZE_ADDRESS__)
#define HESSE_COUNTS_ALLOCATIONS 0
#else
#define HESSE_COUNTS_ALLOCATIONS 1
extern "C" void* __libc_malloc(std::size_t size);
extern "C" void* malloc(std::size_t size) {
  if (g_counting) ++g_allocations;
  return __libc_malloc(size);
}
#endif

namespace hesse::optim {
namespace {

class Allocation : public ::testing::TestWithParam<test_util::Config> {};

TEST_P(Allocation, StepsAfterTheFirstAllocateNothing) {
  if (!HESSE_COUNTS_ALLOCATIONS) GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  auto optimizer = test_util::make<float>(GetParam());
  test_util::Quadratic<float> f(Vector<float>::LinSpaced(1000, 0.5f, 2.0f));
  Vector<float> x = Vector<float>::Ones(1000);
  const std::vector<Index> batch{0};
  optimizer->step(f, x, batch);
  g_allocations = 0;
  g_counting = true;
  for (int k = 0; k < 5; ++k) optimizer->step(f, x, batch);
  g_counting = false;
  EXPECT_EQ(g_allocations, 0);
  EXPECT_EQ(optimizer->step_count(), 6);
}

INSTANTIATE_TEST_SUITE_P(FirstOrder, Allocation, ::testing::ValuesIn(test_util::configs()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace hesse::optim
