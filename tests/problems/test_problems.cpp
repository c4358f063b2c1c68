// The test-problem catalogue: every problem's derivatives agree with finite
// differences (at the standard start and at random points), its values at the
// start match the values MGH (1981) tabulate, and its known minimiser is a
// stationary point with a positive semidefinite Hessian and the stated value.
#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>
#include <cmath>
#include <limits>

#include "hesse/core/rng.hpp"
#include "hesse/objective/concepts.hpp"
#include "hesse/objective/derivative_check.hpp"
#include "hesse/objective/problems.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;
namespace problems = hesse::problems;

// One test case: a problem type and how to build it.
template <class P>
struct Case {
  using Problem = P;
  static P make() { return P(); }
};
template <class T>
struct Case<problems::Quadratic<T>> {
  using Problem = problems::Quadratic<T>;
  static Problem make() { return Problem(20, 1e4, 7); }
};
template <class T>
struct Case<problems::Rosenbrock<T>> {
  using Problem = problems::Rosenbrock<T>;
  static Problem make() { return Problem(10); }
};

template <class C>
class ProblemTest : public ::testing::Test {};
using AllCases = ::testing::Types<
    Case<problems::Quadratic<double>>, Case<problems::OneDimensionalSquare<double>>,
    Case<problems::Rosenbrock<double>>, Case<problems::PowellSingular<double>>,
    Case<problems::Wood<double>>, Case<problems::Beale<double>>,
    Case<problems::BrownBadlyScaled<double>>, Case<problems::StrictSaddle<double>>,
    Case<problems::Quadratic<float>>, Case<problems::OneDimensionalSquare<float>>,
    Case<problems::Rosenbrock<float>>, Case<problems::PowellSingular<float>>,
    Case<problems::Wood<float>>, Case<problems::Beale<float>>,
    Case<problems::BrownBadlyScaled<float>>, Case<problems::StrictSaddle<float>>>;
TYPED_TEST_SUITE(ProblemTest, AllCases);

template <class T>
constexpr double kEps = std::numeric_limits<T>::epsilon();

// Relative tolerance of the derivative check: the differences are formed in
// the problem's own precision, so float gets a correspondingly looser bound.
template <class T>
hesse::DerivativeCheckOptions check_options() {
  hesse::DerivativeCheckOptions options;
  options.tolerance = std::is_same_v<T, double> ? 1e-6 : 2e-2;
  options.num_directions = 4;
  return options;
}

TYPED_TEST(ProblemTest, SatisfiesEveryTierButGaussNewton) {
  using P = typename TypeParam::Problem;
  static_assert(hesse::DifferentiableObjective<P>);
  static_assert(hesse::HessianVectorObjective<P>);
  static_assert(hesse::DenseHessianObjective<P>);
  static_assert(!hesse::GaussNewtonObjective<P>);
}

TYPED_TEST(ProblemTest, DerivativesPassAtTheStandardStart) {
  using P = typename TypeParam::Problem;
  using T = typename P::Scalar;
  P problem = TypeParam::make();
  const Vector<T> start = problem.standard_start();
  ASSERT_EQ(start.size(), problem.dimension());
  const auto report = hesse::check_derivatives(problem, start, check_options<T>());
  EXPECT_TRUE(report.passed()) << report.report();
  EXPECT_EQ(report.entries.size(), 4u);
}

TYPED_TEST(ProblemTest, DerivativesPassAtRandomPoints) {
  using P = typename TypeParam::Problem;
  using T = typename P::Scalar;
  P problem = TypeParam::make();
  hesse::Rng rng(2024);
  const Vector<T> start = problem.standard_start();
  for (int trial = 0; trial < 3; ++trial) {
    Vector<T> noise(problem.dimension());
    hesse::fill_uniform<T>(rng, noise, T(-1), T(1));
    const Vector<T> x = start + noise;
    const auto report = hesse::check_derivatives(problem, x, check_options<T>());
    EXPECT_TRUE(report.passed()) << "trial " << trial << "\n" << report.report();
  }
}

TYPED_TEST(ProblemTest, KnownMinimizerIsStationaryWithPsdHessianAndStatedValue) {
  using P = typename TypeParam::Problem;
  using T = typename P::Scalar;
  P problem = TypeParam::make();
  const Vector<T> minimizer = problem.known_minimizer();
  ASSERT_EQ(minimizer.size(), problem.dimension());
  Vector<T> g;
  const T value = problem.value_and_gradient(minimizer, &g);
  Matrix<T> h;
  problem.hessian(minimizer, h);
  const Matrix<double> hd = h.template cast<double>();
  const Vector<double> xd = minimizer.template cast<double>();

  // x* is rounded to T, so grad f(x*) ~ H (x* rounding): bounded by
  // eps |H| |x*| (entrywise), plus the rounding of the gradient's own terms.
  const double gradient_bound =
      200 * kEps<T> * ((hd.cwiseAbs() * xd.cwiseAbs()).maxCoeff() + hd.cwiseAbs().maxCoeff() + 1);
  EXPECT_LE(g.template cast<double>().template lpNorm<Eigen::Infinity>(), gradient_bound);

  const Eigen::SelfAdjointEigenSolver<Matrix<double>> eigen(hd);
  EXPECT_GE(eigen.eigenvalues().minCoeff(), -1e3 * kEps<T> * hd.norm()) << "H(x*) =\n" << hd;

  const double minimum = static_cast<double>(problem.known_minimum());
  EXPECT_NEAR(static_cast<double>(value), minimum, 1e3 * kEps<T> * (1 + std::abs(minimum)));
  EXPECT_LE(static_cast<double>(value), static_cast<double>(problem.value(problem.standard_start())));
}

