// K-FAC's factors against their per-sample definitions (Martens & Grosse
// 2015, sec. 3), its moving averages, and one step against the dense
// solve with the Kronecker-factored Fisher block for both inverse variants.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using kfac_test::kron;
using kfac_test::Problem;
using kfac_test::range;
using kfac_test::symmetric;

struct Reference {
  std::vector<Matrix<double>> A, G;
};

// A = mean [a; 1][a; 1]^T over the samples from each Dense layer's input
// (computed here by hand for Dense-tanh-Dense) and G = mean g g^T with g the
// bias part of a sample's own gradient.
Reference per_sample_factors(Problem<double>& p, const Vector<double>& x,
                             const std::vector<Index>& samples) {
  const auto blocks = p.f.parameter_blocks();
  Reference r{{Matrix<double>::Zero(5, 5), Matrix<double>::Zero(17, 17)},
              {Matrix<double>::Zero(16, 16), Matrix<double>::Zero(3, 3)}};
  const Matrix<double> W0 = ConstMatrixMap<double>(x.data(), 16, 4);
  const Vector<double> b0 = x.segment(blocks[0].bias_offset, 16);
  const double n = static_cast<double>(samples.size());
  Vector<double> g;
  for (const Index i : samples) {
    const std::vector<Index> one{i};
    p.f.select_batch(one);
    p.f.value_and_gradient(x, &g);
    Vector<double> a0(5), a1(17);
    a0 << p.data.features.col(i), 1.0;
    a1 << (W0 * p.data.features.col(i) + b0).array().tanh().matrix(), 1.0;
    r.A[0] += a0 * a0.transpose() / n;
    r.A[1] += a1 * a1.transpose() / n;
    for (std::size_t b = 0; b < 2; ++b) {
      const Vector<double> gb = g.segment(blocks[b].bias_offset, blocks[b].rows);
      r.G[b] += gb * gb.transpose() / n;
    }
  }
  return r;
}

double relative(const Matrix<double>& a, const Matrix<double>& b) {
  return (a - b).norm() / std::max(1e-300, b.norm());
}

TEST(KfacFactors, FirstStepFactorsEqualPerSampleDefinitions) {
  Problem<double> p(30);
  const Vector<double> x0 = p.start(3);
  const std::vector<Index> batch = range(0, 30);
  const Reference r = per_sample_factors(p, x0, batch);

  Kfac<double> kfac({.statistics_every = 1, .fisher = nn::FisherKind::Empirical});
  Vector<double> x = x0;
  ASSERT_TRUE(kfac.step(p.f, x, batch).accepted);
  // The first update initialises the averages, whatever ema_decay is.
  ASSERT_EQ(kfac.factors().A.size(), 2u);
  for (std::size_t b = 0; b < 2; ++b) {
    EXPECT_LT(relative(symmetric(kfac.factors().A[b]), r.A[b]), 1e-12) << "A" << b;
    EXPECT_LT(relative(symmetric(kfac.factors().G[b]), r.G[b]), 1e-12) << "G" << b;
  }
}

TEST(KfacFactors, LaterStatisticsStepsAreExponentialMovingAverages) {
  Problem<double> p(40);
  const double decay = 0.8;
  Kfac<double> kfac(
      {.ema_decay = decay, .statistics_every = 1, .fisher = nn::FisherKind::Empirical});
  Vector<double> x = p.start(2);
  const std::vector<Index> first = range(0, 20), second = range(20, 40);
  const Reference r1 = per_sample_factors(p, x, first);
  kfac.step(p.f, x, first);
  const Reference r2 = per_sample_factors(p, x, second);
  kfac.step(p.f, x, second);
  for (std::size_t b = 0; b < 2; ++b) {
    EXPECT_LT(relative(symmetric(kfac.factors().A[b]), decay * r1.A[b] + (1 - decay) * r2.A[b]),
              1e-12);
    EXPECT_LT(relative(symmetric(kfac.factors().G[b]), decay * r1.G[b] + (1 - decay) * r2.G[b]),
              1e-12);
  }
  // statistics_every = 3: steps 1 and 2 (from 0) leave the averages alone.
  Kfac<double> sparse({.statistics_every = 3, .fisher = nn::FisherKind::Empirical});
  Vector<double> y = p.start(2);
  sparse.step(p.f, y, first);
  const auto A = sparse.factors().A;
  sparse.step(p.f, y, second);
  sparse.step(p.f, y, first);
  for (std::size_t b = 0; b < 2; ++b) EXPECT_EQ(sparse.factors().A[b], A[b]);
}

