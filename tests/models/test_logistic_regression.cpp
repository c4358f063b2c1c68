#include "hesse/models/logistic_regression.hpp"

#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "../common/errors.hpp"
#include "hesse/core/error.hpp"
#include "hesse/models/softmax_regression.hpp"
#include "model_test_data.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;
using hesse::models::LogisticRegression;
using hesse::models::LogisticRegressionOptions;
using hesse::testing::invalid_argument_message;

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

/// The straightforward two-pass formulas (one GEMV for z, one for X r), on
/// the selected samples `indices` (all when empty).
struct TwoPass {
  double value = 0;
  Vector<double> gradient, hessian_vector;
};

TwoPass two_pass(const hesse::data::Dataset<double>& data, const std::vector<Index>& indices,
                 const Vector<double>& theta, const Vector<double>& v, double l2, bool intercept) {
  const hesse::data::Dataset<double> set = indices.empty() ? data : hesse::test::subset(data, indices);
  const Matrix<double> X = set.is_sparse() ? Matrix<double>(set.sparse_features) : set.features;
  const Vector<double> y = set.targets.row(0).transpose();
  const Index d = X.rows();
  const Index m = X.cols();
  const double b = intercept ? theta[d] : 0.0;
  const double v_b = intercept ? v[d] : 0.0;
  const Vector<double> z = (X.transpose() * theta.head(d)).array() + b;
  Vector<double> residual(m), curvature(m);
  double loss = 0;
  for (Index i = 0; i < m; ++i) {
    const double e = std::exp(-std::abs(z[i]));
    loss += std::max(-(2 * y[i] - 1) * z[i], 0.0) + std::log1p(e);
    residual[i] = (z[i] >= 0 ? 1 / (1 + e) : e / (1 + e)) - y[i];
    curvature[i] = e / ((1 + e) * (1 + e));
  }
  const Vector<double> u =
      curvature.cwiseProduct(Vector<double>((X.transpose() * v.head(d)).array() + v_b));
  TwoPass out;
  out.value = loss / static_cast<double>(m) + 0.5 * l2 * theta.head(d).squaredNorm();
  out.gradient.setZero(theta.size());
  out.hessian_vector.setZero(theta.size());
  out.gradient.head(d) = X * residual / static_cast<double>(m) + l2 * theta.head(d);
  out.hessian_vector.head(d) = X * u / static_cast<double>(m) + l2 * v.head(d);
  if (intercept) {
    out.gradient[d] = residual.sum() / static_cast<double>(m);
    out.hessian_vector[d] = u.sum() / static_cast<double>(m);
  }
  return out;
}

void expect_matches_two_pass(LogisticRegression<double>& f, const hesse::data::Dataset<double>& data,
                             const std::vector<Index>& indices, const Vector<double>& theta,
                             const Vector<double>& v, const char* what) {
  const TwoPass expected = two_pass(data, indices, theta, v, f.options().l2, f.options().fit_intercept);
  Vector<double> g, hv;
  const double value = f.value_and_gradient(theta, &g);
  f.hessian_vector(theta, v, hv);
  EXPECT_NEAR(value, expected.value, 1e-12 * std::abs(expected.value)) << what;
  EXPECT_NEAR(f.value(theta), expected.value, 1e-12 * std::abs(expected.value)) << what;
  EXPECT_LE((g - expected.gradient).norm(), 1e-12 * expected.gradient.norm()) << what;
  EXPECT_LE((hv - expected.hessian_vector).norm(), 1e-12 * expected.hessian_vector.norm()) << what;
}

// Sizes below and above the parallel threshold (1e6 entries of X, see
// logistic_regression.hpp), with sample counts that no slice width divides.
TEST(LogisticRegression, OnePassEqualsTwoPassFormulas) {
  const std::vector<std::tuple<Index, Index, bool>> sizes = {
      {569, 30, false}, {1001, 7, false}, {9973, 101, false}, {25013, 40, false}, {3, 2, false},
      {2003, 9, true},  {36011, 100, true}};
  for (const auto& [n, d, sparse] : sizes) {
    for (const bool intercept : {true, false}) {
      const auto data = hesse::test::make_classification(n, d, 2, sparse, 40 + static_cast<std::uint64_t>(n));
      LogisticRegression<double> f(data, {.l2 = 0.01, .fit_intercept = intercept});
      const Vector<double> theta = hesse::test::random_vector(f.dimension(), 41, 0.3);
      const Vector<double> v = hesse::test::random_vector(f.dimension(), 42);
      const std::string what = "n " + std::to_string(n) + " d " + std::to_string(d) +
                               (sparse ? " sparse" : " dense") + (intercept ? " intercept" : "");
      expect_matches_two_pass(f, data, {}, theta, v, what.c_str());
    }
  }
}

