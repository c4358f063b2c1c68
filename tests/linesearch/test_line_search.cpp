// Line searches on one-dimensional functions with known answers, the test
// functions of More & Thuente (1994, section 5), and Rosenbrock's function:
// the accepted step satisfies its conditions, the counts agree with the
// evaluator, failures leave the best point, non-finite trials are retreated
// from and recorded.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "../common/errors.hpp"
#include "hesse/linesearch/line_search.hpp"
#include "hesse/objective/problems.hpp"

namespace {

using hesse::Index;
using hesse::Vector;
using hesse::linesearch::LineSearchKind;
using hesse::linesearch::LineSearchOptions;
using hesse::linesearch::LineSearchResult;

// f(x) = phi(x) of one variable, with its derivative.
struct OneDimensional {
  using Scalar = double;
  std::function<double(double)> phi;
  std::function<double(double)> slope;

  Index dimension() const { return 1; }
  double value(const Vector<double>& x) { return phi(x[0]); }
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) {
    if (g) g->setConstant(1, slope(x[0]));
    return phi(x[0]);
  }
};

OneDimensional shifted_square() {  // (x - 3)^2
  return {[](double t) { return (t - 3) * (t - 3); }, [](double t) { return 2 * (t - 3); }};
}

// The line search from x = 0 along d = +1 (or `direction`), with a fresh evaluator.
template <class F>
struct Search {
  F f;
  hesse::optim::TerminationOptions termination;
  hesse::optim::Summary summary;
  hesse::optim::Evaluator<F> evaluator{f, termination, summary};
  Vector<typename F::Scalar> x_new, g_new;
  typename F::Scalar f_new = 0;

  explicit Search(F function) : f(std::move(function)) {}

  LineSearchResult run(const Vector<double>& x, const Vector<double>& direction, double initial_step,
                       const LineSearchOptions& options) {
    Vector<double> g;
    const double fx = f.value_and_gradient(x, &g);
    return hesse::linesearch::line_search(evaluator, x, fx, g, direction, initial_step, options,
                                          x_new, f_new, g_new);
  }
  LineSearchResult run(double initial_step, const LineSearchOptions& options) {
    return run(Vector<double>::Zero(1), Vector<double>::Ones(1), initial_step, options);
  }
};

LineSearchOptions armijo() {
  LineSearchOptions options;
  options.kind = LineSearchKind::Armijo;
  return options;
}
LineSearchOptions wolfe(double c1 = 1e-4, double c2 = 0.9) {
  LineSearchOptions options;
  options.kind = LineSearchKind::StrongWolfe;
  options.sufficient_decrease = c1;
  options.curvature = c2;
  return options;
}

// phi(a) <= phi(0) + c1 a phi'(0)   and   |phi'(a)| <= c2 |phi'(0)|.
void expect_strong_wolfe(const OneDimensional& f, double step, double c1, double c2) {
  const double value0 = f.phi(0);
  const double slope0 = f.slope(0);
  EXPECT_LE(f.phi(step), value0 + c1 * step * slope0) << "sufficient decrease at " << step;
  EXPECT_LE(std::abs(f.slope(step)), c2 * std::abs(slope0)) << "curvature at " << step;
}

TEST(Armijo, AcceptsTheInitialStepWhenItDecreasesEnough) {
  Search search(shifted_square());
  const LineSearchResult result = search.run(1.0, armijo());
  EXPECT_TRUE(result.success) << result.message;
  EXPECT_EQ(result.step, 1.0);
  EXPECT_EQ(result.trials, 1);
  EXPECT_EQ(search.x_new[0], 1.0);
  EXPECT_EQ(search.f_new, 4.0);
  EXPECT_EQ(search.g_new[0], -4.0);
}

TEST(Armijo, QuadraticInterpolationFindsTheMinimizerOfAQuadratic) {
  // phi(10) = 49 > 9: the quadratic through phi(0), phi'(0), phi(10) is phi
  // itself, its minimiser 3 lies in the safeguard [1, 5], and is accepted.
  Search search(shifted_square());
  const LineSearchResult result = search.run(10.0, armijo());
  EXPECT_TRUE(result.success) << result.message;
  EXPECT_NEAR(result.step, 3.0, 1e-12);
  EXPECT_EQ(result.trials, 2);
  EXPECT_NEAR(search.f_new, 0.0, 1e-20);
  EXPECT_EQ(search.summary.counts.value, 2);
  EXPECT_EQ(search.summary.counts.gradient, 2);
}