TYPED_TEST(ProblemTest, HessianVectorAgreesWithDenseHessianAndValueWithGradientCall) {
  using P = typename TypeParam::Problem;
  using T = typename P::Scalar;
  P problem = TypeParam::make();
  hesse::Rng rng(5);
  Vector<T> x = problem.standard_start();
  Vector<T> v(problem.dimension());
  hesse::fill_normal<T>(rng, v);
  Matrix<T> h;
  problem.hessian(x, h);
  Vector<T> hv;
  problem.hessian_vector(x, v, hv);
  const Vector<T> dense = h * v;
  EXPECT_LE((hv - dense).norm(), 10 * kEps<T> * h.norm() * v.norm());
  Vector<T> g;
  EXPECT_EQ(problem.value(x), problem.value_and_gradient(x, &g));
}

TYPED_TEST(ProblemTest, WrongSizeIsRejected) {
  using P = typename TypeParam::Problem;
  using T = typename P::Scalar;
  P problem = TypeParam::make();
  const Vector<T> wrong = Vector<T>::Zero(problem.dimension() + 1);
  Vector<T> g;
  EXPECT_THROW(problem.value_and_gradient(wrong, &g), hesse::InvalidArgument);
  Matrix<T> h;
  EXPECT_THROW(problem.hessian(wrong, h), hesse::InvalidArgument);
}

// f(x0) as tabulated by More, Garbow & Hillstrom (1981).
TEST(ProblemValues, StartingValuesMatchMoreGarbowHillstrom) {
  problems::Rosenbrock<double> rosenbrock;
  EXPECT_NEAR(rosenbrock.value(rosenbrock.standard_start()), 24.2, 1e-12);
  problems::PowellSingular<double> powell;
  EXPECT_NEAR(powell.value(powell.standard_start()), 215.0, 1e-12);
  problems::Wood<double> wood;
  EXPECT_NEAR(wood.value(wood.standard_start()), 19192.0, 1e-9);
  problems::Beale<double> beale;
  EXPECT_NEAR(beale.value(beale.standard_start()), 14.203125, 1e-12);
  problems::BrownBadlyScaled<double> brown;
  EXPECT_NEAR(brown.value(brown.standard_start()) / 1e12, 0.999998, 1e-6);
}

TEST(ProblemValues, ChainedRosenbrockCouplesNeighbours) {
  problems::Rosenbrock<double> f(4);
  const Vector<double> x = f.standard_start();
  // Three terms: (x1, x2), (x2, x3), (x3, x4) of (-1.2, 1, -1.2, 1).
  const double pair_a = 100 * std::pow(1 - 1.44, 2) + std::pow(2.2, 2);
  const double pair_b = 100 * std::pow(-1.2 - 1, 2) + 0;
  EXPECT_NEAR(f.value(x), 2 * pair_a + pair_b, 1e-10);
  EXPECT_EQ(x, (Vector<double>(4) << -1.2, 1, -1.2, 1).finished());
  EXPECT_THROW(problems::Rosenbrock<double>(1), hesse::InvalidArgument);
}

TEST(ProblemValues, QuadraticHasTheRequestedSpectrumAndMinimizer) {
  const problems::Quadratic<double> f(30, 1e4, 3);
  const Eigen::SelfAdjointEigenSolver<Matrix<double>> eigen(f.matrix());
  EXPECT_NEAR(eigen.eigenvalues().minCoeff(), 1.0, 1e-9);
  EXPECT_NEAR(eigen.eigenvalues().maxCoeff(), 1e4, 1e-7);
  const Vector<double> residual = f.matrix() * f.known_minimizer() - f.rhs();
  EXPECT_LE(residual.norm(), 1e-9 * f.rhs().norm());
  // Same seed, same problem; another seed, another problem.
  EXPECT_EQ(problems::Quadratic<double>(30, 1e4, 3).matrix(), f.matrix());
  EXPECT_NE(problems::Quadratic<double>(30, 1e4, 4).rhs(), f.rhs());
  EXPECT_THROW(problems::Quadratic<double>(0), hesse::InvalidArgument);
  EXPECT_THROW(problems::Quadratic<double>(5, 0.5), hesse::InvalidArgument);
}

TEST(ProblemValues, StrictSaddleAttractsPureNewtonFromItsStart) {
  problems::StrictSaddle<double> f;
  Vector<double> x = f.standard_start();
  Vector<double> g;
  Matrix<double> h;
  f.value_and_gradient(x, &g);
  f.hessian(x, h);
  EXPECT_LT(h(0, 0), 0.0);  // indefinite at the start
  x -= h.ldlt().solve(g);   // the pure Newton step
  EXPECT_EQ(x, f.saddle_point());
  f.value_and_gradient(x, &g);
  EXPECT_EQ(g.norm(), 0.0);  // Newton stays at the saddle
  f.hessian(x, h);
  EXPECT_EQ(h(0, 0), -1.0);  // a strict saddle: a negative eigenvalue
  EXPECT_LT(f.known_minimum(), f.value(f.saddle_point()));
  Vector<double> mirrored = f.known_minimizer();
  mirrored[0] = -mirrored[0];
  EXPECT_EQ(f.value(mirrored), f.known_minimum());
}

}  // namespace
