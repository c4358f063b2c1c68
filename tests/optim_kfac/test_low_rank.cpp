// KfacOptions::rank: the low-rank damped inverse of a factor against a full
// eigendecomposition, and K-FAC's step with low-rank factors against the
// dense Kronecker solve with the same truncated inverses; the options, the
// thread count (same bits on one and two threads) and the state.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../common/spectrum.hpp"
#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using kfac_test::kron;
using kfac_test::Problem;
using kfac_test::range;
using kfac_test::step_and_gradient;
using kfac_test::symmetric;
using kfac_test::trajectory;
using testing::with_spectrum;

Matrix<double> applied(const KfacLowRankInverse<double>& low) {
  const Index n = low.basis.rows();
  return low.rest * Matrix<double>::Identity(n, n) +
         low.basis * low.scale.asDiagonal() * low.basis.transpose();
}

// The truncated inverse computed from a full eigendecomposition: the top r
// eigenpairs exactly, the others by their mean.
Matrix<double> truncated_inverse(const Matrix<double>& F, Index r, double shift) {
  const Index n = F.rows();
  Eigen::SelfAdjointEigenSolver<Matrix<double>> eigen(F);
  const Vector<double> d = eigen.eigenvalues().cwiseMax(0.0);  // ascending
  const Matrix<double> Q = eigen.eigenvectors().rightCols(r);
  const double mean = std::max(0.0, (F.trace() - d.tail(r).sum()) / double(n - r));
  Matrix<double> out = (1 / (mean + shift)) * Matrix<double>::Identity(n, n);
  for (Index i = 0; i < r; ++i)
    out += (1 / (d[n - r + i] + shift) - 1 / (mean + shift)) * Q.col(i) * Q.col(i).transpose();
  return out;
}

double relative(const Matrix<double>& a, const Matrix<double>& b) {
  return (a - b).norm() / std::max(1e-300, b.norm());
}

TEST(KfacLowRank, ExactWhenTheOtherEigenvaluesAreEqual) {
  Vector<double> values = Vector<double>::Constant(20, 0.3);
  values.head(3) << 10, 5, 2;
  const Matrix<double> F = with_spectrum(values, 3);
  const double shift = 0.1;
  KfacLowRankInverse<double> low;
  low.resize(20, 3);
  ASSERT_TRUE(low.compute(F, shift, 10, 7));
  const Matrix<double> exact = (F + shift * Matrix<double>::Identity(20, 20)).inverse();
  EXPECT_LT(relative(applied(low), exact), 1e-10);
  EXPECT_NEAR(static_cast<double>(low.rest), 1 / (0.3 + shift), 1e-12);
}

TEST(KfacLowRank, MatchesTheTruncatedEigendecompositionAndKeepsTheTrace) {
  // A decaying spectrum with distinct eigenvalues: no exact answer, but the
  // top r eigenpairs and the mean of the rest are determined.
  Vector<double> values(40);
  for (Index i = 0; i < 40; ++i) values[i] = std::pow(0.8, double(i));
  const Matrix<double> F = with_spectrum(values, 5);
  const double shift = 1e-3;
  KfacLowRankInverse<double> low;
  low.resize(40, 6);
  ASSERT_TRUE(low.compute(F, shift, 60, 1));
  EXPECT_LT(relative(applied(low), truncated_inverse(F, 6, shift)), 1e-8);
  // The approximated factor (the inverse's inverse, less the shift) keeps tr(F).
  const Matrix<double> approximated =
      applied(low).inverse() - shift * Matrix<double>::Identity(40, 40);
  EXPECT_NEAR(approximated.trace(), F.trace(), 1e-9 * F.trace());
  EXPECT_LT((low.basis.transpose() * low.basis - Matrix<double>::Identity(6, 6)).norm(), 1e-12);
}

TEST(KfacLowRank, WarmStartKeepsAConvergedBasis) {
  Vector<double> values(30);
  for (Index i = 0; i < 30; ++i) values[i] = 1.0 / double(1 + i * i);
  const Matrix<double> F = with_spectrum(values, 9);
  KfacLowRankInverse<double> low;
  low.resize(30, 4);
  ASSERT_TRUE(low.compute(F, 0.01, 40, 2));
  const Matrix<double> first = applied(low);
  // One more iteration from the converged basis changes nothing that matters.
  ASSERT_TRUE(low.have_basis);
  ASSERT_TRUE(low.compute(F, 0.01, 1, 2));
  EXPECT_LT(relative(applied(low), first), 1e-10);
}

