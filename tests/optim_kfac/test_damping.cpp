// The Levenberg-Marquardt rule of M&G sec. 6.5: damping falls by omega =
// (19/20)^damping_every after good steps (reduction ratio > 3/4) and rises
// by 1/omega after bad ones (ratio < 1/4); failures raise it by
// failure_damping_factor.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using kfac_test::Problem;

KfacOptions adaptive(double lr, Index damping_every) {
  return {.learning_rate = lr,
          .damping = 1e-2,
          .momentum = 0,
          .inverse_every = 1,
          .statistics_every = 1,
          .adaptive_damping = true,
          .damping_every = damping_every,
          .kl_clip = 0};
}

TEST(KfacDamping, FallsAfterGoodSteps) {
  // A tiny step: the quadratic model predicts the decrease almost exactly.
  Problem<double> p;
  Kfac<double> kfac(adaptive(1e-4, 1));
  Vector<double> x = p.start();
  const auto batches = kfac_test::batches(384, 32, 1);
  for (int k = 0; k < 5; ++k) {
    const StepResult r = kfac.step(p.f, x, batches[static_cast<std::size_t>(k)]);
    ASSERT_TRUE(r.accepted) << r.event;
    EXPECT_EQ(r.curvature_products, 1);
    EXPECT_NEAR(kfac.last_reduction_ratio(), 1.0, 0.05);
  }
  EXPECT_NEAR(kfac.damping(), 1e-2 * std::pow(0.95, 5), 1e-15);
}

TEST(KfacDamping, RisesAfterBadSteps) {
  // Thirty times the step the model likes, from the same point each time:
  // the model predicts an increase (rho counts as -inf) or a decrease far
  // larger than the one that happens.
  Problem<double> p;
  Kfac<double> kfac(adaptive(30, 1));
  const Vector<double> x0 = p.start();
  const auto batches = kfac_test::batches(384, 32, 1);
  for (int k = 0; k < 5; ++k) {
    Vector<double> x = x0;
    const StepResult r = kfac.step(p.f, x, batches[0]);
    ASSERT_TRUE(r.accepted) << r.event;
    EXPECT_LT(kfac.last_reduction_ratio(), 0.25);
  }
  EXPECT_NEAR(kfac.damping(), 1e-2 / std::pow(0.95, 5), 1e-15);
}

TEST(KfacDamping, AdjustsOnlyEveryDampingEverySteps) {
  // damping_every = 3: adjustments at steps 0, 3 and 6, each by (19/20)^3.
  Problem<double> p;
  Kfac<double> kfac(adaptive(1e-4, 3));
  Vector<double> x = p.start();
  const auto batches = kfac_test::batches(384, 32, 1);
  for (int k = 0; k < 7; ++k) {
    const StepResult r = kfac.step(p.f, x, batches[static_cast<std::size_t>(k)]);
    EXPECT_EQ(r.curvature_products, k % 3 == 0 ? 1 : 0);
  }
  EXPECT_NEAR(kfac.damping(), 1e-2 * std::pow(0.95, 9), 1e-15);
}

TEST(KfacDamping, StaysWithinItsBounds) {
  Problem<double> p;
  KfacOptions o = adaptive(30, 1);
  o.max_damping = 1.1e-2;
  Kfac<double> kfac(o);
  Vector<double> x = p.start();
  const auto batches = kfac_test::batches(384, 32, 1);
  for (int k = 0; k < 4; ++k) kfac.step(p.f, x, batches[static_cast<std::size_t>(k)]);
  EXPECT_EQ(kfac.damping(), 1.1e-2);
  kfac.on_numerical_failure();
  EXPECT_EQ(kfac.damping(), 1.1e-2);
}

TEST(KfacDamping, NumericalFailureRaisesIt) {
  Kfac<float> kfac({.damping = 1e-3, .failure_damping_factor = 4});
  kfac.on_numerical_failure();
  EXPECT_DOUBLE_EQ(kfac.damping(), 4e-3);
  kfac.reset();
  EXPECT_EQ(kfac.damping(), 1e-3);
}

}  // namespace
}  // namespace hesse::optim