TEST(LogisticRegression, OnePassOnABatchEqualsTwoPassFormulas) {
  const auto data = hesse::test::make_classification(30011, 50, 2, false, 43);
  LogisticRegression<double> f(data, {.l2 = 0.01});
  std::vector<Index> batch;
  for (Index i = 0; i < 25000; ++i) batch.push_back((i * 7919) % 30011);  // above the threshold
  batch.push_back(batch.front());                                         // a repeat
  const Vector<double> theta = hesse::test::random_vector(51, 44, 0.3);
  const Vector<double> v = hesse::test::random_vector(51, 45);
  f.select_batch(batch);
  expect_matches_two_pass(f, data, batch, theta, v, "batch");
}

// Small dense sets (n d 8 <= 256 KB) evaluate the full selection on a
// sample-major copy of X; a batch (even of every sample) takes the general
// slice pass. Both agree to rounding, including on a batch with a repeated
// sample (general pass) against a set made of that batch (small path) and
// after returning to all samples.
TEST(LogisticRegression, SmallProblemPathEqualsGeneralPath) {
  for (const bool intercept : {true, false}) {
    const auto data = hesse::test::make_classification(569, 30, 2, false, 53);
    const LogisticRegressionOptions options{.l2 = 0.01, .fit_intercept = intercept};
    LogisticRegression<double> f(data, options);
    const Vector<double> x1 = hesse::test::random_vector(f.dimension(), 54, 0.3);
    const Vector<double> x2 = hesse::test::random_vector(f.dimension(), 55, 0.3);
    const Vector<double> v = hesse::test::random_vector(f.dimension(), 56);
    struct Products {
      double value, value_only;
      Vector<double> gradient, hv_cached, hv_new;
    };
    auto products = [&](LogisticRegression<double>& g) {
      Products p;
      p.value = g.value_and_gradient(x1, &p.gradient);
      g.hessian_vector(x1, v, p.hv_cached);  // p (1 - p) kept from the gradient
      g.hessian_vector(x2, v, p.hv_new);     // formed in the product
      p.value_only = g.value(x2);
      return p;
    };
    auto expect_near = [](const Products& a, const Products& b, const std::string& what) {
      EXPECT_NEAR(a.value, b.value, 1e-12 * std::abs(b.value)) << what;
      EXPECT_NEAR(a.value_only, b.value_only, 1e-12 * std::abs(b.value_only)) << what;
      EXPECT_LE((a.gradient - b.gradient).norm(), 1e-12 * b.gradient.norm()) << what;
      EXPECT_LE((a.hv_cached - b.hv_cached).norm(), 1e-12 * b.hv_cached.norm()) << what;
      EXPECT_LE((a.hv_new - b.hv_new).norm(), 1e-12 * b.hv_new.norm()) << what;
    };
    const std::string mode = intercept ? " intercept" : "";

    const Products small = products(f);  // all samples: the sample-major copy
    std::vector<Index> every(569);
    std::iota(every.begin(), every.end(), Index{0});
    f.select_batch(every);  // the same samples as a batch: the general pass
    const Products general = products(f);
    expect_near(small, general, "all samples vs a batch of all" + mode);
    expect_matches_two_pass(f, data, every, x1, v, ("batch of all" + mode).c_str());

    // A batch with a repeat (general pass) vs a set of those samples (small path).
    std::vector<Index> batch;
    for (Index i = 0; i < 300; ++i) batch.push_back((i * 37) % 569);
    batch.push_back(batch[5]);
    f.select_batch(batch);
    const Products on_batch = products(f);
    const auto batch_set = hesse::test::subset(data, batch);
    LogisticRegression<double> f_batch(batch_set, options);
    expect_near(products(f_batch), on_batch, "set of the batch vs the batch" + mode);
    expect_matches_two_pass(f, data, batch, x1, v, ("batch with a repeat" + mode).c_str());

    // Back to all samples: the sample-major copy again, bit for bit as before.
    f.select_all();
    const Products again = products(f);
    EXPECT_EQ(again.value, small.value) << mode;
    EXPECT_EQ(again.value_only, small.value_only) << mode;
    EXPECT_TRUE(again.gradient == small.gradient) << mode;
    EXPECT_TRUE(again.hv_cached == small.hv_cached) << mode;
    EXPECT_TRUE(again.hv_new == small.hv_new) << mode;
    expect_near(again, general, "all samples after select_all vs the general pass" + mode);
    expect_matches_two_pass(f, data, {}, x1, v, ("all after select_all" + mode).c_str());
  }
}

