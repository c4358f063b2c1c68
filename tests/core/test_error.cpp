#include <gtest/gtest.h>

#include "hesse/core/error.hpp"

TEST(Error, RequireThrowsInvalidArgumentWithMessage) {
  try {
    HESSE_REQUIRE(1 + 1 == 3, "arithmetic: 1 + 1 must be 3");
    FAIL() << "no exception";
  } catch (const hesse::InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "arithmetic: 1 + 1 must be 3");
  }
}

TEST(Error, AssertAbortsWithFileAndLine) {
  EXPECT_DEATH(HESSE_ASSERT(false, "broken invariant"), "test_error.cpp:[0-9]+: broken invariant");
}