TEST(KfacLowRank, NonFiniteFactorFailsAndForgetsTheBasis) {
  Matrix<double> F = with_spectrum(Vector<double>::LinSpaced(10, 1, 10), 4);
  F(3, 3) = std::numeric_limits<double>::quiet_NaN();
  KfacLowRankInverse<double> low;
  low.resize(10, 2);
  EXPECT_FALSE(low.compute(F, 0.1, 2, 1));
  EXPECT_FALSE(low.have_basis);
}

TEST(KfacLowRank, RankMustBeBelowTheDimension) {
  KfacLowRankInverse<double> low;
  EXPECT_THROW(low.resize(10, 10), InvalidArgument);
  EXPECT_THROW(low.resize(10, 0), InvalidArgument);
}

// With rank 4 on the 4-16-3 network, A0 (5 x 5), G0 (16 x 16) and A1
// (17 x 17) are low-rank and G1 (3 x 3) exact. With enough subspace
// iterations the basis is the top eigenvectors whatever its seed, so the
// step equals the dense solve with kron of the truncated damped inverses.
TEST(KfacLowRank, StepEqualsTheDenseSolveWithTruncatedInverses) {
  Problem<double> p(30);
  const Vector<double> x0 = p.start(4);
  const std::vector<Index> batch = range(0, 30);
  const double lambda = 0.05;
  Kfac<double> kfac({.learning_rate = 1,
                     .damping = lambda,
                     .momentum = 0,
                     .fisher = nn::FisherKind::Empirical,
                     .rank = 4,
                     .subspace_iterations = 100,
                     .kl_clip = 0});
  Vector<double> x, gradient;
  ASSERT_TRUE(step_and_gradient(p, kfac, x0, batch, x, gradient));

  const auto blocks = p.f.parameter_blocks();
  for (std::size_t b = 0; b < 2; ++b) {
    const Index rows = blocks[b].rows, width = blocks[b].cols + 1, n = rows * width;
    const Matrix<double> A = symmetric(kfac.factors().A[b]);
    const Matrix<double> G = symmetric(kfac.factors().G[b]);
    const double gamma = std::sqrt(lambda);
    const double pi = std::sqrt((A.trace() / double(width)) / (G.trace() / double(rows)));
    auto inverse = [](const Matrix<double>& F, double shift) -> Matrix<double> {
      if (F.rows() > 4) return truncated_inverse(F, 4, shift);
      return (F + shift * Matrix<double>::Identity(F.rows(), F.cols())).inverse();
    };
    const Vector<double> expected = -kron(inverse(A, pi * gamma), inverse(G, gamma / pi)) *
                                    gradient.segment(blocks[b].weight_offset, n);
    const Vector<double> actual = (x - x0).segment(blocks[b].weight_offset, n);
    EXPECT_LT(relative(actual, expected), 1e-8) << "block " << b;
  }
}

// The inverse of factor "A" or "G" of block b that K-FAC keeps in its state:
// rest I + Q diag(scale) Q^T when low-rank, the dense one otherwise.
Matrix<double> kept_inverse(const StateDict& state, const std::string& factor, std::size_t b,
                            Index n) {
  const std::string name = "kfac." + factor + "_";
  const std::string block = "." + std::to_string(b);
  if (!state.has_array(name + "basis" + block)) {
    Matrix<double> inverse(n, n);
    state.get(name + "inverse" + block, inverse);
    return inverse;
  }
  const auto r = static_cast<Index>(state.array(name + "scale" + block).size());
  KfacLowRankInverse<double> low;
  low.resize(n, r);
  state.get(name + "basis" + block, low.basis);
  state.get(name + "scale" + block, low.scale);
  low.rest = state.scalar(name + "rest" + block);
  return applied(low);
}

