#include "hesse/models/linear_least_squares.hpp"

#include <gtest/gtest.h>

#include <Eigen/Cholesky>

#include "../common/errors.hpp"
#include "hesse/core/error.hpp"
#include "model_test_data.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;
using hesse::models::LinearLeastSquares;
using hesse::testing::invalid_argument_message;

/// [X^T, 1] (or X^T): the Jacobian of the predictions by theta.
Matrix<double> jacobian(const hesse::data::Dataset<double>& data, bool intercept) {
  const Matrix<double> x = data.is_sparse() ? Matrix<double>(data.sparse_features) : data.features;
  Matrix<double> j(x.cols(), x.rows() + (intercept ? 1 : 0));
  j.leftCols(x.rows()) = x.transpose();
  if (intercept) j.col(x.rows()).setOnes();
  return j;
}

TEST(LinearLeastSquares, GradientVanishesAtTheNormalEquationsSolution) {
  for (const bool intercept : {false, true}) {
    for (const bool sparse : {false, true}) {
      const auto data = hesse::test::make_regression(60, 6, sparse, 21);
      const double l2 = 0.5;
      LinearLeastSquares<double> f(data, {.l2 = l2, .fit_intercept = intercept});
      // (J^T J + l2 P) theta = J^T y with P = diag(1, .., 1, 0).
      const Matrix<double> j = jacobian(data, intercept);
      Matrix<double> normal = j.transpose() * j;
      normal.diagonal().head(6).array() += l2;
      const Vector<double> y = data.targets.row(0).transpose();
      const Vector<double> solution = normal.ldlt().solve(j.transpose() * y);
      Vector<double> g;
      f.value_and_gradient(solution, &g);
      EXPECT_LE(g.norm(), 1e-10 * (j.transpose() * y).norm()) << "intercept " << intercept << " sparse " << sparse;
      // The residual at the solution gives the optimal value directly.
      const double expected = 0.5 * (j * solution - y).squaredNorm() +
                              0.5 * l2 * solution.head(6).squaredNorm();
      EXPECT_NEAR(f.value(solution), expected, 1e-12 * expected);
    }
  }
}

TEST(LinearLeastSquares, HessianIsTheGramMatrix) {
  const auto data = hesse::test::make_regression(30, 4, false, 22);
  for (const bool intercept : {false, true}) {
    LinearLeastSquares<double> f(data, {.fit_intercept = intercept});
    Matrix<double> h;
    f.hessian(hesse::test::random_vector(f.dimension(), 1), h);
    const Matrix<double> j = jacobian(data, intercept);
    const Matrix<double> gram = j.transpose() * j;  // X X^T for the [d, n] layout
    EXPECT_LE((h - gram).cwiseAbs().maxCoeff(), 1e-12 * gram.cwiseAbs().maxCoeff());
  }
}

TEST(LinearLeastSquares, BatchSumIsRescaledToTheFullSum) {
  const auto data = hesse::test::make_regression(20, 3, false, 23);
  LinearLeastSquares<double> f(data);
  const Vector<double> x = hesse::test::random_vector(3, 2);
  const std::vector<Index> batch = {4, 9};
  f.select_batch(batch);
  double batch_sum = 0;
  for (const Index i : batch) batch_sum += 0.5 * std::pow(data.features.col(i).dot(x) - data.targets(0, i), 2);
  EXPECT_NEAR(f.value(x), 10.0 * batch_sum, 1e-12 * batch_sum);
}

TEST(LinearLeastSquares, FloatAgreesWithDouble) {
  const auto data = hesse::test::make_regression(50, 5, false, 24);
  const auto data_f = data.cast<float>();
  LinearLeastSquares<double> f(data, {.l2 = 0.1, .fit_intercept = true});
  LinearLeastSquares<float> f_f(data_f, {.l2 = 0.1, .fit_intercept = true});
  const Vector<double> x = hesse::test::random_vector(6, 3);
  Vector<double> g;
  Vector<float> g_f;
  const double value = f.value_and_gradient(x, &g);
  const float value_f = f_f.value_and_gradient(x.cast<float>(), &g_f);
  EXPECT_NEAR(value_f, value, 1e-5 * value);
  EXPECT_LE((g_f.cast<double>() - g).norm(), 1e-5 * g.norm());
}

