// K-FAC trains the shared blobs problem (4-16-3 tanh network, 384 samples,
// batches of 32 from a seeded sampler) and beats plain SGD over the same
// number of steps, for every learning rate SGD is given.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using kfac_test::Problem;

template <class T>
double train_kfac(Problem<T>& p, const KfacOptions& options,
                  const std::vector<std::vector<Index>>& batches) {
  Kfac<T> kfac(options);
  Vector<T> x = p.start();
  for (const auto& batch : batches) EXPECT_TRUE(kfac.step(p.f, x, batch).accepted);
  return p.full_loss(x);
}

template <class T>
double train_sgd(Problem<T>& p, double lr, const std::vector<std::vector<Index>>& batches) {
  Vector<T> x = p.start(), g;
  for (const auto& batch : batches) {
    p.f.select_batch(batch);
    p.f.value_and_gradient(x, &g);
    x -= static_cast<T>(lr) * g;
  }
  return p.full_loss(x);
}

// Ten epochs (120 steps) from the same start and the same batches. The set's
// loss starts at 0.865; full-batch gradient descent reaches 0.019 after
// 3000 steps. SGD gets the best of seven learning rates, K-FAC one setting:
// KFAC-Pytorch's damping 1e-3 and M&G's inverse refresh every 20 steps (this
// small, noisy problem rewards long steps, and 120 steps are few for
// hesse's defaults, damping 0.1 and refreshes every 100, made for
// MNIST-sized runs).
// Measured (float, seeds as here): K-FAC 0.120, its eigen variant with
// damping 1e-2 0.122, the defaults 0.182; plain SGD 0.261, 0.197, 0.182,
// 0.177, 0.165, 0.156, 0.313 for lr 0.03, 0.1, 0.3, 1, 2, 3, 5 (and 0.158
// with momentum 0.9 and lr 0.1).
TEST(KfacTraining, ReachesALowerLossThanSgdInTheSameSteps) {
  Problem<float> p;
  const auto batches = kfac_test::batches(384, 32, 10);
  ASSERT_EQ(batches.size(), 120u);
  EXPECT_NEAR(p.full_loss(p.start()), 0.865, 1e-3);

  const double kfac = train_kfac(p, {.damping = 1e-3, .inverse_every = 20}, batches);
  EXPECT_LT(kfac, 0.13);
  const double eigen = train_kfac(
      p, {.damping = 1e-2, .inverse_every = 20, .inverse = KfacInverse::Eigen}, batches);
  EXPECT_LT(eigen, 0.14);
  const double defaults = train_kfac(p, {}, batches);
  EXPECT_LT(defaults, 0.2);

  double best_sgd = 1e300;
  for (const double lr : {0.03, 0.1, 0.3, 1.0, 2.0, 3.0, 5.0})
    best_sgd = std::min(best_sgd, train_sgd(p, lr, batches));
  EXPECT_GT(best_sgd, 0.15);
  EXPECT_LT(kfac, best_sgd - 0.02);
}

}  // namespace
}  // namespace hesse::optim