TEST(LogisticRegression, ProductsDoNotDependOnTheThreadCount) {
  const auto data = hesse::test::make_classification(20011, 64, 2, false, 46);  // above the threshold
  const Vector<double> theta = hesse::test::random_vector(65, 47, 0.3);
  const Vector<double> v = hesse::test::random_vector(65, 48);
  const int saved = omp_get_max_threads();
  std::vector<std::tuple<double, Vector<double>, Vector<double>, Vector<double>>> runs;
  for (const int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    LogisticRegression<double> f(data);
    Vector<double> g, hv_uncached, hv_cached;
    f.hessian_vector(theta, v, hv_uncached);
    const double value = f.value_and_gradient(theta, &g);
    f.hessian_vector(theta, v, hv_cached);
    runs.emplace_back(value, g, hv_uncached, hv_cached);
  }
  omp_set_num_threads(saved);
  for (std::size_t k = 1; k < runs.size(); ++k) {
    EXPECT_EQ(std::get<0>(runs[k]), std::get<0>(runs[0]));
    EXPECT_TRUE(std::get<1>(runs[k]) == std::get<1>(runs[0]));
    EXPECT_TRUE(std::get<2>(runs[k]) == std::get<2>(runs[0]));
    EXPECT_TRUE(std::get<3>(runs[k]) == std::get<3>(runs[0]));
  }
}

TEST(LogisticRegression, CachedCurvatureFollowsThetaAndSelection) {
  const auto data = hesse::test::make_classification(3001, 6, 2, false, 49);
  LogisticRegression<double> f(data, {.l2 = 0.01});
  const Vector<double> x1 = hesse::test::random_vector(7, 50);
  const Vector<double> x2 = hesse::test::random_vector(7, 51);
  const Vector<double> v = hesse::test::random_vector(7, 52);
  auto expect_hvp = [&](const Vector<double>& x, const std::vector<Index>& indices, const char* what) {
    Vector<double> hv;
    f.hessian_vector(x, v, hv);
    const TwoPass expected = two_pass(data, indices, x, v, 0.01, true);
    EXPECT_LE((hv - expected.hessian_vector).norm(), 1e-12 * expected.hessian_vector.norm()) << what;
  };

  // The cached product at the evaluated theta equals the product computed
  // from scratch bit for bit.
  Vector<double> fresh, cached;
  LogisticRegression<double>(data, {.l2 = 0.01}).hessian_vector(x1, v, fresh);
  f.value(x1);
  f.hessian_vector(x1, v, cached);
  EXPECT_TRUE(cached == fresh);

  f.value(x1);
  expect_hvp(x2, {}, "another theta");
  Vector<double> x3 = x2;
  x3[3] += 1e-3;  // same size, one entry changed
  expect_hvp(x3, {}, "one entry changed");

  // Batches of the same size at the same theta, then all samples again.
  std::vector<Index> a(1000), b(1000);
  std::iota(a.begin(), a.end(), Index{0});
  std::iota(b.begin(), b.end(), Index{2000});
  f.select_batch(a);
  f.value(x1);
  expect_hvp(x1, a, "batch a");
  f.select_batch(b);
  expect_hvp(x1, b, "batch b after a at the same theta");
  f.value(x1);
  f.select_all();
  expect_hvp(x1, {}, "all after batch b at the same theta");
  Matrix<double> H;
  f.select_batch(a);
  f.hessian(x2, H);
  f.select_all();
  expect_hvp(x2, {}, "all after a Hessian on batch a");
}

TEST(LogisticRegression, RejectsBadData) {
  auto data = hesse::test::make_classification(10, 3, 2, false, 35);
  auto three_classes = data;
  three_classes.num_classes = 3;
  EXPECT_EQ(invalid_argument_message([&] { LogisticRegression<double> f(three_classes); }),
            "LogisticRegression: needs a binary data set (num_classes = 2), got num_classes = 3; "
            "use SoftmaxRegression for more classes");
  auto bad_label = data;
  bad_label.targets(0, 4) = -1;
  EXPECT_EQ(invalid_argument_message([&] { LogisticRegression<double> f(bad_label); }),
            "LogisticRegression: label of sample 4 is -1.000000, expected 0 or 1");
  EXPECT_THROW(LogisticRegression<double>(data, {.l2 = std::nan("")}), hesse::InvalidArgument);
  LogisticRegression<double> f(data);
  Vector<double> out;
  EXPECT_THROW(f.hessian_vector(Vector<double>::Zero(4), Vector<double>::Zero(3), out),
               hesse::InvalidArgument);
}

}  // namespace
