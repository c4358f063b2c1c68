// The derivative checker must pass correct objectives and, just as important,
// fail deliberately broken ones: a checker that cannot fail checks nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "../common/errors.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/objective/derivative_check.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;

// f(x) = 1/2 x^T A x + b^T x + c with A symmetric positive definite; every tier.
// Flags break one derivative at a time.
template <class T>
struct Quadratic {
  using Scalar = T;
  Matrix<T> a;
  Vector<T> b;
  T c = 0;
  double gradient_error = 0;  // added to the gradient's first entry
  double hv_scale = 1;        // Hv returned as hv_scale * A v
  bool asymmetric_hv = false; // Hv computed with A + skew
  bool indefinite_gn = false; // Gv = -A v
  bool asymmetric_dense = false;

  explicit Quadratic(Index n, std::uint64_t seed = 1) {
    hesse::Rng rng(seed);
    Matrix<T> m(n, n);
    for (Index j = 0; j < n; ++j) {
      Vector<T> column(n);
      hesse::fill_normal<T>(rng, column);
      m.col(j) = column;
    }
    a = m.transpose() * m + Matrix<T>::Identity(n, n) * T(n);
    b.resize(n);
    hesse::fill_normal<T>(rng, b);
  }
  Index dimension() const { return b.size(); }
  T value(const Vector<T>& x) { return T(0.5) * x.dot(a * x) + b.dot(x) + c; }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    if (g) {
      *g = a * x + b;
      (*g)[0] += static_cast<T>(gradient_error);
    }
    return value(x);
  }
  void hessian_vector(const Vector<T>&, const Vector<T>& v, Vector<T>& out) {
    out = static_cast<T>(hv_scale) * (a * v);
    if (asymmetric_hv) {
      Matrix<T> skew = Matrix<T>::Zero(a.rows(), a.cols());
      skew(0, 1) = T(1);
      skew(1, 0) = T(-1);
      out += a.norm() * skew * v;
    }
  }
  void gauss_newton_vector(const Vector<T>&, const Vector<T>& v, Vector<T>& out) {
    out = indefinite_gn ? Vector<T>(-(a * v)) : Vector<T>(a * v);
  }
  void hessian(const Vector<T>&, Matrix<T>& h) {
    h = a;
    if (asymmetric_dense) h(0, 1) += T(1);
  }
};

// Extended Rosenbrock, f = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2: a
// nonconvex objective with a non-constant Hessian, tiers 1-3 and 5.
struct Rosenbrock {
  using Scalar = double;
  Index n;
  Index dimension() const { return n; }
  double value(const Vector<double>& x) { return value_and_gradient(x, nullptr); }
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) {
    double f = 0;
    if (g) g->setZero(n);
    for (Index i = 0; i + 1 < n; ++i) {
      const double r = x[i + 1] - x[i] * x[i];
      const double s = 1 - x[i];
      f += 100 * r * r + s * s;
      if (g) {
        (*g)[i] += -400 * r * x[i] - 2 * s;
        (*g)[i + 1] += 200 * r;
      }
    }
    return f;
  }
  void hessian(const Vector<double>& x, Matrix<double>& h) {
    h.setZero(n, n);
    for (Index i = 0; i + 1 < n; ++i) {
      h(i, i) += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2;
      h(i, i + 1) += -400 * x[i];
      h(i + 1, i) += -400 * x[i];
      h(i + 1, i + 1) += 200;
    }
  }
  void hessian_vector(const Vector<double>& x, const Vector<double>& v, Vector<double>& out) {
    Matrix<double> h;
    hessian(x, h);
    out = h * v;
  }
};

struct ValueOnly {
  using Scalar = double;
  Index dimension() const { return 2; }
  double value(const Vector<double>& x) { return x.squaredNorm(); }
};

struct GradientOnly : ValueOnly {
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) {
    if (g) *g = 2 * x;
    return value(x);
  }
};