TEST(LinearLeastSquares, RejectsBadDataAndOptions) {
  auto data = hesse::test::make_regression(10, 3, false, 25);
  EXPECT_THROW(LinearLeastSquares<double>(data, {.l2 = -1}), hesse::InvalidArgument);
  EXPECT_EQ(invalid_argument_message([&] { LinearLeastSquares<double> f(data, {.l2 = -0.5}); }),
            "LinearLeastSquaresOptions::l2 = -0.5: must be finite and >= 0");
  auto two_outputs = data;
  two_outputs.targets.resize(2, 10);
  two_outputs.targets.setZero();
  EXPECT_EQ(invalid_argument_message([&] { LinearLeastSquares<double> f(two_outputs); }),
            "LinearLeastSquares: targets must have 1 row (one regression output), got 2");
  auto short_targets = data;
  short_targets.targets.resize(1, 9);
  EXPECT_THROW(LinearLeastSquares<double>{short_targets}, hesse::InvalidArgument);
  hesse::data::Dataset<double> empty;
  EXPECT_THROW(LinearLeastSquares<double>{empty}, hesse::InvalidArgument);

  LinearLeastSquares<double> f(data);
  EXPECT_THROW(f.value(Vector<double>::Zero(4)), hesse::InvalidArgument);
  const std::vector<Index> outside = {0, 10};
  EXPECT_EQ(invalid_argument_message([&] { f.select_batch(outside); }),
            "select_batch: sample index 10 is outside [0, 10)");
  EXPECT_THROW(f.select_batch(std::span<const Index>()), hesse::InvalidArgument);
}

}  // namespace

#include "hesse/objective/residual.hpp"
#include "hesse/optim/least_squares.hpp"

namespace {

// The residual form r = [sqrt(s)(X^T w + b - y); sqrt(l2) w] gives the same
// objective, its Jacobian products pass the residual checker, and
// Levenberg-Marquardt on it reaches the normal-equations solution.
TEST(LinearLeastSquaresResiduals, SameObjectiveExactJacobianAndLevenbergMarquardt) {
  using namespace hesse;
  for (const bool sparse : {false, true}) {
    for (const double l2 : {0.0, 0.3}) {
      Rng rng(5);
      data::Dataset<double> set;
      set.name = "residuals";
      set.features.resize(4, 25);
      for (Index j = 0; j < 25; ++j) {
        Vector<double> column(4);
        fill_normal<double>(rng, column);
        set.features.col(j) = column;
      }
      set.targets.resize(1, 25);
      Vector<double> y(25);
      fill_normal<double>(rng, y);
      set.targets.row(0) = y.transpose();
      if (sparse) {
        set.sparse_features = set.features.sparseView();
        set.features.resize(0, 0);
      }
      models::LinearLeastSquares<double> model(set, {.l2 = l2, .fit_intercept = true});
      static_assert(ResidualObjective<models::LinearLeastSquares<double>>);
      Vector<double> x(5), r;
      fill_normal<double>(rng, x);
      model.residuals(x, r);
      EXPECT_NEAR(0.5 * r.squaredNorm(), model.value(x), 1e-12 * (1 + model.value(x)));
      const DerivativeCheckReport report = check_residuals(model, x);
      EXPECT_TRUE(report.passed()) << report.report();

      Vector<double> solution = Vector<double>::Zero(5), gradient;
      const optim::Summary summary = optim::levenberg_marquardt(model, solution);
      EXPECT_TRUE(summary.converged()) << summary.full_report();
      model.value_and_gradient(solution, &gradient);
      EXPECT_LT(gradient.lpNorm<Eigen::Infinity>(), 1e-8) << "sparse " << sparse << " l2 " << l2;
    }
  }
}

}  // namespace