TEST(Armijo, SafeguardsKeepEachStepWithinATenthAndAHalfOfTheLast) {
  // A steep wall: the interpolant would jump far below 0.1 a; the safeguard
  // keeps each new step within [0.1 a, 0.5 a].
  OneDimensional f{[](double t) { return -t + (t > 1e-3 ? 1e6 * (t - 1e-3) * (t - 1e-3) : 0.0); },
                   [](double t) { return -1 + (t > 1e-3 ? 2e6 * (t - 1e-3) : 0.0); }};
  Search search(f);
  const LineSearchResult result = search.run(100.0, armijo());
  EXPECT_TRUE(result.success) << result.message;
  EXPECT_LE(result.step, 100.0);
  EXPECT_LE(f.phi(result.step), f.phi(0) + 1e-4 * result.step * f.slope(0));
  // At most log(1e5)/log(2) + 1 halvings separate 100 from the acceptable region.
  EXPECT_LE(result.trials, 18);
}

TEST(Armijo, CubicInterpolationOnAQuarticSatisfiesSufficientDecrease) {
  OneDimensional f{[](double t) { return std::pow(t - 1, 4) - 1; },
                   [](double t) { return 4 * std::pow(t - 1, 3); }};
  Search search(f);
  const LineSearchResult result = search.run(100.0, armijo());
  EXPECT_TRUE(result.success) << result.message;
  EXPECT_LE(f.phi(result.step), f.phi(0) + 1e-4 * result.step * f.slope(0));
  EXPECT_GE(result.trials, 3);  // the quadratic, then at least one cubic
  EXPECT_EQ(search.summary.counts.value, result.trials);
}

TEST(StrongWolfe, AcceptsTheInitialStepWhenBothConditionsHold) {
  Search search(shifted_square());
  const LineSearchResult result = search.run(1.0, wolfe());
  EXPECT_TRUE(result.success) << result.message;
  EXPECT_EQ(result.step, 1.0);
  EXPECT_EQ(result.trials, 1);
}

TEST(StrongWolfe, ExtrapolatesAndInterpolatesToATightCurvatureCondition) {
  for (const double initial : {1e-3, 0.1, 1.0, 10.0, 1000.0}) {
    Search search(shifted_square());
    const LineSearchResult result = search.run(initial, wolfe(1e-4, 0.1));
    ASSERT_TRUE(result.success) << "initial step " << initial << ": " << result.message;
    expect_strong_wolfe(search.f, result.step, 1e-4, 0.1);
    EXPECT_LE(result.trials, 10) << "initial step " << initial;
    EXPECT_EQ(search.x_new[0], result.step);
  }
}

// More & Thuente (1994), section 5: phi(a) = -a / (a^2 + beta), beta = 2,
// with c1 = 0.001, c2 = 0.1; the acceptable steps lie around a = 1.4.
TEST(StrongWolfe, MoreThuenteFunctionOne) {
  const OneDimensional f{[](double a) { return -a / (a * a + 2); },
                         [](double a) { return (a * a - 2) / ((a * a + 2) * (a * a + 2)); }};
  for (const double initial : {1e-3, 1e-1, 1e1, 1e3}) {
    Search search(f);
    const LineSearchResult result = search.run(initial, wolfe(1e-3, 0.1));
    ASSERT_TRUE(result.success) << "initial step " << initial << ": " << result.message;
    expect_strong_wolfe(f, result.step, 1e-3, 0.1);
    EXPECT_LE(result.trials, 12) << "initial step " << initial;
  }
}

// MT function 2: phi(a) = (a + 0.004)^5 - 2 (a + 0.004)^4, minimiser a = 1.596.
// MT take c1 = c2 = 0.1; hesse requires c1 < c2 (N&W Lemma 3.1), so c1 = 0.01.
TEST(StrongWolfe, MoreThuenteFunctionTwo) {
  const OneDimensional f{
      [](double a) { return std::pow(a + 0.004, 5) - 2 * std::pow(a + 0.004, 4); },
      [](double a) { return 5 * std::pow(a + 0.004, 4) - 8 * std::pow(a + 0.004, 3); }};
  for (const double initial : {1e-3, 1e-1, 1e1, 1e3}) {
    Search search(f);
    const LineSearchResult result = search.run(initial, wolfe(0.01, 0.1));
    ASSERT_TRUE(result.success) << "initial step " << initial << ": " << result.message;
    expect_strong_wolfe(f, result.step, 0.01, 0.1);
    EXPECT_LE(result.trials, 16) << "initial step " << initial;
  }
}