// The tiers are decided by the calls an objective provides, nothing else.
static_assert(hesse::Objective<ValueOnly>);
static_assert(!hesse::DifferentiableObjective<ValueOnly>);
static_assert(!hesse::HessianVectorObjective<ValueOnly>);
static_assert(hesse::DifferentiableObjective<GradientOnly>);
static_assert(!hesse::HessianVectorObjective<GradientOnly>);
static_assert(!hesse::GaussNewtonObjective<GradientOnly>);
static_assert(!hesse::DenseHessianObjective<GradientOnly>);
static_assert(hesse::HessianVectorObjective<Rosenbrock>);
static_assert(hesse::DenseHessianObjective<Rosenbrock>);
static_assert(!hesse::GaussNewtonObjective<Rosenbrock>);
static_assert(hesse::GaussNewtonObjective<Quadratic<double>>);
static_assert(!hesse::BatchObjective<Quadratic<double>>);

Vector<double> random_point(Index n, std::uint64_t seed) {
  hesse::Rng rng(seed);
  Vector<double> x(n);
  hesse::fill_normal<double>(rng, x);
  return x;
}

const hesse::CheckEntry* find(const hesse::DerivativeCheckReport& report, const std::string& name) {
  for (const auto& entry : report.entries)
    if (entry.name == name) return &entry;
  return nullptr;
}

TEST(DerivativeCheck, CorrectQuadraticPassesEveryTier) {
  Quadratic<double> f(8);
  const auto report = hesse::check_derivatives(f, random_point(8, 2));
  ASSERT_EQ(report.entries.size(), 6u);
  EXPECT_TRUE(report.passed()) << report.report();
  EXPECT_LT(report.worst_error(), 1e-7) << report.report();
}

TEST(DerivativeCheck, CorrectRosenbrockPasses) {
  Rosenbrock f{6};
  Vector<double> x(6);
  x << -1.2, 1.0, 0.3, -0.7, 2.0, 1.5;
  const auto report = hesse::check_derivatives(f, x);
  ASSERT_EQ(report.entries.size(), 4u);  // gradient, Hv, Hv symmetry, dense
  EXPECT_TRUE(report.passed()) << report.report();
}

TEST(DerivativeCheck, ZeroGradientAtMinimiserIsNotFlagged) {
  // At the minimiser the gradient is exactly zero and the finite differences
  // are pure round-off; the noise floor keeps this from dividing by zero.
  Rosenbrock f{4};
  const Vector<double> x = Vector<double>::Ones(4);
  const auto entry = hesse::check_gradient(f, x);
  EXPECT_TRUE(entry.passed) << entry.detail << " error " << entry.error;
}

TEST(DerivativeCheck, DetectsWrongGradient) {
  Quadratic<double> f(5);
  f.gradient_error = 1e-3;
  const auto entry = hesse::check_gradient(f, random_point(5, 3));
  EXPECT_FALSE(entry.passed);
  EXPECT_GT(entry.error, 1e-6);
}

TEST(DerivativeCheck, DetectsWrongGradientOnSampledCoordinates) {
  // n > max_coordinates: only directions and sampled coordinates are checked,
  // yet a gradient error in one coordinate shows up along random directions.
  Quadratic<double> f(300);
  f.gradient_error = 1.0;
  hesse::DerivativeCheckOptions options;
  options.max_coordinates = 20;
  const auto entry = hesse::check_gradient(f, random_point(300, 4), options);
  EXPECT_FALSE(entry.passed) << entry.error;
  f.gradient_error = 0;
  EXPECT_TRUE(hesse::check_gradient(f, random_point(300, 4), options).passed);
}

TEST(DerivativeCheck, DetectsWrongHessianVectorProduct) {
  Quadratic<double> f(6);
  f.hv_scale = 1.001;
  const auto report = hesse::check_derivatives(f, random_point(6, 5));
  EXPECT_FALSE(report.passed());
  EXPECT_FALSE(find(report, "hessian_vector")->passed);
  EXPECT_NEAR(find(report, "hessian_vector")->error, 1e-3, 1e-4);
  EXPECT_TRUE(find(report, "hessian_symmetry")->passed);  // 1.001 A is still symmetric
  EXPECT_TRUE(find(report, "gradient")->passed);
}

