// Residual objectives: the Jacobian-product checker passes every model here
// and fails broken ones; the LeastSquaresObjective adapter passes the
// objective derivative checker (gradient, Gauss-Newton symmetry and PSD).
#include <gtest/gtest.h>

#include "hesse/objective/derivative_check.hpp"
#include "hesse/objective/residual.hpp"
#include "residual_models.hpp"

namespace {

using hesse::Vector;
using namespace lsq_test;

static_assert(hesse::ResidualObjective<ExponentialFit<double>>);
static_assert(hesse::DenseJacobianResidual<ExponentialFit<float>>);
static_assert(hesse::ResidualObjective<MatrixFreeLinearResiduals<double>>);
static_assert(!hesse::DenseJacobianResidual<MatrixFreeLinearResiduals<double>>);
static_assert(hesse::GaussNewtonObjective<hesse::LeastSquaresObjective<ExponentialFit<double>>>);
static_assert(!hesse::HessianVectorObjective<hesse::LeastSquaresObjective<ExponentialFit<double>>>);
static_assert(!hesse::ResidualObjective<hesse::LeastSquaresObjective<ExponentialFit<double>>>);

Vector<double> vec(std::initializer_list<double> values) {
  Vector<double> v(static_cast<hesse::Index>(values.size()));
  hesse::Index i = 0;
  for (double value : values) v[i++] = value;
  return v;
}

// Each model at its start and at a generic point: the residual check and the
// adapter's objective check (tolerance 1e-6 relative, the checker's default).
template <class R>
void expect_checks_pass(R& model, const Vector<double>& x, const char* name) {
  const hesse::DerivativeCheckReport residual_report = hesse::check_residuals(model, x);
  EXPECT_TRUE(residual_report.passed()) << name << "\n" << residual_report.report();
  EXPECT_EQ(residual_report.entries.size(), hesse::DenseJacobianResidual<R> ? 3u : 2u);
  hesse::LeastSquaresObjective<R> objective(model);
  const hesse::DerivativeCheckReport report = hesse::check_derivatives(objective, x);
  EXPECT_TRUE(report.passed()) << name << "\n" << report.report();
  EXPECT_EQ(report.entries.size(), 3u);  // gradient, gauss_newton_symmetry, gauss_newton_psd
}

TEST(ResidualCheck, EveryModelPasses) {
  auto linear = LinearResiduals<double>(30, 5, 1);
  expect_checks_pass(linear, Vector<double>::LinSpaced(5, -1, 1), "linear");
  auto matrix_free = MatrixFreeLinearResiduals<double>(30, 5, 1);
  expect_checks_pass(matrix_free, Vector<double>::LinSpaced(5, -1, 1), "matrix-free linear");
  auto fit = ExponentialFit<double>::make(200, 2.5, -1.3, 0.5, 0.05, 7);
  expect_checks_pass(fit, vec({1, -0.5, 0}), "exponential fit");
  expect_checks_pass(fit, vec({2.5, -1.3, 0.5}), "exponential fit at the solution");
  RosenbrockResiduals rosenbrock;
  expect_checks_pass(rosenbrock, vec({-1.2, 1}), "rosenbrock");
  PowellSingularResiduals powell;
  expect_checks_pass(powell, vec({3, -1, 0, 1}), "powell singular");
  BrownBadlyScaledResiduals brown;
  expect_checks_pass(brown, vec({1, 1}), "brown badly scaled");
  FreudensteinRothResiduals freudenstein;
  expect_checks_pass(freudenstein, vec({0.5, -2}), "freudenstein-roth");
  BardResiduals bard;
  expect_checks_pass(bard, vec({1, 1, 1}), "bard");
  MeyerResiduals meyer;
  expect_checks_pass(meyer, vec({0.02, 4000, 250}), "meyer");
  LogResiduals log_model;
  expect_checks_pass(log_model, vec({3, 0.5}), "log");
}

// A checker that cannot fail checks nothing.
struct BrokenJv : LinearResiduals<double> {
  BrokenJv() : LinearResiduals<double>(10, 3, 2) {}
  void jacobian_vector(const Vector<double>& x, const Vector<double>& v, Vector<double>& out) {
    LinearResiduals<double>::jacobian_vector(x, v, out);
    out[0] += 1e-3;
  }
};
struct BrokenJtu : LinearResiduals<double> {
  BrokenJtu() : LinearResiduals<double>(10, 3, 2) {}
  void jacobian_transpose_vector(const Vector<double>& x, const Vector<double>& u, Vector<double>& out) {
    LinearResiduals<double>::jacobian_transpose_vector(x, u, out);
    out *= 1.01;
  }
};
struct BrokenDense : LinearResiduals<double> {
  BrokenDense() : LinearResiduals<double>(10, 3, 2) {}
  void jacobian(const Vector<double>& x, hesse::Matrix<double>& j) {
    LinearResiduals<double>::jacobian(x, j);
    j(4, 1) += 1e-3;
  }
};
struct WrongSize : LinearResiduals<double> {
  WrongSize() : LinearResiduals<double>(10, 3, 2) {}
  void jacobian_vector(const Vector<double>&, const Vector<double>&, Vector<double>& out) {
    out.setZero(9);
  }
};

TEST(ResidualCheck, DetectsBrokenProducts) {
  const Vector<double> x = vec({0.3, -0.2, 1});
  BrokenJv jv;
  auto report = hesse::check_residuals(jv, x);
  EXPECT_FALSE(report.entries[0].passed) << report.report();  // jacobian_vector
  EXPECT_FALSE(report.entries[1].passed) << report.report();  // adjoint
  EXPECT_FALSE(report.entries[2].passed) << report.report();  // dense J v vs jacobian_vector
  BrokenJtu jtu;
  report = hesse::check_residuals(jtu, x);
  EXPECT_TRUE(report.entries[0].passed) << report.report();
  EXPECT_FALSE(report.entries[1].passed) << report.report();
  EXPECT_TRUE(report.entries[2].passed) << report.report();
  BrokenDense dense;
  report = hesse::check_residuals(dense, x);
  EXPECT_TRUE(report.entries[0].passed);
  EXPECT_TRUE(report.entries[1].passed);
  EXPECT_FALSE(report.entries[2].passed) << report.report();
  EXPECT_NE(report.entries[2].detail.find("column 1"), std::string::npos) << report.report();
  WrongSize wrong;
  report = hesse::check_residuals(wrong, x);
  EXPECT_FALSE(report.entries[0].passed);
  EXPECT_NE(report.entries[0].detail.find("9"), std::string::npos) << report.report();
}

TEST(ResidualCheck, WrongDimensionThrows) {
  RosenbrockResiduals model;
  EXPECT_THROW(hesse::check_residuals(model, vec({1, 2, 3})), hesse::InvalidArgument);
}

TEST(LeastSquaresObjective, ValueGradientAndGaussNewtonMatchTheMatrices) {
  LinearResiduals<double> model(20, 4, 3);
  hesse::LeastSquaresObjective objective(model);
  const Vector<double> x = Vector<double>::LinSpaced(4, -1, 2);
  const Vector<double> v = Vector<double>::LinSpaced(4, 0.5, -0.5);
  Vector<double> g, gv;
  const double f = objective.value_and_gradient(x, &g);
  const Vector<double> r = model.a * x - model.b;
  EXPECT_NEAR(f, 0.5 * r.squaredNorm(), 1e-12 * f);
  EXPECT_LT((g - model.a.transpose() * r).norm(), 1e-12 * g.norm());
  EXPECT_LT((objective.last_residuals() - r).norm(), 1e-12 * r.norm());
  objective.gauss_newton_vector(x, v, gv);
  const Vector<double> expected = model.a.transpose() * (model.a * v);
  EXPECT_LT((gv - expected).norm(), 1e-12 * expected.norm());
  EXPECT_EQ(objective.dimension(), 4);
  EXPECT_EQ(objective.num_residuals(), 20);
  EXPECT_DOUBLE_EQ(objective.value(x), f);
}

TEST(LeastSquaresObjective, FloatModelPassesInFloat) {
  auto fit = ExponentialFit<float>::make(50, 2.5, -1.3, 0.5, 0.05, 7);
  Vector<float> x(3);
  x << 1.0f, -0.5f, 0.0f;
  hesse::DerivativeCheckOptions options;
  options.tolerance = 1e-2;  // float differences: about cbrt(eps)^2 ~ 2e-5 relative, plus round-off
  EXPECT_TRUE(hesse::check_residuals(fit, x, options).passed())
      << hesse::check_residuals(fit, x, options).report();
}

}  // namespace
