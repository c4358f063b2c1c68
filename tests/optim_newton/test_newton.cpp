// Newton, Newton-CG, trust-ncg and trust-exact on problems with a known
// answer: one-step cases, the strict saddle, events, non-finite regions,
// validation messages and the trust-region hard case.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "../common/errors.hpp"
#include "hesse/objective/problems.hpp"
#include "hesse/optim/newton.hpp"
#include "hesse/optim/newton_cg.hpp"
#include "hesse/optim/trust_region.hpp"

namespace {

using namespace hesse;
using optim::IndefiniteStrategy;
using optim::Summary;

long long event_count(const Summary& s, const std::string& name) {
  const auto it = s.events.find(name);
  return it == s.events.end() ? 0 : it->second;
}

TEST(Newton, SquareSolvedInOneStepWithoutLineSearch) {
  problems::OneDimensionalSquare<double> f;  // x^2 + 2x + 1
  Vector<double> x = f.standard_start();
  const Summary s = optim::minimize(f, x, optim::NewtonOptions{.learning_rate = 1, .use_line_search = false});
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_EQ(s.iterations, 1);
  EXPECT_DOUBLE_EQ(x[0], -1.0);  // one Newton step on a quadratic, up to the rounding of the Cholesky solve
  EXPECT_EQ(event_count(s, "positive definite"), 1);
  EXPECT_EQ(s.counts.line_search_trials, 0);
  // With the (default) line search the full step is accepted at once too.
  x = f.standard_start();
  const Summary searched = optim::minimize(f, x, optim::NewtonOptions{});
  EXPECT_EQ(searched.iterations, 1);
  EXPECT_DOUBLE_EQ(x[0], -1.0);
}

TEST(Newton, LearningRateScalesTheStep) {
  problems::OneDimensionalSquare<double> f;
  Vector<double> x = f.standard_start();  // 2
  optim::NewtonOptions o{.learning_rate = 0.5, .use_line_search = false};
  o.termination.max_iterations = 1;
  optim::minimize(f, x, o);
  EXPECT_DOUBLE_EQ(x[0], 0.5);  // 2 - 0.5 * 3
}

TEST(Newton, IllConditionedQuadraticInOneStep) {
  problems::Quadratic<double> f(100, 1e4, 42);
  Vector<double> x = f.standard_start();
  const Summary s = optim::minimize(f, x, optim::NewtonOptions{.use_line_search = false});
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_EQ(s.iterations, 1);
  // |x - x*| <= cond * eps * |x*| up to a small factor.
  EXPECT_LE((x - f.known_minimizer()).norm(), 1e-9 * f.known_minimizer().norm());
}

TEST(NewtonCg, IllConditionedQuadraticWithAtMostNCgIterationsPerStep) {
  problems::Quadratic<double> f(100, 1e4, 42);
  Vector<double> x = f.standard_start();
  int max_inner = 0;
  optim::NewtonCgOptions o{.callback = [&](const optim::IterationRecord& r) {
    max_inner = std::max(max_inner, r.inner_iterations);
    return true;
  }};
  o.termination.gradient_tolerance = 1e-8;
  const Summary s = optim::minimize(f, x, o);
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_LE(max_inner, 100);
  EXPECT_LE(s.counts.hessian_vector, 100LL * s.iterations);
  EXPECT_LE((x - f.known_minimizer()).norm(), 1e-6 * f.known_minimizer().norm());
}

TEST(TrustNcg, IllConditionedQuadraticWithAtMostNCgIterationsPerStep) {
  problems::Quadratic<double> f(100, 1e4, 42);
  Vector<double> x = f.standard_start();
  int max_inner = 0;
  optim::TrustNcgOptions o{.callback = [&](const optim::IterationRecord& r) {
    max_inner = std::max(max_inner, r.inner_iterations);
    return true;
  }};
  o.termination.gradient_tolerance = 1e-8;
  const Summary s = optim::minimize(f, x, o);
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_LE(max_inner, 100);
  EXPECT_LE((x - f.known_minimizer()).norm(), 1e-6 * f.known_minimizer().norm());
}

TEST(TrustExact, IllConditionedQuadratic) {
  problems::Quadratic<double> f(100, 1e4, 42);
  Vector<double> x = f.standard_start();
  optim::TrustExactOptions o;
  o.termination.gradient_tolerance = 1e-8;
  const Summary s = optim::minimize(f, x, o);
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_LE((x - f.known_minimizer()).norm(), 1e-6 * f.known_minimizer().norm());
  EXPECT_EQ(event_count(s, "positive definite"), s.counts.hessian);  // a convex quadratic
}

// ---------------------------------------------------------------- strict saddle

TEST(StrictSaddle, PlainNewtonStallsAtTheSaddle) {
  problems::StrictSaddle<double> f;
  Vector<double> x = f.standard_start();  // (0, 0.5): g = (0, 0.5) is orthogonal to v_1 = e_x
  const Summary s = optim::minimize(f, x, optim::NewtonOptions{.strategy = IndefiniteStrategy::None});
  // The gradient test holds at the saddle (0, 0) ...
  EXPECT_EQ(s.termination, optim::TerminationReason::GradientTolerance) << s.full_report();
  EXPECT_LE((x - f.saddle_point()).norm(), 1e-12);
  // ... which is not a minimum: the Hessian there is indefinite.
  Matrix<double> H;
  f.hessian(x, H);
  Eigen::SelfAdjointEigenSolver<Matrix<double>> eigen(H);
  EXPECT_LT(eigen.eigenvalues()[0], 0.0);
  EXPECT_GT(eigen.eigenvalues()[1], 0.0);
  EXPECT_EQ(event_count(s, "indefinite"), s.iterations);
  EXPECT_EQ(event_count(s, "strategy: none"), s.iterations);
}

void expect_minimizer(const problems::StrictSaddle<double>& f, const Vector<double>& x, const Summary& s) {
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_NEAR(std::abs(x[0]), 1.0, 1e-8) << s.full_report();
  EXPECT_NEAR(x[1], 0.0, 1e-8);
  EXPECT_NEAR(s.final_value, f.known_minimum(), 1e-14);
}

TEST(StrictSaddle, EveryIndefiniteStrategyReachesAMinimizer) {
  problems::StrictSaddle<double> f;
  struct Variant {
    IndefiniteStrategy strategy;
    optim::EigenvalueRule rule;
    const char* event;
  };
  for (const Variant v : {Variant{IndefiniteStrategy::LevenbergShift, optim::EigenvalueRule::Absolute,
                                  "strategy: levenberg shift"},
                          Variant{IndefiniteStrategy::EigenvalueModification, optim::EigenvalueRule::Absolute,
                                  "strategy: eigenvalue modification"},
                          Variant{IndefiniteStrategy::EigenvalueModification, optim::EigenvalueRule::Clip,
                                  "strategy: eigenvalue modification"},
                          Variant{IndefiniteStrategy::NegativeCurvature, optim::EigenvalueRule::Absolute,
                                  "strategy: negative curvature"}}) {
    SCOPED_TRACE(v.event);
    Vector<double> x = f.standard_start();
    const Summary s = optim::minimize(f, x, optim::NewtonOptions{.strategy = v.strategy, .eigenvalue_rule = v.rule});
    expect_minimizer(f, x, s);
    EXPECT_GE(event_count(s, "indefinite"), 1);
    EXPECT_EQ(event_count(s, v.event), event_count(s, "indefinite") + event_count(s, "negative definite") +
                                           event_count(s, "positive semidefinite"));
    EXPECT_GE(event_count(s, "negative curvature step"), 1);
    EXPECT_EQ(event_count(s, "positive definite") + event_count(s, "indefinite"), s.iterations);
  }
}

TEST(StrictSaddle, WithoutTheEscapeSaddleFreeNewtonAlsoStalls) {
  // |lambda| alone maps g = (0, 0.5) to the step (0, -0.5): the saddle.
  problems::StrictSaddle<double> f;
  Vector<double> x = f.standard_start();
  const Summary s = optim::minimize(
      f, x, optim::NewtonOptions{.strategy = IndefiniteStrategy::EigenvalueModification, .escape_saddles = false});
  EXPECT_LE((x - f.saddle_point()).norm(), 1e-12) << s.full_report();
}

TEST(StrictSaddle, BothTrustRegionMethodsReachAMinimizer) {
  problems::StrictSaddle<double> f;
  Vector<double> x = f.standard_start();
  const Summary exact = optim::minimize(f, x, optim::TrustExactOptions{});
  expect_minimizer(f, x, exact);
  EXPECT_GE(event_count(exact, "hard case"), 1);  // g is orthogonal to v_1 at the start
  x = f.standard_start();
  const Summary ncg = optim::minimize(f, x, optim::TrustNcgOptions{});
  expect_minimizer(f, x, ncg);
  EXPECT_GE(event_count(ncg, "saddle escaped"), 1);
  // Without the second-order check Steihaug's Krylov space never leaves x = 0.
  x = f.standard_start();
  optim::minimize(f, x, optim::TrustNcgOptions{.second_order_check_steps = 0});
  EXPECT_LE((x - f.saddle_point()).norm(), 1e-6);
}

// ---------------------------------------------------------------- float

TEST(Float, RosenbrockInSinglePrecision) {
  problems::Rosenbrock<float> f(2);
  optim::TerminationOptions t;
  t.gradient_tolerance = 1e-3;
  Vector<float> x = f.standard_start();
  EXPECT_TRUE(optim::minimize(f, x, optim::NewtonOptions{.termination = t}).converged());
  EXPECT_NEAR(x[0], 1.0f, 1e-3f);
  x = f.standard_start();
  EXPECT_TRUE(optim::minimize(f, x, optim::NewtonCgOptions{.termination = t}).converged());
  EXPECT_NEAR(x[0], 1.0f, 1e-3f);
  x = f.standard_start();
  EXPECT_TRUE(optim::minimize(f, x, optim::TrustNcgOptions{.termination = t}).converged());
  EXPECT_NEAR(x[0], 1.0f, 1e-3f);
  x = f.standard_start();
  EXPECT_TRUE(optim::minimize(f, x, optim::TrustExactOptions{.termination = t}).converged());
  EXPECT_NEAR(x[0], 1.0f, 1e-3f);
}

// ---------------------------------------------------------------- NaN regions

// f = (x - 3)^2 for x < 2, NaN beyond: the minimum of the finite region is
// approached from the left; a full Newton step from x = 0 lands at 3 (NaN).
struct NanWall {
  using Scalar = double;
  Index dimension() const { return 1; }
  double value(const Vector<double>& x) { return value_and_gradient(x, nullptr); }
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) {
    if (g) g->resize(1);
    if (x[0] >= 2) {
      if (g) (*g)[0] = std::numeric_limits<double>::quiet_NaN();
      return std::numeric_limits<double>::quiet_NaN();
    }
    if (g) (*g)[0] = 2 * (x[0] - 3);
    return (x[0] - 3) * (x[0] - 3);
  }
  void hessian_vector(const Vector<double>&, const Vector<double>& v, Vector<double>& out) { out = 2 * v; }
  void hessian(const Vector<double>&, Matrix<double>& H) { H.setConstant(1, 1, 2.0); }
};