// statistics_fraction: A and G from the first round(fraction |B|) samples,
// the gradient (and so the step's direction before preconditioning) from
// all of B; the selection is the whole batch again afterwards.
TEST(KfacFactors, StatisticsFractionTakesTheFactorsFromTheBatchHead) {
  Problem<double> p(40);
  const Vector<double> x0 = p.start(4);
  const std::vector<Index> batch = range(0, 40);
  const std::vector<Index> head = range(0, 10);  // round(0.25 * 40)
  const Reference r = per_sample_factors(p, x0, head);
  Vector<double> full_gradient;
  p.f.select_batch(batch);
  p.f.value_and_gradient(x0, &full_gradient);

  // lr = 1, no momentum, no KL bound: x moves by -V.
  const KfacOptions options{.learning_rate = 1,
                            .momentum = 0,
                            .statistics_every = 1,
                            .statistics_fraction = 0.25,
                            .fisher = nn::FisherKind::Empirical,
                            .kl_clip = 0};
  Kfac<double> kfac(options);
  Vector<double> x = x0;
  const StepResult result = kfac.step(p.f, x, batch);
  ASSERT_TRUE(result.accepted) << result.event;
  for (std::size_t b = 0; b < 2; ++b) {
    EXPECT_LT(relative(symmetric(kfac.factors().A[b]), r.A[b]), 1e-12) << "A" << b;
    EXPECT_LT(relative(symmetric(kfac.factors().G[b]), r.G[b]), 1e-12) << "G" << b;
  }
  // The step: the head's factors (damped as in M&G sec. 6.3, default
  // damping lambda) applied to the whole batch's gradient.
  EXPECT_NEAR(result.gradient_norm, full_gradient.norm(), 1e-12 * full_gradient.norm());
  const double gamma = std::sqrt(KfacOptions{}.damping);
  const auto blocks = p.f.parameter_blocks();
  for (std::size_t b = 0; b < 2; ++b) {
    const Index rows = blocks[b].rows, width = blocks[b].cols + 1, n = rows * width;
    const double pi = std::sqrt((r.A[b].trace() / double(width)) / (r.G[b].trace() / double(rows)));
    const Matrix<double> F = kron(r.A[b] + pi * gamma * Matrix<double>::Identity(width, width),
                                  r.G[b] + gamma / pi * Matrix<double>::Identity(rows, rows));
    const Vector<double> expected =
        -F.ldlt().solve(full_gradient.segment(blocks[b].weight_offset, n));
    EXPECT_LT(relative((x - x0).segment(blocks[b].weight_offset, n), expected), 1e-9)
        << "block " << b;
  }
  // The next evaluation is on the whole batch again.
  Vector<double> g;
  p.f.value_and_gradient(x0, &g);
  EXPECT_EQ(g, full_gradient);

  // fraction = 1 is the default, bit for bit.
  KfacOptions one = options;
  one.statistics_fraction = 1;
  Kfac<double> a(one), c({.learning_rate = 1,
                          .momentum = 0,
                          .statistics_every = 1,
                          .fisher = nn::FisherKind::Empirical,
                          .kl_clip = 0});
  Vector<double> xa = x0, xc = x0;
  a.step(p.f, xa, batch);
  c.step(p.f, xc, batch);
  EXPECT_EQ(xa, xc);
}

