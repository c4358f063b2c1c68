// A refresh shares its work out over the threads: a damped factor per item,
// then (Cholesky variant) fixed slices of 128 columns of each dense inverse;
// the products of both variants run by fixed slices too. On a network whose
// factors span several slices (A of the first layer 301 x 301, its G
// 140 x 140), the step still equals the formula's, and the bits do not
// depend on the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using kfac_test::Problem;
using kfac_test::range;
using kfac_test::step_and_gradient;
using kfac_test::symmetric;
using kfac_test::trajectory;

// 300-140-3: the first layer's A is 301 x 301 (three slices), its G 140 x 140 (two).
constexpr Index kSamples = 256, kFeatures = 300, kHidden = 140;

// (A (x) G + lambda I) vec(V) = vec(grad) by conjugate gradients on the
// matrix form G V A + lambda V, independent of any factorisation.
Matrix<double> kronecker_solve(const Matrix<double>& A, const Matrix<double>& G, double lambda,
                               const Matrix<double>& grad) {
  const auto apply = [&](const Matrix<double>& V) -> Matrix<double> {
    return G * V * A + lambda * V;
  };
  Matrix<double> V = Matrix<double>::Zero(grad.rows(), grad.cols());
  Matrix<double> r = grad, d = r;
  double rr = r.squaredNorm();
  for (int k = 0; k < 20000 && std::sqrt(rr) > 1e-14 * grad.norm(); ++k) {
    const Matrix<double> q = apply(d);
    const double alpha = rr / (d.array() * q.array()).sum();
    V += alpha * d;
    r -= alpha * q;
    const double next = r.squaredNorm();
    d = r + (next / rr) * d;
    rr = next;
  }
  EXPECT_LE(std::sqrt(rr), 1e-12 * grad.norm()) << "CG did not converge";
  return V;
}

// The Cholesky variant's inverses come from slices of columns, and both
// variants' products run by slices: the step is still the formula's.
TEST(KfacRefresh, InversesSolvedInSlicesGiveTheDenseStep) {
  for (const KfacInverse inverse : {KfacInverse::Cholesky, KfacInverse::Eigen}) {
    const bool cholesky = inverse == KfacInverse::Cholesky;
    Problem<double> p(kSamples, {.threads = 1}, kFeatures, kHidden);
    const Vector<double> x0 = p.start(3);
    const std::vector<Index> batch = range(0, 64);
    const double lambda = 0.05;
    Kfac<double> kfac({.learning_rate = 1,
                       .damping = lambda,
                       .momentum = 0,
                       .fisher = nn::FisherKind::Empirical,
                       .inverse = inverse,
                       .kl_clip = 0});
    Vector<double> x, gradient;
    ASSERT_TRUE(step_and_gradient(p, kfac, x0, batch, x, gradient));

    const auto blocks = p.f.parameter_blocks();
    ASSERT_EQ(blocks.size(), 2U);
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const Index rows = blocks[b].rows, width = blocks[b].cols + 1;
      const Matrix<double> A = symmetric(kfac.factors().A[b]);
      const Matrix<double> G = symmetric(kfac.factors().G[b]);
      const Matrix<double> grad =
          ConstMatrixMap<double>(gradient.data() + blocks[b].weight_offset, rows, width);
      Matrix<double> expected;
      if (cholesky) {
        // V = (G + gamma/pi I)^-1 grad (A + pi gamma I)^-1, each solve by an
        // LDLT of its own.
        const double gamma = std::sqrt(lambda);
        const double pi = std::sqrt((A.trace() / double(width)) / (G.trace() / double(rows)));
        const Matrix<double> damped_a = A + pi * gamma * Matrix<double>::Identity(width, width);
        const Matrix<double> damped_g = G + gamma / pi * Matrix<double>::Identity(rows, rows);
        const Matrix<double> left = damped_g.ldlt().solve(grad);
        expected = -damped_a.ldlt().solve(Matrix<double>(left.transpose())).transpose();
      } else {
        expected = -kronecker_solve(A, G, lambda, grad);
      }
      const ConstMatrixMap<double> actual(x.data() + blocks[b].weight_offset, rows, width);
      const Matrix<double> start =
          ConstMatrixMap<double>(x0.data() + blocks[b].weight_offset, rows, width);
      EXPECT_LT((actual - start - expected).norm() / expected.norm(), 1e-9)
          << (cholesky ? "cholesky" : "eigen") << ", block " << b;
    }
  }
}

TEST(KfacRefresh, SameBitsOnOneTwoAndThreeThreads) {
  for (const KfacInverse inverse : {KfacInverse::Cholesky, KfacInverse::Eigen}) {
    // Rank 150: A (301) is low-rank and G (140) dense; rank 0: both dense.
    for (const Index rank : {Index{0}, Index{150}}) {
      if (inverse == KfacInverse::Eigen && rank > 0) continue;
      const KfacOptions options{
          .inverse_every = 2, .statistics_every = 1, .inverse = inverse, .rank = rank};
      const auto one = trajectory<float>(options, 1, kSamples, kFeatures, kHidden);
      for (const int threads : {2, 3}) {
        const auto many = trajectory<float>(options, threads, kSamples, kFeatures, kHidden);
        ASSERT_EQ(one.size(), many.size());
        for (std::size_t k = 0; k < one.size(); ++k)
          ASSERT_EQ(std::memcmp(one[k].data(), many[k].data(),
                                sizeof(float) * static_cast<std::size_t>(one[k].size())),
                    0)
              << (inverse == KfacInverse::Cholesky ? "cholesky" : "eigen") << ", rank " << rank
              << ", " << threads << " threads, step " << k;
      }
    }
  }
}

}  // namespace
}  // namespace hesse::optim
