// linalg::top_eigenpairs against a matrix of known spectrum: Ritz values and
// vectors, the rest's mean from the trace, warm starts, the lower triangle
// alone, and its failures.
#include <gtest/gtest.h>

#include <limits>

#include "../common/errors.hpp"
#include "../common/spectrum.hpp"
#include "hesse/linalg/dense.hpp"

namespace hesse::linalg {
namespace {

using testing::with_spectrum;

TEST(TopEigenpairs, FindsTheTopOfAKnownSpectrum) {
  Vector<double> spectrum(8);
  spectrum << 10, 8, 6, 1.5, 1, 0.5, 0.5, 0.5;
  Matrix<double> V;
  const Matrix<double> F = with_spectrum(spectrum, 3, &V);
  Matrix<double> basis(8, 3);
  Vector<double> values;
  double rest_mean = -1;
  ASSERT_TRUE(top_eigenpairs<double>(F, basis, false, 10, 7, values, rest_mean));
  // Ascending Ritz values; the rest's mean is (1.5 + 1 + 3 x 0.5) / 5.
  ASSERT_EQ(values.size(), 3);
  EXPECT_NEAR(values[0], 6, 1e-10);
  EXPECT_NEAR(values[1], 8, 1e-10);
  EXPECT_NEAR(values[2], 10, 1e-10);
  EXPECT_NEAR(rest_mean, 0.8, 1e-10);
  EXPECT_LT((basis.transpose() * basis - Matrix<double>::Identity(3, 3)).norm(), 1e-12);
  // Each Ritz vector is its eigenvector (up to sign): F q = lambda q.
  for (Index j = 0; j < 3; ++j)
    EXPECT_LT((F * basis.col(j) - values[j] * basis.col(j)).norm(), 1e-8) << j;
  EXPECT_NEAR(std::abs(basis.col(2).dot(V.col(0))), 1, 1e-10);
}

TEST(TopEigenpairs, ReadsTheLowerTriangleOnly) {
  Vector<double> spectrum(6);
  spectrum << 5, 4, 1, 1, 1, 1;
  const Matrix<double> F = with_spectrum(spectrum, 5);
  Matrix<double> lower = F.triangularView<Eigen::Lower>();
  lower.triangularView<Eigen::StrictlyUpper>().setConstant(
      std::numeric_limits<double>::quiet_NaN());
  Matrix<double> a(6, 2), b(6, 2);
  Vector<double> va, vb;
  double ma = 0, mb = 0;
  ASSERT_TRUE(top_eigenpairs<double>(F, a, false, 4, 1, va, ma));
  ASSERT_TRUE(top_eigenpairs<double>(lower, b, false, 4, 1, vb, mb));
  EXPECT_EQ(a, b);
  EXPECT_EQ(va, vb);
  EXPECT_EQ(ma, mb);
}

TEST(TopEigenpairs, WarmStartNeedsFewIterations) {
  // A slowly changing matrix, as a moving average is: one iteration from the
  // previous basis is as good as many from a Gaussian start.
  Vector<double> spectrum(40);
  for (Index i = 0; i < 40; ++i) spectrum[i] = 1.0 / double(1 + i);
  const Matrix<double> F = with_spectrum(spectrum, 9);
  Matrix<double> basis(40, 4);
  Vector<double> values;
  double rest_mean = 0;
  ASSERT_TRUE(top_eigenpairs<double>(F, basis, false, 30, 2, values, rest_mean));
  const Matrix<double> G = 0.99 * F + 0.01 * with_spectrum(spectrum, 10);
  Matrix<double> warm = basis, cold(40, 4);
  Vector<double> warm_values, cold_values;
  ASSERT_TRUE(top_eigenpairs<double>(G, warm, true, 1, 2, warm_values, rest_mean));
  ASSERT_TRUE(top_eigenpairs<double>(G, cold, false, 1, 2, cold_values, rest_mean));
  Eigen::SelfAdjointEigenSolver<Matrix<double>> exact(G);
  const Vector<double> top = exact.eigenvalues().tail(4);
  EXPECT_LT((warm_values - top).norm(), 1e-3 * top.norm());
  EXPECT_GT((cold_values - top).norm(), (warm_values - top).norm());
}

TEST(TopEigenpairs, FloatAndFailures) {
  Vector<double> spectrum(5);
  spectrum << 3, 2, 0.1, 0.1, 0.1;
  const Matrix<float> F = with_spectrum(spectrum, 4).cast<float>();
  Matrix<float> basis(5, 2);
  Vector<double> values;
  double rest_mean = 0;
  ASSERT_TRUE(top_eigenpairs<float>(F, basis, false, 10, 3, values, rest_mean));
  EXPECT_NEAR(values[1], 3, 1e-5);
  EXPECT_NEAR(values[0], 2, 1e-5);
  EXPECT_NEAR(rest_mean, 0.1, 1e-5);

  Matrix<float> bad = F;
  bad(3, 1) = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(top_eigenpairs<float>(bad, basis, false, 3, 3, values, rest_mean));

  Matrix<float> wide(5, 5);
  EXPECT_NE(testing::invalid_argument_message([&] {
              top_eigenpairs<float>(F, wide, false, 3, 3, values, rest_mean);
            }).find("needs a square matrix and 0 < r < n"),
            std::string::npos);
  Matrix<float> tall(4, 2);
  EXPECT_NE(testing::invalid_argument_message([&] {
              top_eigenpairs<float>(F, tall, false, 3, 3, values, rest_mean);
            }).find("top_eigenpairs: a 5 x 5 matrix with a basis of 4 x 2"),
            std::string::npos);
}

}  // namespace
}  // namespace hesse::linalg