TEST(DerivativeCheck, DetectsAsymmetricHessianVectorProduct) {
  Quadratic<double> f(6);
  f.asymmetric_hv = true;
  const auto entry = hesse::check_hessian_symmetry(f, random_point(6, 6));
  EXPECT_FALSE(entry.passed) << entry.error;
  EXPECT_GT(entry.error, 1e-3);
}

TEST(DerivativeCheck, DetectsIndefiniteGaussNewton) {
  Quadratic<double> f(6);
  f.indefinite_gn = true;
  const auto report = hesse::check_derivatives(f, random_point(6, 7));
  EXPECT_FALSE(find(report, "gauss_newton_psd")->passed);
  EXPECT_TRUE(find(report, "gauss_newton_symmetry")->passed);
  EXPECT_FALSE(report.passed());
}

TEST(DerivativeCheck, DetectsWrongDenseHessian) {
  Quadratic<double> f(5);
  f.asymmetric_dense = true;
  const auto entry = hesse::check_dense_hessian(f, random_point(5, 8));
  EXPECT_FALSE(entry.passed);
}

TEST(DerivativeCheck, NanNeverPasses) {
  Quadratic<double> f(3);
  f.gradient_error = std::nan("");
  const auto entry = hesse::check_gradient(f, random_point(3, 9));
  EXPECT_FALSE(entry.passed);
  EXPECT_TRUE(std::isinf(entry.error));
}

TEST(DerivativeCheck, FloatObjectiveWithLooserTolerance) {
  Quadratic<float> f(5);
  Vector<float> x = random_point(5, 10).cast<float>();
  hesse::DerivativeCheckOptions options;
  options.tolerance = 1e-2;
  const auto report = hesse::check_derivatives(f, x, options);
  EXPECT_TRUE(report.passed()) << report.report();
}

TEST(DerivativeCheck, ValueOnlyObjectiveHasNothingToCheck) {
  ValueOnly f;
  const auto report = hesse::check_derivatives(f, Vector<double>::Ones(2));
  EXPECT_TRUE(report.entries.empty());
  EXPECT_TRUE(report.passed());
  EXPECT_EQ(report.worst_error(), 0.0);
}

TEST(DerivativeCheck, ReportHasOneLinePerCheck) {
  Quadratic<double> f(4);
  f.hv_scale = 2;
  const auto report = hesse::check_derivatives(f, random_point(4, 11));
  const std::string text = report.report();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 6);
  EXPECT_NE(text.find("gradient               PASS"), std::string::npos) << text;
  EXPECT_NE(text.find("hessian_vector         FAIL"), std::string::npos) << text;
}

TEST(DerivativeCheck, DimensionMismatchThrows) {
  Quadratic<double> f(4);
  EXPECT_THROW(hesse::check_gradient(f, Vector<double>::Zero(3)), hesse::InvalidArgument);
}

TEST(DerivativeCheckOptions, ValidateNamesFieldValueAndRule) {
  hesse::DerivativeCheckOptions options;
  EXPECT_NO_THROW(options.validate());
  options.tolerance = -1;
  EXPECT_EQ(hesse::testing::invalid_argument_message([&] { options.validate(); }),
            "DerivativeCheckOptions::tolerance = -1.000e+00: must be finite and > 0");
  options = {};
  options.num_directions = 0;
  EXPECT_THROW(options.validate(), hesse::InvalidArgument);
  options = {};
  options.step = std::nan("");
  EXPECT_THROW(options.validate(), hesse::InvalidArgument);
  options = {};
  options.max_coordinates = 0;
  EXPECT_THROW(options.validate(), hesse::InvalidArgument);
}

}  // namespace