void expect_nan_handled(const Summary& s, const Vector<double>& x) {
  EXPECT_TRUE(std::isfinite(s.final_value)) << s.full_report();
  EXPECT_LT(x[0], 2.0);
  EXPECT_GT(x[0], 0.0);
  EXPECT_LT(s.final_value, 9.0);
  EXPECT_GE(event_count(s, "non-finite trial"), 1) << s.full_report();
}

TEST(NonFinite, EverySolverShrinksAndKeepsTheBestPoint) {
  NanWall f;
  optim::TerminationOptions t;
  t.max_iterations = 30;
  Vector<double> x = Vector<double>::Zero(1);
  expect_nan_handled(optim::minimize(f, x, optim::NewtonOptions{.termination = t}), x);
  x.setZero();
  expect_nan_handled(optim::minimize(f, x, optim::NewtonOptions{.termination = t, .use_line_search = false}), x);
  x.setZero();
  expect_nan_handled(optim::minimize(f, x, optim::NewtonCgOptions{.termination = t}), x);
  x.setZero();
  expect_nan_handled(optim::minimize(f, x, optim::TrustNcgOptions{.termination = t, .initial_radius = 5}), x);
  x.setZero();
  expect_nan_handled(optim::minimize(f, x, optim::TrustExactOptions{.termination = t, .initial_radius = 5}), x);
}