TEST(BothKinds, StrongWolfeOrArmijoOnRosenbrockAlongTheNegativeGradient) {
  using Rosenbrock = hesse::problems::Rosenbrock<double>;
  for (const LineSearchKind kind : {LineSearchKind::Armijo, LineSearchKind::StrongWolfe}) {
    for (const double initial : {1e-4, 1e-2, 1.0}) {
      Search search(Rosenbrock(2));
      const Vector<double> x = search.f.standard_start();
      Vector<double> g;
      const double fx = search.f.value_and_gradient(x, &g);
      LineSearchOptions options = kind == LineSearchKind::Armijo ? armijo() : wolfe();
      const LineSearchResult result = search.run(x, -g, initial, options);
      ASSERT_TRUE(result.success) << to_string(kind) << " " << initial << ": " << result.message;
      const double slope0 = -g.squaredNorm();
      EXPECT_LE(search.f_new, fx + 1e-4 * result.step * slope0);
      if (kind == LineSearchKind::StrongWolfe) {
        EXPECT_LE(std::abs(search.g_new.dot(-g)), 0.9 * std::abs(slope0));
      }
      EXPECT_NEAR((search.x_new - (x - result.step * g)).norm(), 0.0, 1e-14);
      EXPECT_EQ(search.summary.counts.value, result.trials);
      EXPECT_EQ(search.summary.counts.gradient, result.trials);
    }
  }
}

class EitherKind : public ::testing::TestWithParam<LineSearchKind> {
 protected:
  LineSearchOptions options() const { return GetParam() == LineSearchKind::Armijo ? armijo() : wolfe(); }
};

TEST_P(EitherKind, NotADescentDirectionFailsWithoutEvaluatingAndStaysAtX) {
  Search search(shifted_square());
  Vector<double> x = Vector<double>::Constant(1, 1.0);
  const LineSearchResult result = search.run(x, -Vector<double>::Ones(1), 1.0, options());
  EXPECT_FALSE(result.success);
  EXPECT_NE(result.message.find("not a descent direction"), std::string::npos) << result.message;
  EXPECT_EQ(result.trials, 0);
  EXPECT_EQ(search.summary.counts.value, 0);
  EXPECT_EQ(search.x_new, x);
  EXPECT_EQ(search.f_new, 4.0);
  EXPECT_EQ(search.g_new[0], -4.0);
}

TEST_P(EitherKind, ExhaustedTrialsLeaveTheBestTrialPoint) {
  // One trial at 5.9: phi = 8.41 < phi(0) = 9 but not enough decrease for
  // c1 = 0.5, and its slope too steep for c2: a failure at the best point.
  Search search(shifted_square());
  LineSearchOptions opts = options();
  opts.sufficient_decrease = 0.5;
  opts.curvature = 0.6;
  opts.max_trials = 1;
  const LineSearchResult result = search.run(5.9, opts);
  EXPECT_FALSE(result.success);
  EXPECT_NE(result.message.find("max_trials = 1"), std::string::npos) << result.message;
  EXPECT_EQ(result.trials, 1);
  EXPECT_DOUBLE_EQ(search.x_new[0], 5.9);
  EXPECT_DOUBLE_EQ(search.f_new, 2.9 * 2.9);
  EXPECT_DOUBLE_EQ(search.g_new[0], 2 * 2.9);
  EXPECT_DOUBLE_EQ(result.step, 5.9);
}

TEST_P(EitherKind, ExhaustedTrialsWithoutDecreaseReturnToX) {
  Search search(shifted_square());
  LineSearchOptions opts = options();
  opts.max_trials = 1;
  const LineSearchResult result = search.run(1e6, opts);  // phi(1e6) >> 9
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.step, 0.0);
  EXPECT_EQ(search.x_new[0], 0.0);
  EXPECT_EQ(search.f_new, 9.0);
  EXPECT_EQ(search.g_new[0], -6.0);
}