// The preconditioning goes by slices of 128 columns. On a 300-20-3 network
// A0 (301 x 301) spans three, whose shares of grad Q_A make up every
// slice's product: at rank 8 G0 (20 x 20) and A1 (21 x 21) are low-rank
// too; at rank 24 G0^-1 and A1^-1 are dense. On a 140-300-3 network at
// rank 150 A0^-1 (141 x 141, two slices) is dense and G0 (300 x 300)
// low-rank. The step is -G^-1 grad A^-1 with the inverses K-FAC keeps
// (subspace iteration need not have converged).
TEST(KfacLowRank, StepAppliesTheInversesItKeeps) {
  constexpr Index kSamples = 60;
  struct Case {
    Index features, hidden, rank;
  };
  for (const Case c : {Case{300, 20, 8}, Case{300, 20, 24}, Case{140, 300, 150}}) {
    SCOPED_TRACE(std::to_string(c.features) + "-" + std::to_string(c.hidden) + "-3, rank " +
                 std::to_string(c.rank));
    Problem<double> p(kSamples, {.threads = 1}, c.features, c.hidden);
    const Vector<double> x0 = p.start(4);
    Kfac<double> kfac({.learning_rate = 1, .momentum = 0, .rank = c.rank, .kl_clip = 0});
    Vector<double> x, gradient;
    ASSERT_TRUE(step_and_gradient(p, kfac, x0, range(0, kSamples), x, gradient));
    StateDict state;
    kfac.save_state(state);
    const auto blocks = p.f.parameter_blocks();
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const Index rows = blocks[b].rows, width = blocks[b].cols + 1;
      const Eigen::Map<const Matrix<double>> grad(gradient.data() + blocks[b].weight_offset, rows,
                                                  width);
      // kron(A^-1, G^-1) vec(grad) = vec(G^-1 grad A^-1), both symmetric.
      const Matrix<double> expected =
          -kept_inverse(state, "G", b, rows) * grad * kept_inverse(state, "A", b, width);
      const Vector<double> step = x - x0;
      const Eigen::Map<const Matrix<double>> actual(step.data() + blocks[b].weight_offset, rows,
                                                    width);
      EXPECT_LT(relative(actual, expected), 1e-12) << "block " << b;
    }
  }
}

// The preconditioning runs in fixed slices over the threads: the same bits
// on one thread as on two, exact and low-rank.
TEST(KfacLowRank, SameBitsOnOneAndTwoThreads) {
  for (const Index rank : {Index{0}, Index{4}}) {
    const KfacOptions options{.inverse_every = 3, .statistics_every = 2, .rank = rank};
    const auto one = trajectory<float>(options, 1);
    const auto two = trajectory<float>(options, 2);
    ASSERT_EQ(one.size(), two.size());
    for (std::size_t k = 0; k < one.size(); ++k)
      ASSERT_EQ(
          std::memcmp(one[k].data(), two[k].data(), sizeof(float) * std::size_t(one[k].size())), 0)
          << "rank " << rank << ", step " << k;
  }
}

// Factors no larger than the rank are inverted exactly: rank 17 on this
// network is K-FAC without the option, bit for bit.
TEST(KfacLowRank, RankAtLeastEveryDimensionIsExactKfac) {
  const auto exact = trajectory<double>({.inverse_every = 3, .statistics_every = 2}, 1);
  const auto ranked =
      trajectory<double>({.inverse_every = 3, .statistics_every = 2, .rank = 17}, 1);
  for (std::size_t k = 0; k < exact.size(); ++k) ASSERT_EQ(exact[k], ranked[k]) << "step " << k;
}

TEST(KfacLowRank, TrainsLikeExactKfac) {
  // The KfacTraining setting (loss 0.865 at the start; exact K-FAC 0.120).
  Problem<float> p;
  const auto batches = kfac_test::batches(384, 32, 10);
  auto train = [&](Index rank) {
    Kfac<float> kfac({.damping = 1e-3, .inverse_every = 20, .rank = rank});
    Vector<float> x = p.start();
    for (const auto& batch : batches) EXPECT_TRUE(kfac.step(p.f, x, batch).accepted);
    return p.full_loss(x);
  };
  const double exact = train(0);
  const double low = train(4);
  EXPECT_LT(exact, 0.13);
  EXPECT_LT(low, 0.2);
}

}  // namespace
}  // namespace hesse::optim