TEST(NonFinite, NaNHessianIsANumericalFailureNotACrash) {
  struct BadHessian : NanWall {
    void hessian(const Vector<double>&, Matrix<double>& H) {
      H.setConstant(1, 1, std::numeric_limits<double>::quiet_NaN());
    }
  } f;
  Vector<double> x = Vector<double>::Zero(1);
  const Summary s = optim::minimize(f, x, optim::NewtonOptions{});
  EXPECT_EQ(s.termination, optim::TerminationReason::NumericalFailure);
  EXPECT_EQ(x[0], 0.0);  // the best point seen: the start
  x.setZero();
  EXPECT_EQ(optim::minimize(f, x, optim::TrustExactOptions{}).termination,
            optim::TerminationReason::NumericalFailure);
}

// ---------------------------------------------------------------- trust-region events

TEST(TrustRegion, RejectedStepsAreEventsAndRecords) {
  problems::Rosenbrock<double> f(2);
  Vector<double> x = f.standard_start();
  const Summary s = optim::minimize(f, x, optim::TrustExactOptions{.initial_radius = 10});
  EXPECT_TRUE(s.converged());
  const long long rejected = event_count(s, "step rejected");
  EXPECT_GE(rejected, 1) << s.full_report();
  long long in_history = 0;
  for (const auto& r : s.history) {
    if (r.event == "step rejected") {
      ++in_history;
      EXPECT_EQ(r.step_norm, 0.0);
    }
  }
  EXPECT_EQ(in_history, rejected);
  // Every iteration classified the Hessian once (rejections reuse it).
  long long signs = 0;
  for (const char* sign : {"positive definite", "positive semidefinite", "indefinite", "negative definite"})
    signs += event_count(s, sign);
  EXPECT_EQ(signs, s.counts.hessian);
  EXPECT_EQ(s.counts.hessian, s.iterations - rejected);
}