TEST_P(EitherKind, NonFiniteTrialsAreShrunkCountedAndRecorded) {
  // (x - 3)^2, but NaN beyond x = 4 (and an infinite gradient beyond 3.5 for
  // good measure).
  OneDimensional f{[](double t) { return t > 4 ? std::nan("") : (t - 3) * (t - 3); },
                   [](double t) {
                     return t > 3.5 ? std::numeric_limits<double>::infinity() : 2 * (t - 3);
                   }};
  Search search(f);
  const LineSearchResult result = search.run(100.0, options());
  EXPECT_TRUE(result.success) << result.message;
  EXPECT_GE(result.non_finite_trials, 1);
  EXPECT_LE(result.step, 3.5);
  EXPECT_TRUE(std::isfinite(search.f_new));
  EXPECT_LT(search.f_new, 9.0);
  EXPECT_EQ(search.summary.events.at("non-finite trial"), result.non_finite_trials);
  EXPECT_EQ(search.summary.counts.value, result.trials);
}

TEST_P(EitherKind, EverythingNonFiniteFailsAtX) {
  OneDimensional f{[](double t) { return t > 0 ? std::nan("") : 1.0 - t; },
                   [](double) { return -1.0; }};
  Search search(f);
  const LineSearchResult result = search.run(1.0, options());
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.non_finite_trials, result.trials);
  EXPECT_EQ(search.x_new[0], 0.0);
  EXPECT_EQ(search.f_new, 1.0);
}

TEST_P(EitherKind, FloatObjective) {
  hesse::problems::Rosenbrock<float> rosenbrock(2);
  hesse::optim::TerminationOptions termination;
  hesse::optim::Summary summary;
  hesse::optim::Evaluator evaluator(rosenbrock, termination, summary);
  const Vector<float> x = rosenbrock.standard_start();
  Vector<float> g;
  const float fx = rosenbrock.value_and_gradient(x, &g);
  Vector<float> x_new, g_new;
  float f_new = 0;
  const Vector<float> direction = -g;
  const LineSearchResult result = hesse::linesearch::line_search(
      evaluator, x, fx, g, direction, 1e-3, options(), x_new, f_new, g_new);
  EXPECT_TRUE(result.success) << result.message;
  EXPECT_LT(f_new, fx);
}

INSTANTIATE_TEST_SUITE_P(LineSearch, EitherKind,
                         ::testing::Values(LineSearchKind::Armijo, LineSearchKind::StrongWolfe),
                         [](const auto& info) {
                           return info.param == LineSearchKind::Armijo ? "Armijo" : "StrongWolfe";
                         });

TEST(LineSearchOptions, ValidateNamesFieldValueAndRule) {
  auto message = [](LineSearchOptions options) {
    return hesse::testing::invalid_argument_message([&] { options.validate("bfgs.line_search"); });
  };
  EXPECT_EQ(message(LineSearchOptions{}), "");
  LineSearchOptions options;
  options.curvature = 1e-5;
  EXPECT_EQ(message(options),
            "bfgs.line_search.curvature = 1e-05: must be in (sufficient_decrease, 1) for the strong "
            "Wolfe conditions");
  options = {};
  options.sufficient_decrease = 0;
  EXPECT_EQ(message(options), "bfgs.line_search.sufficient_decrease = 0: must be in (0, 1)");
  options = {};
  options.max_trials = 0;
  EXPECT_EQ(message(options), "bfgs.line_search.max_trials = 0: must be >= 1");
  options = {};
  options.max_step = options.min_step;
  EXPECT_NE(message(options).find("max_step"), std::string::npos);
  options = armijo();
  options.curvature = 0;  // unused by Armijo
  EXPECT_EQ(message(options), "");

  Search search(shifted_square());
  EXPECT_THROW(search.run(0.0, armijo()), hesse::InvalidArgument);
}

TEST(LineSearchOptions, NamesRoundTrip) {
  using hesse::linesearch::parse_line_search;
  EXPECT_EQ(parse_line_search("armijo"), LineSearchKind::Armijo);
  EXPECT_EQ(parse_line_search(to_string(LineSearchKind::StrongWolfe)), LineSearchKind::StrongWolfe);
  EXPECT_THROW(parse_line_search("wolfe"), hesse::InvalidArgument);
}

}  // namespace
