// Every classical model x {dense, sparse} x {with, without intercept}: the
// derivative checker passes on the full data and on mini-batches, the dense
// Hessian equals the stacked Hessian-vector products, the Gauss-Newton
// product equals the Hessian's, and dense and sparse storage agree.
#include <gtest/gtest.h>

#include <initializer_list>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "hesse/models/linear_least_squares.hpp"
#include "hesse/models/logistic_regression.hpp"
#include "hesse/models/softmax_regression.hpp"
#include "hesse/objective/derivative_check.hpp"
#include "model_test_data.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;
using hesse::models::LinearLeastSquares;
using hesse::models::LogisticRegression;
using hesse::models::SoftmaxRegression;

static_assert(hesse::DenseHessianObjective<LinearLeastSquares<double>>);
static_assert(hesse::GaussNewtonObjective<LogisticRegression<float>>);
static_assert(hesse::HessianVectorObjective<SoftmaxRegression<double>>);
static_assert(hesse::BatchObjective<SoftmaxRegression<float>>);
static_assert(hesse::BatchObjective<LinearLeastSquares<double>>);
static_assert(hesse::BatchObjective<LogisticRegression<double>>);

enum class Model { LeastSquares, Logistic, Softmax };

struct Case {
  Model model;
  bool sparse;
  bool intercept;
};

std::string case_name(const Case& c) {
  const char* model[] = {"LeastSquares", "Logistic", "Softmax"};
  return std::string(model[static_cast<int>(c.model)]) + (c.sparse ? "Sparse" : "Dense") +
         (c.intercept ? "Intercept" : "NoIntercept");
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); }

void PrintTo(const Case& c, std::ostream* out) { *out << case_name(c); }

constexpr Index kSamples = 40;
constexpr Index kFeatures = 5;

hesse::data::Dataset<double> make_data(const Case& c) {
  switch (c.model) {
    case Model::LeastSquares: return hesse::test::make_regression(kSamples, kFeatures, c.sparse, 11);
    case Model::Logistic: return hesse::test::make_classification(kSamples, kFeatures, 2, c.sparse, 12);
    case Model::Softmax: return hesse::test::make_classification(kSamples, kFeatures, 3, c.sparse, 13);
  }
  return {};
}

/// Runs `body(objective)` on the model of case `c` built on `data`.
template <class Body>
void with_model(const Case& c, const hesse::data::Dataset<double>& data, Body&& body) {
  switch (c.model) {
    case Model::LeastSquares: {
      LinearLeastSquares<double> f(data, {.l2 = 0.1, .fit_intercept = c.intercept});
      body(f);
      return;
    }
    case Model::Logistic: {
      LogisticRegression<double> f(data, {.l2 = 0.01, .fit_intercept = c.intercept});
      body(f);
      return;
    }
    case Model::Softmax: {
      SoftmaxRegression<double> f(data, {.l2 = 0.01, .fit_intercept = c.intercept});
      body(f);
      return;
    }
  }
}

class ModelDerivatives : public ::testing::TestWithParam<Case> {};

TEST_P(ModelDerivatives, CheckerPassesAtRandomPoints) {
  const auto data = make_data(GetParam());
  with_model(GetParam(), data, [](auto& f) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      const Vector<double> x = hesse::test::random_vector(f.dimension(), seed, 0.5);
      const auto report = hesse::check_derivatives(f, x, {.seed = seed});
      EXPECT_EQ(report.entries.size(), 6u);
      EXPECT_TRUE(report.passed()) << "seed " << seed << "\n" << report.report();
    }
  });
}

TEST_P(ModelDerivatives, CheckerPassesOnMiniBatches) {
  const auto data = make_data(GetParam());
  with_model(GetParam(), data, [](auto& f) {
    const std::vector<Index> batch = {3, 17, 17, 0, 39, 8, 21};  // repeats are allowed
    f.select_batch(batch);
    const Vector<double> x = hesse::test::random_vector(f.dimension(), 5, 0.5);
    const auto report = hesse::check_derivatives(f, x);
    EXPECT_TRUE(report.passed()) << report.report();
  });
}

TEST_P(ModelDerivatives, DenseHessianEqualsStackedProducts) {
  const auto data = make_data(GetParam());
  with_model(GetParam(), data, [](auto& f) {
    const Index n = f.dimension();
    const Vector<double> x = hesse::test::random_vector(n, 7, 0.5);
    Matrix<double> h;
    f.hessian(x, h);
    ASSERT_EQ(h.rows(), n);
    ASSERT_EQ(h.cols(), n);
    Matrix<double> stacked(n, n);
    Vector<double> column;
    Vector<double> gn_column;
    for (Index j = 0; j < n; ++j) {
      const Vector<double> unit = Vector<double>::Unit(n, j);
      f.hessian_vector(x, unit, column);
      f.gauss_newton_vector(x, unit, gn_column);
      stacked.col(j) = column;
      EXPECT_EQ(column, gn_column);  // G = H for these generalised linear models
    }
    EXPECT_LE((h - stacked).cwiseAbs().maxCoeff(), 1e-12 * h.cwiseAbs().maxCoeff());
    EXPECT_EQ(h, h.transpose());
  });
}