// One step with lr = 1 and neither momentum nor the KL bound moves x by
// -(damped A (x) G)^-1 grad on every Dense block, solved densely here.
TEST(KfacFactors, StepEqualsDenseKroneckerSolve) {
  for (const KfacInverse inverse : {KfacInverse::Cholesky, KfacInverse::Eigen}) {
    Problem<double> p(30);
    const Vector<double> x0 = p.start(4);
    const std::vector<Index> batch = range(0, 30);
    const Reference r = per_sample_factors(p, x0, batch);
    Vector<double> gradient;
    p.f.select_batch(batch);
    p.f.value_and_gradient(x0, &gradient);
    const double lambda = 0.05, eta = 0.01;
    gradient += eta * x0;

    Kfac<double> kfac({.learning_rate = 1,
                       .damping = lambda,
                       .momentum = 0,
                       .fisher = nn::FisherKind::Empirical,
                       .inverse = inverse,
                       .kl_clip = 0,
                       .weight_decay = eta});
    Vector<double> x = x0;
    ASSERT_TRUE(kfac.step(p.f, x, batch).accepted);

    const auto blocks = p.f.parameter_blocks();
    for (std::size_t b = 0; b < 2; ++b) {
      const Index rows = blocks[b].rows, width = blocks[b].cols + 1, n = rows * width;
      const Matrix<double>& A = r.A[b];
      const Matrix<double>& G = r.G[b];
      Matrix<double> F;
      if (inverse == KfacInverse::Cholesky) {
        // Factored Tikhonov damping, M&G sec. 6.3.
        const double gamma = std::sqrt(lambda + eta);
        const double pi = std::sqrt((A.trace() / double(width)) / (G.trace() / double(rows)));
        F = kron(A + pi * gamma * Matrix<double>::Identity(width, width),
                 G + gamma / pi * Matrix<double>::Identity(rows, rows));
      } else {
        F = kron(A, G) + (lambda + eta) * Matrix<double>::Identity(n, n);
      }
      const Vector<double> expected = -F.ldlt().solve(gradient.segment(blocks[b].weight_offset, n));
      const Vector<double> actual = (x - x0).segment(blocks[b].weight_offset, n);
      EXPECT_LT(relative(actual, expected), 1e-9)
          << (inverse == KfacInverse::Cholesky ? "cholesky" : "eigen") << " block " << b;
    }
  }
}

// With the KL bound active the step is the unconstrained one times
// nu = sqrt(kl_clip / (lr^2 V^T grad)); momentum adds the previous step.
TEST(KfacFactors, KlBoundAndMomentumScaleThePreconditionedStep) {
  Problem<double> p(30);
  const Vector<double> x0 = p.start(4);
  const std::vector<Index> batch = range(0, 30);
  const KfacOptions free{
      .learning_rate = 0.5, .momentum = 0, .fisher = nn::FisherKind::Empirical, .kl_clip = 0};
  Kfac<double> unbounded(free);
  Vector<double> x_free = x0;
  unbounded.step(p.f, x_free, batch);
  const Vector<double> v = (x0 - x_free) / 0.5;  // V
  Vector<double> gradient;
  p.f.select_batch(batch);
  p.f.value_and_gradient(x0, &gradient);
  const double predicted = 0.25 * v.dot(gradient);

  KfacOptions bounded = free;
  bounded.kl_clip = predicted / 4;  // nu = 1/2
  Kfac<double> clipped(bounded);
  Vector<double> x = x0;
  clipped.step(p.f, x, batch);
  EXPECT_LT(relative(x - x0, -0.25 * v), 1e-12);

  // Step 2 reuses step 1's factors and inverses, so without momentum the
  // two displacements are -lr V_1 and -lr V_2; with it the second is
  // -lr (momentum V_1 + V_2) (torch.optim.SGD's buffer).
  KfacOptions fixed = free;
  fixed.statistics_every = 100;
  fixed.inverse_every = 100;
  Kfac<double> plain(fixed);
  Vector<double> y = x0;
  plain.step(p.f, y, batch);
  const Vector<double> first_step = y - x0;
  const Vector<double> y1 = y;
  plain.step(p.f, y, batch);
  const Vector<double> second_step = y - y1;

  fixed.momentum = 0.5;
  Kfac<double> heavy(fixed);
  Vector<double> z = x0;
  heavy.step(p.f, z, batch);
  EXPECT_EQ(z, y1);
  heavy.step(p.f, z, batch);
  EXPECT_LT(relative(z - y1, 0.5 * first_step + second_step), 1e-12);
}

}  // namespace
}  // namespace hesse::optim
