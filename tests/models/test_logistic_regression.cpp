#include "hesse/models/logistic_regression.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "hesse/core/error.hpp"
#include "hesse/models/softmax_regression.hpp"
#include "model_test_data.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;
using hesse::models::LogisticRegression;

/// The objective written out sample by sample, in long double.
double direct_value(const hesse::data::Dataset<double>& data, const Vector<double>& theta, double l2,
                    Vector<double>& gradient) {
  const Index d = data.features.rows();
  const Index n = data.num_samples();
  long double loss = 0;
  gradient.setZero(d + 1);
  for (Index i = 0; i < n; ++i) {
    const long double z = data.features.col(i).dot(theta.head(d)) + theta[d];
    const long double y = data.targets(0, i);
    const long double p = 1 / (1 + std::exp(-z));
    loss += -(y * std::log(p) + (1 - y) * std::log(1 - p));
    gradient.head(d) += static_cast<double>((p - y) / n) * data.features.col(i);
    gradient[d] += static_cast<double>((p - y) / n);
  }
  gradient.head(d) += l2 * theta.head(d);
  return static_cast<double>(loss / n) + 0.5 * l2 * theta.head(d).squaredNorm();
}

TEST(LogisticRegression, MatchesTheDirectPerSampleFormula) {
  const auto data = hesse::test::make_classification(80, 4, 2, false, 31);
  LogisticRegression<double> f(data, {.l2 = 0.3});
  const Vector<double> theta = hesse::test::random_vector(5, 1);
  Vector<double> g;
  Vector<double> g_direct;
  const double value = f.value_and_gradient(theta, &g);
  const double direct = direct_value(data, theta, 0.3, g_direct);
  EXPECT_NEAR(value, direct, 1e-13 * direct);
  EXPECT_LE((g - g_direct).norm(), 1e-13 * g_direct.norm());
}

TEST(LogisticRegression, StableForLargeScores) {
  // Scores of +-1e4: exp overflows in a naive log(1 + exp(-s z)), the softplus
  // form gives the exact linear asymptote and finite derivatives.
  const auto data = hesse::test::make_classification(30, 3, 2, false, 32);
  LogisticRegression<double> f(data, {.l2 = 0});
  const Vector<double> theta = 1e4 * hesse::test::random_vector(4, 2);
  Vector<double> g;
  Vector<double> hv;
  const double value = f.value_and_gradient(theta, &g);
  f.hessian_vector(theta, hesse::test::random_vector(4, 3), hv);
  EXPECT_TRUE(std::isfinite(value));
  EXPECT_GT(value, 0);
  EXPECT_TRUE(g.allFinite());
  EXPECT_TRUE(hv.allFinite());
}

TEST(LogisticRegression, FloatAgreesWithDouble) {
  for (const bool sparse : {false, true}) {
    const auto data = hesse::test::make_classification(100, 6, 2, sparse, 33);
    const auto data_f = data.cast<float>();
    LogisticRegression<double> f(data);
    LogisticRegression<float> f_f(data_f);
    const Vector<double> x = hesse::test::random_vector(7, 4);
    const Vector<double> v = hesse::test::random_vector(7, 5);
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
}

TEST(LogisticRegression, EqualsTwoClassSoftmaxWithAZeroClass) {
  // softmax([0, z]) picks class 1 with probability sigmoid(z), so logistic(w, b)
  // is softmax with W = [0; w^T], b = [0; b] (and the same penalty |w|^2).
  const auto data = hesse::test::make_classification(50, 4, 2, false, 34);
  LogisticRegression<double> logistic(data, {.l2 = 0.2});
  hesse::models::SoftmaxRegression<double> softmax(data, {.l2 = 0.2});
  const Vector<double> theta = hesse::test::random_vector(5, 6);
  Vector<double> softmax_theta = Vector<double>::Zero(softmax.dimension());
  for (Index j = 0; j < 4; ++j) softmax_theta[1 + 2 * j] = theta[j];
  softmax_theta[2 * 4 + 1] = theta[4];
  Vector<double> g, g_softmax;
  const double value = logistic.value_and_gradient(theta, &g);
  EXPECT_NEAR(softmax.value_and_gradient(softmax_theta, &g_softmax), value, 1e-14);
  // Class 1's gradient is the logistic gradient; class 0's is the negated data
  // part (its weights are zero, so it has no penalty term).
  for (Index j = 0; j < 4; ++j) {
    EXPECT_NEAR(g_softmax[1 + 2 * j], g[j], 1e-14);
    EXPECT_NEAR(g_softmax[2 * j], -(g[j] - 0.2 * theta[j]), 1e-14);
  }
}

TEST(LogisticRegression, RejectsBadData) {
  auto data = hesse::test::make_classification(10, 3, 2, false, 35);
  auto three_classes = data;
  three_classes.num_classes = 3;
  try {
    LogisticRegression<double> f(three_classes);
    FAIL() << "no exception";
  } catch (const hesse::InvalidArgument& e) {
    EXPECT_STREQ(e.what(),
                 "LogisticRegression: needs a binary data set (num_classes = 2), got num_classes = 3; "
                 "use SoftmaxRegression for more classes");
  }
  auto bad_label = data;
  bad_label.targets(0, 4) = -1;
  try {
    LogisticRegression<double> f(bad_label);
    FAIL() << "no exception";
  } catch (const hesse::InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "LogisticRegression: label of sample 4 is -1.000000, expected 0 or 1");
  }
  EXPECT_THROW(LogisticRegression<double>(data, {.l2 = std::nan("")}), hesse::InvalidArgument);
  LogisticRegression<double> f(data);
  Vector<double> out;
  EXPECT_THROW(f.hessian_vector(Vector<double>::Zero(4), Vector<double>::Zero(3), out),
               hesse::InvalidArgument);
}

}  // namespace