TEST_P(ModelDerivatives, BatchOfEverySampleMatchesFullData) {
  const auto data = make_data(GetParam());
  with_model(GetParam(), data, [](auto& f) {
    const Vector<double> x = hesse::test::random_vector(f.dimension(), 8, 0.5);
    const Vector<double> v = hesse::test::random_vector(f.dimension(), 9);
    Vector<double> g_full, g_batch, hv_full, hv_batch;
    const double full = f.value_and_gradient(x, &g_full);
    f.hessian_vector(x, v, hv_full);
    std::vector<Index> all(static_cast<std::size_t>(f.num_samples()));
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<Index>(all.size() - 1 - i);
    f.select_batch(all);
    const double batch = f.value_and_gradient(x, &g_batch);
    f.hessian_vector(x, v, hv_batch);
    EXPECT_NEAR(batch, full, 1e-12 * std::abs(full));
    EXPECT_LE((g_batch - g_full).norm(), 1e-12 * g_full.norm());
    EXPECT_LE((hv_batch - hv_full).norm(), 1e-12 * hv_full.norm());
    f.select_all();
    EXPECT_EQ(f.value(x), full);
  });
}

TEST_P(ModelDerivatives, BatchEstimatesTheFullObjective) {
  // A batch's value is the same model's value on a data set made of the batch
  // alone, rescaled for the sum-form least squares (n/|B|) and unchanged for
  // the mean-form models.
  const Case c = GetParam();
  const auto data = make_data(c);
  const std::vector<Index> batch = {5, 1, 30, 30, 12};
  const auto batch_data = hesse::test::subset(data, batch);
  const Vector<double> x = hesse::test::random_vector(c.model == Model::Softmax ? 3 * (kFeatures + c.intercept)
                                                                                 : kFeatures + c.intercept,
                                                      10, 0.5);
  double on_batch = 0;
  with_model(c, data, [&](auto& f) {
    f.select_batch(batch);
    on_batch = f.value(x);
  });
  double on_subset = 0;
  with_model(c, batch_data, [&](auto& f) { on_subset = f.value(x); });
  if (c.model == Model::LeastSquares) {
    const double penalty = 0.5 * 0.1 * x.head(kFeatures).squaredNorm();
    const double scale = double(kSamples) / double(batch.size());
    EXPECT_NEAR(on_batch, scale * (on_subset - penalty) + penalty, 1e-12 * on_batch);
  } else {
    EXPECT_NEAR(on_batch, on_subset, 1e-13);
  }
}

class SparseModel : public ModelDerivatives {};

TEST_P(SparseModel, AgreesWithDenseStorage) {
  const Case c = GetParam();
  const auto sparse_data = make_data(c);
  const auto dense_data = sparse_data.to_dense();
  ASSERT_FALSE(dense_data.is_sparse());
  const Index n = c.model == Model::Softmax ? 3 * (kFeatures + c.intercept) : kFeatures + c.intercept;
  const Vector<double> x = hesse::test::random_vector(n, 14, 0.5);
  const Vector<double> v = hesse::test::random_vector(n, 15);
  auto evaluate = [&](const hesse::data::Dataset<double>& data) {
    std::tuple<double, Vector<double>, Vector<double>, Matrix<double>> out;
    with_model(c, data, [&](auto& f) {
      std::get<0>(out) = f.value_and_gradient(x, &std::get<1>(out));
      f.hessian_vector(x, v, std::get<2>(out));
      f.hessian(x, std::get<3>(out));
    });
    return out;
  };
  const auto [value_s, g_s, hv_s, h_s] = evaluate(sparse_data);
  const auto [value_d, g_d, hv_d, h_d] = evaluate(dense_data);
  EXPECT_NEAR(value_s, value_d, 1e-12 * std::abs(value_d));
  EXPECT_LE((g_s - g_d).norm(), 1e-12 * g_d.norm());
  EXPECT_LE((hv_s - hv_d).norm(), 1e-12 * hv_d.norm());
  EXPECT_LE((h_s - h_d).norm(), 1e-12 * h_d.norm());
}

std::vector<Case> cases(std::initializer_list<bool> storage) {
  std::vector<Case> out;
  for (Model model : {Model::LeastSquares, Model::Logistic, Model::Softmax})
    for (bool sparse : storage)
      for (bool intercept : {false, true}) out.push_back({model, sparse, intercept});
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllModels, ModelDerivatives, ::testing::ValuesIn(cases({false, true})),
                         [](const auto& info) { return case_name(info); });
INSTANTIATE_TEST_SUITE_P(AllModels, SparseModel, ::testing::ValuesIn(cases({true})),
                         [](const auto& info) { return case_name(info); });

}  // namespace