// The trust-region hard case: H = diag(-2, 1, 3) + a linear term orthogonal to
// e_1. f(x) = 1/2 x^T H x + g^T x + x_1^4 (bounded below by the quartic).
struct HardCase {
  using Scalar = double;
  Index dimension() const { return 3; }
  double value(const Vector<double>& x) { return value_and_gradient(x, nullptr); }
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) {
    const Vector<double> d = (Vector<double>(3) << -2, 1, 3).finished();
    const Vector<double> b = (Vector<double>(3) << 0, 1, 1).finished();
    if (g) *g = d.cwiseProduct(x) + b + Vector<double>((Vector<double>(3) << 4 * std::pow(x[0], 3), 0, 0).finished());
    return 0.5 * x.dot(d.cwiseProduct(x)) + b.dot(x) + std::pow(x[0], 4);
  }
  void hessian_vector(const Vector<double>& x, const Vector<double>& v, Vector<double>& out) {
    Matrix<double> H;
    hessian(x, H);
    out = H * v;
  }
  void hessian(const Vector<double>& x, Matrix<double>& H) {
    H = Vector<double>((Vector<double>(3) << -2 + 12 * x[0] * x[0], 1, 3).finished()).asDiagonal();
  }
};

TEST(TrustExact, HardCaseAtTheStart) {
  // At x = 0: H = diag(-2, 1, 3), g = (0, 1, 1) orthogonal to v_1 = e_1, and
  // |p(2)| = |(0, 1/3, 1/5)| < radius = 1: the hard case.
  HardCase f;
  Vector<double> x = Vector<double>::Zero(3);
  const Summary s = optim::minimize(f, x, optim::TrustExactOptions{.initial_radius = 1});
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_GE(event_count(s, "hard case"), 1);
  // Minimiser: x_1 = +-sqrt(2)/2 (4 x^3 = 2 x), x_2 = -1, x_3 = -1/3. The
  // default |g|_inf <= 1e-6 with curvatures >= 1 puts x within 1e-6 of it.
  EXPECT_NEAR(std::abs(x[0]), std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(x[1], -1.0, 1e-6);
  EXPECT_NEAR(x[2], -1.0 / 3, 1e-6);
}

// ---------------------------------------------------------------- validation

template <class Options>
std::string message_of(const Options& options) {
  return hesse::testing::invalid_argument_message([&] { options.validate(); });
}

TEST(Validate, MessagesNameFieldValueAndRule) {
  EXPECT_EQ(message_of(optim::NewtonOptions{.learning_rate = -1}),
            "NewtonOptions.learning_rate = -1: must be finite and > 0");
  EXPECT_EQ(message_of(optim::NewtonOptions{.shift_growth = 0.5}),
            "NewtonOptions.shift_growth = 0.5: must be finite and > 1");
  EXPECT_EQ(message_of(optim::NewtonOptions{.eigenvalue_floor = 0}),
            "NewtonOptions.eigenvalue_floor = 0: must be in (0, 1)");
  EXPECT_NE(message_of(optim::NewtonOptions{.termination = {.max_iterations = -1}}).find("max_iterations = -1"),
            std::string::npos);
  EXPECT_EQ(message_of(optim::NewtonCgOptions{.forcing_max = 1}),
            "NewtonCgOptions.forcing_max = 1: must be in (0, 1)");
  EXPECT_NE(message_of(optim::NewtonCgOptions{.preconditioner = optim::NewtonCgPreconditioner::UserDiagonal})
                .find("UserDiagonal needs diagonal_preconditioner"),
            std::string::npos);
  EXPECT_EQ(message_of(optim::TrustNcgOptions{.acceptance = 0.5}),
            "TrustNcgOptions.acceptance = 0.5: must be in [0, 1/4) (N&W Alg. 4.1)");
  EXPECT_EQ(message_of(optim::TrustExactOptions{.initial_radius = 10, .max_radius = 1}),
            "TrustExactOptions.max_radius = 1: must be finite and >= initial_radius");
  EXPECT_EQ(message_of(optim::NewtonOptions{}), "");
  // minimize validates before any work.
  problems::Rosenbrock<double> f(2);
  Vector<double> x = f.standard_start();
  EXPECT_THROW(optim::minimize(f, x, optim::NewtonOptions{.learning_rate = 0}), InvalidArgument);
  EXPECT_EQ(x, f.standard_start());
}

TEST(NewtonCg, UserDiagonalPreconditioner) {
  problems::BrownBadlyScaled<double> f;
  Vector<double> x = f.standard_start();
  optim::NewtonCgOptions o{.preconditioner = optim::NewtonCgPreconditioner::UserDiagonal,
                           .diagonal_preconditioner = [&](const Eigen::VectorXd& at, Eigen::VectorXd& d) {
                             Matrix<double> H;
                             f.hessian(at, H);
                             d = H.diagonal();
                           }};
  o.termination.gradient_tolerance = 1e-8;
  const Summary s = optim::minimize(f, x, o);
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_NEAR(x[0], 1e6, 1e-6 * 1e6);
  EXPECT_NEAR(x[1], 2e-6, 1e-6 * 2e-6);
}

TEST(NewtonCg, NegativeCurvatureFallsBackToSteepestDescent) {
  // At (0.1, 0) on the strict saddle, H = diag(-0.97, 1) and g = (-0.099, 0):
  // CG's first direction d_0 = -g already has negative curvature.
  problems::StrictSaddle<double> f;
  Vector<double> x = (Vector<double>(2) << 0.1, 0.0).finished();
  const Summary s = optim::minimize(f, x, optim::NewtonCgOptions{});
  EXPECT_GE(event_count(s, "negative curvature in CG"), 1);
  EXPECT_GE(event_count(s, "steepest descent fallback"), 1);
  EXPECT_TRUE(s.converged()) << s.full_report();
  EXPECT_NEAR(x[0], 1.0, 1e-6);
}

}  // namespace
