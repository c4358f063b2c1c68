#include "hesse/models/softmax_regression.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "../common/errors.hpp"
#include "hesse/core/error.hpp"
#include "model_test_data.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;
using hesse::models::SoftmaxRegression;
using hesse::testing::invalid_argument_message;

TEST(SoftmaxRegression, MatchesTheDirectPerSampleFormula) {
  const auto data = hesse::test::make_classification(40, 3, 4, false, 41);
  SoftmaxRegression<double> f(data, {.l2 = 0.1});
  ASSERT_EQ(f.dimension(), 4 * 3 + 4);
  const Vector<double> theta = hesse::test::random_vector(f.dimension(), 1);
  const Eigen::Map<const Matrix<double>> w(theta.data(), 4, 3);  // column-major [K, d]
  const Vector<double> b = theta.tail(4);
  double loss = 0;
  for (Index i = 0; i < 40; ++i) {
    const Vector<double> z = w * data.features.col(i) + b;
    loss += std::log(z.array().exp().sum()) - z[data.label(i)];
  }
  const double expected = loss / 40 + 0.05 * w.squaredNorm();
  EXPECT_NEAR(f.value(theta), expected, 1e-13 * expected);
}

TEST(SoftmaxRegression, StableForLargeLogits) {
  const auto data = hesse::test::make_classification(20, 3, 3, false, 42);
  SoftmaxRegression<double> f(data);
  const Vector<double> theta = 1e4 * hesse::test::random_vector(f.dimension(), 2);
  Vector<double> g;
  EXPECT_TRUE(std::isfinite(f.value_and_gradient(theta, &g)));
  EXPECT_TRUE(g.allFinite());
}

TEST(SoftmaxRegression, FloatAgreesWithDouble) {
  const auto data = hesse::test::make_classification(60, 5, 3, true, 43);
  const auto data_f = data.cast<float>();
  SoftmaxRegression<double> f(data);
  SoftmaxRegression<float> f_f(data_f);
  const Vector<double> x = hesse::test::random_vector(f.dimension(), 3);
  const Vector<double> v = hesse::test::random_vector(f.dimension(), 4);
  Vector<double> g, hv;
  Vector<float> g_f, hv_f;
  const double value = f.value_and_gradient(x, &g);
  const float value_f = f_f.value_and_gradient(x.cast<float>(), &g_f);
  f.hessian_vector(x, v, hv);
  f_f.hessian_vector(x.cast<float>(), v.cast<float>(), hv_f);
  EXPECT_NEAR(value_f, value, 1e-4 * value);
  EXPECT_LE((g_f.cast<double>() - g).norm(), 1e-4 * g.norm());
  EXPECT_LE((hv_f.cast<double>() - hv).norm(), 1e-4 * hv.norm());
}

TEST(SoftmaxRegression, RejectsBadLabels) {
  auto data = hesse::test::make_classification(10, 2, 3, false, 44);
  auto out_of_range = data;
  out_of_range.targets(0, 2) = 3;
  EXPECT_EQ(invalid_argument_message([&] { SoftmaxRegression<double> f(out_of_range); }),
            "SoftmaxRegression: label of sample 2 is 3.000000, expected an integer in [0, 3)");
  auto fractional = data;
  fractional.targets(0, 0) = 0.5;
  EXPECT_THROW(SoftmaxRegression<double>{fractional}, hesse::InvalidArgument);
  auto regression = data;
  regression.num_classes = 0;
  EXPECT_THROW(SoftmaxRegression<double>{regression}, hesse::InvalidArgument);
}

}  // namespace
