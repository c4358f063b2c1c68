// Gauss-Newton and Levenberg-Marquardt on problems with known answers:
// linear least squares (closed form), an exponential curve fit (known
// parameters; noisy data against an independent solution and SciPy), and
// MGH problems as residuals (More, Garbow & Hillstrom, ACM TOMS 7(1), 1981).
// Every test states its tolerance; data are seeded.
#include <gtest/gtest.h>

#include <Eigen/QR>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../common/allocation_counter.hpp"
#include "../common/errors.hpp"
#include "hesse/optim/least_squares.hpp"
#include "residual_models.hpp"

namespace {

using hesse::Index;
using hesse::Vector;
using hesse::optim::DampingScaling;
using hesse::optim::GaussNewtonOptions;
using hesse::optim::LevenbergMarquardtOptions;
using hesse::optim::LinearSolver;
using hesse::optim::Summary;
using hesse::optim::TerminationReason;
using namespace lsq_test;

constexpr LinearSolver kSolvers[] = {LinearSolver::DenseCholesky, LinearSolver::DenseQR,
                                     LinearSolver::ConjugateGradient};

Vector<double> vec(std::initializer_list<double> values) {
  Vector<double> v(static_cast<Index>(values.size()));
  Index i = 0;
  for (double value : values) v[i++] = value;
  return v;
}

double relative(const Vector<double>& a, const Vector<double>& b) {
  return (a - b).norm() / std::max(b.norm(), 1e-300);
}

GaussNewtonOptions gn(LinearSolver solver) {
  GaussNewtonOptions options;
  options.linear.linear_solver = solver;
  return options;
}

LevenbergMarquardtOptions lm(LinearSolver solver) {
  LevenbergMarquardtOptions options;
  options.linear.linear_solver = solver;
  return options;
}

// ---------------------------------------------------------------- linear least squares

// r = A x - b, A 60 x 8 Gaussian: the Gauss-Newton step is the least-squares
// solution, so one iteration reaches it (to 1e-10 relative; CG to 1e-8) and
// the gradient test then holds.
TEST(GaussNewton, LinearLeastSquaresInOneIteration) {
  for (const LinearSolver solver : kSolvers) {
    SCOPED_TRACE(hesse::optim::to_string(solver));
    LinearResiduals<double> model(60, 8, 11);
    const Vector<double> closed_form = model.a.colPivHouseholderQr().solve(model.b);
    Vector<double> x = Vector<double>::Zero(8);
    const Summary summary = hesse::optim::minimize(model, x, gn(solver));
    EXPECT_EQ(summary.termination, TerminationReason::GradientTolerance) << summary.full_report();
    EXPECT_EQ(summary.iterations, 1);
    EXPECT_LT(relative(x, closed_form), solver == LinearSolver::ConjugateGradient ? 1e-8 : 1e-10);
    EXPECT_EQ(summary.counts.line_search_trials, 1);
  }
}

// The same residuals without jacobian(): the dense solvers assemble J from n
// products J e_j; CG never forms it.
TEST(GaussNewton, MatrixFreeModelWithEverySolver) {
  for (const LinearSolver solver : kSolvers) {
    SCOPED_TRACE(hesse::optim::to_string(solver));
    MatrixFreeLinearResiduals<double> model(40, 6, 12);
    const Vector<double> closed_form = model.inner.a.colPivHouseholderQr().solve(model.inner.b);
    Vector<double> x = Vector<double>::Zero(6);
    const Summary summary = hesse::optim::minimize(model, x, gn(solver));
    EXPECT_EQ(summary.iterations, 1) << summary.full_report();
    EXPECT_LT(relative(x, closed_form), 1e-8);
    if (solver == LinearSolver::ConjugateGradient) {
      EXPECT_EQ(summary.counts.hessian, 0);
    } else {
      EXPECT_EQ(summary.counts.hessian, 2);                 // at the start and the accepted point
      EXPECT_EQ(summary.counts.gauss_newton_vector, 2 * 6);  // n products J e_j each
    }
  }
}

TEST(LevenbergMarquardt, LinearLeastSquares) {
  for (const LinearSolver solver : kSolvers) {
    for (const DampingScaling scaling : {DampingScaling::Identity, DampingScaling::Marquardt}) {
      SCOPED_TRACE(std::string(hesse::optim::to_string(solver)) +
                   (scaling == DampingScaling::Identity ? " identity" : " marquardt"));
      LinearResiduals<double> model(60, 8, 13);
      const Vector<double> closed_form = model.a.colPivHouseholderQr().solve(model.b);
      Vector<double> x = Vector<double>::Zero(8);
      LevenbergMarquardtOptions options = lm(solver);
      options.scaling = scaling;
      options.termination.gradient_tolerance = 1e-10;
      const Summary summary = hesse::optim::minimize(model, x, options);
      EXPECT_TRUE(summary.converged()) << summary.full_report();
      EXPECT_LT(relative(x, closed_form), 1e-9);
      EXPECT_LE(summary.iterations, 15);
    }
  }
}

// ---------------------------------------------------------------- exponential fit

// y = 2.5 exp(-1.3 t) + 0.5 on 200 points in [0, 4], no noise, start
// (1, -0.5, 0): the parameters are recovered to 1e-8 (relative, 2-norm).
TEST(ExponentialFit, NoiseFreeParametersRecovered) {
  const Vector<double> truth = vec({2.5, -1.3, 0.5});
  auto model = ExponentialFit<double>::make(200, 2.5, -1.3, 0.5, 0.0, 0);
  for (const LinearSolver solver : kSolvers) {
    SCOPED_TRACE(hesse::optim::to_string(solver));
    LevenbergMarquardtOptions lm_options = lm(solver);
    lm_options.termination.gradient_tolerance = 1e-12;
    Vector<double> x = vec({1, -0.5, 0});
    Summary summary = hesse::optim::minimize(model, x, lm_options);
    EXPECT_TRUE(summary.converged()) << summary.full_report();
    EXPECT_LT(relative(x, truth), 1e-8) << x.transpose();

    GaussNewtonOptions gn_options = gn(solver);
    gn_options.termination.gradient_tolerance = 1e-12;
    x = vec({1, -0.5, 0});
    summary = hesse::optim::minimize(model, x, gn_options);
    EXPECT_TRUE(summary.converged()) << summary.full_report();
    EXPECT_LT(relative(x, truth), 1e-8) << x.transpose();
  }
}

TEST(ExponentialFit, FloatRecoversParameters) {
  auto model = ExponentialFit<float>::make(200, 2.5, -1.3, 0.5, 0.0, 0);
  Vector<float> x(3);
  x << 1.0f, -0.5f, 0.0f;
  LevenbergMarquardtOptions options;
  options.termination.gradient_tolerance = 1e-4;
  const Summary summary = hesse::optim::levenberg_marquardt(model, x, options);
  EXPECT_TRUE(summary.converged()) << summary.full_report();
  EXPECT_NEAR(x[0], 2.5f, 1e-3f);
  EXPECT_NEAR(x[1], -1.3f, 1e-3f);
  EXPECT_NEAR(x[2], 0.5f, 1e-3f);
}

// A tightly converged dense LM (Cholesky) is the reference for the other
// solvers on noisy data (sigma = 0.05, seed 3): 1e-8 relative.
Vector<double> reference_noisy_fit(ExponentialFit<double>& model) {
  LevenbergMarquardtOptions options = lm(LinearSolver::DenseCholesky);
  options.termination.gradient_tolerance = 1e-13;
  options.termination.function_tolerance = 0;
  options.termination.step_tolerance = 1e-15;
  Vector<double> x = vec({1, -0.5, 0});
  const Summary summary = hesse::optim::minimize(model, x, options);
  EXPECT_TRUE(summary.converged()) << summary.full_report();
  return x;
}

TEST(ExponentialFit, NoisyAgreesAcrossSolvers) {
  auto model = ExponentialFit<double>::make(500, 2.5, -1.3, 0.5, 0.05, 3);
  const Vector<double> reference = reference_noisy_fit(model);
  EXPECT_LT(relative(reference, vec({2.5, -1.3, 0.5})), 0.05);  // near the truth, not at it
  for (const LinearSolver solver : kSolvers) {
    SCOPED_TRACE(hesse::optim::to_string(solver));
    Vector<double> x = vec({1, -0.5, 0});
    LevenbergMarquardtOptions lm_options = lm(solver);
    lm_options.termination.gradient_tolerance = 1e-10;
    EXPECT_TRUE(hesse::optim::minimize(model, x, lm_options).converged());
    EXPECT_LT(relative(x, reference), 1e-8) << x.transpose();
    x = vec({1, -0.5, 0});
    GaussNewtonOptions gn_options = gn(solver);
    gn_options.termination.gradient_tolerance = 1e-10;
    const Summary summary = hesse::optim::minimize(model, x, gn_options);
    EXPECT_TRUE(summary.converged()) << summary.full_report();
    EXPECT_LT(relative(x, reference), 1e-8) << x.transpose();
  }
}

bool python_has_scipy() {
  return std::system("/usr/bin/python3 -c 'import scipy.optimize' >/dev/null 2>&1") == 0;
}

// SciPy's least_squares (MINPACK's lmder, method='lm') on the same data
// (written with 17 significant digits): hesse's LM matches to 1e-6 relative.
TEST(ExponentialFit, NoisyMatchesScipy) {
  if (!python_has_scipy()) GTEST_SKIP() << "/usr/bin/python3 with scipy not available";
  auto model = ExponentialFit<double>::make(500, 2.5, -1.3, 0.5, 0.05, 3);
  const std::string data = testing::TempDir() + "hesse_lsq_expfit.txt";
  {
    std::ofstream out(data);
    out.precision(17);
    for (Index i = 0; i < model.t.size(); ++i) out << model.t[i] << " " << model.y[i] << "\n";
  }
  const std::string script = testing::TempDir() + "hesse_lsq_expfit.py";
  {
    std::ofstream out(script);
    out << "import numpy as np, sys\n"
           "from scipy.optimize import least_squares\n"
           "t, y = np.loadtxt(sys.argv[1], unpack=True)\n"
           "f = lambda p: p[0] * np.exp(p[1] * t) + p[2] - y\n"
           "def jac(p):\n"
           "    e = np.exp(p[1] * t)\n"
           "    return np.column_stack([e, p[0] * t * e, np.ones_like(t)])\n"
           "s = least_squares(f, [1.0, -0.5, 0.0], jac=jac, method='lm', xtol=1e-15, ftol=1e-15, gtol=1e-15)\n"
           "print(' '.join('%.17g' % v for v in s.x))\n";
  }
  FILE* pipe = popen(("/usr/bin/python3 " + script + " " + data).c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  Vector<double> scipy(3);
  const int read = std::fscanf(pipe, "%lf %lf %lf", &scipy[0], &scipy[1], &scipy[2]);
  ASSERT_EQ(pclose(pipe), 0);
  ASSERT_EQ(read, 3);
  Vector<double> x = vec({1, -0.5, 0});
  LevenbergMarquardtOptions options;
  options.termination.gradient_tolerance = 1e-10;
  EXPECT_TRUE(hesse::optim::minimize(model, x, options).converged());
  EXPECT_LT(relative(x, scipy), 1e-6) << "hesse " << x.transpose() << "\nscipy " << scipy.transpose();
}

// ---------------------------------------------------------------- MGH problems

struct Known {
  Vector<double> x;
  double f;  // hesse's f = 1/2 MGH's f
};

template <class R>
void expect_lm_solves(R model, const Vector<double>& start, const std::vector<Known>& minima,
                      double x_tolerance, double f_tolerance, int max_iterations = 1000,
                      double gradient_tolerance = 1e-6) {
  for (const LinearSolver solver : kSolvers) {
    SCOPED_TRACE(hesse::optim::to_string(solver));
    Vector<double> x = start;
    LevenbergMarquardtOptions options = lm(solver);
    options.termination.max_iterations = max_iterations;
    options.termination.gradient_tolerance = gradient_tolerance;
    const Summary summary = hesse::optim::minimize(model, x, options);
    EXPECT_TRUE(summary.converged()) << summary.full_report();
    bool found = false;
    for (const Known& known : minima) {
      const bool x_close = known.x.size() == 0 || relative(x, known.x) <= x_tolerance ||
                           (x - known.x).norm() <= x_tolerance;
      const bool f_close = std::abs(summary.final_value - known.f) <= f_tolerance * std::max(1.0, known.f);
      found = found || (x_close && f_close);
    }
    EXPECT_TRUE(found) << "x = " << x.transpose() << ", f = " << summary.final_value << "\n"
                       << summary.full_report();
  }
}

// MGH 1 from (-1.2, 1): minimiser (1, 1) to 1e-6, f to 1e-12.
TEST(LevenbergMarquardtMgh, Rosenbrock) {
  expect_lm_solves(RosenbrockResiduals{}, vec({-1.2, 1}), {{vec({1, 1}), 0.0}}, 1e-6, 1e-12);
}

// MGH 13 from (3, -1, 0, 1): J is singular at the minimiser 0, so convergence
// is linear and g ~ |x|^3; with |g|_inf <= 1e-12, |x| <= 1e-3 and f <= 1e-12.
TEST(LevenbergMarquardtMgh, PowellSingular) {
  expect_lm_solves(PowellSingularResiduals{}, vec({3, -1, 0, 1}), {{vec({0, 0, 0, 0}), 0.0}}, 1e-3,
                   1e-12, 1000, 1e-12);
}

// MGH 4 from (1, 1): minimiser (1e6, 2e-6), six orders apart; x to 1e-6 relative.
TEST(LevenbergMarquardtMgh, BrownBadlyScaled) {
  expect_lm_solves(BrownBadlyScaledResiduals{}, vec({1, 1}), {{vec({1e6, 2e-6}), 0.0}}, 1e-6, 1e-10);
}

// MGH 2 from (0.5, -2): either the global minimiser (5, 4) with f = 0 or the
// local one near (11.4128, -0.896805) with MGH f = 48.9842536 (hesse 24.4921268).
TEST(LevenbergMarquardtMgh, FreudensteinRoth) {
  expect_lm_solves(FreudensteinRothResiduals{}, vec({0.5, -2}),
                   {{vec({5, 4}), 0.0}, {vec({11.4127789, -0.896805253}), 24.4921268}}, 1e-6, 1e-7);
}

// MGH 8 from (1, 1, 1): MGH f = 8.21487e-3 (hesse 4.107437e-3); x near
// (0.0824106, 1.13304, 2.34370) to 1e-4 relative.
TEST(LevenbergMarquardtMgh, Bard) {
  expect_lm_solves(BardResiduals{}, vec({1, 1, 1}),
                   {{vec({0.0824106, 1.13304, 2.34370}), 0.5 * 8.21487e-3}}, 1e-4, 1e-5);
}

// MGH 10 from (0.02, 4000, 250), a hard start (f drops by ~1e8 and x1 by a
// factor 4): MGH f = 87.9458 (hesse 43.9729), x near (0.0056096, 6181.35, 345.224).
TEST(LevenbergMarquardtMgh, Meyer) {
  expect_lm_solves(MeyerResiduals{}, vec({0.02, 4000, 250}),
                   {{vec({0.00560964, 6181.35, 345.224}), 0.5 * 87.9458}}, 1e-4, 1e-5, 5000);
}

// ---------------------------------------------------------------- bookkeeping

// The Summary's counts follow from the callback's records: one record per
// iteration plus the start; LM evaluates residuals once per iteration; a
// dense Jacobian at the start and at every accepted point; rejected steps
// are events, with x unchanged.
TEST(LevenbergMarquardt, CountsMatchCallbackRecords) {
  MeyerResiduals model;
  Vector<double> x = vec({0.02, 4000, 250});
  std::vector<hesse::optim::IterationRecord> records;
  LevenbergMarquardtOptions options = lm(LinearSolver::DenseQR);
  options.termination.max_iterations = 5000;
  options.callback = [&](const hesse::optim::IterationRecord& record) {
    records.push_back(record);
    return true;
  };
  const Summary summary = hesse::optim::minimize(model, x, options);
  ASSERT_TRUE(summary.converged()) << summary.full_report();
  // The callback sees every record but that of a step that ends the run by
  // itself (here: a rejected step below step_tolerance).
  ASSERT_EQ(static_cast<int>(summary.history.size()), summary.iterations + 1);
  ASSERT_GE(records.size() + 1, summary.history.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].value, summary.history[i].value);
    EXPECT_EQ(records[i].event, summary.history[i].event);
  }
  records = summary.history;
  long long rejected = 0;
  for (std::size_t i = 1; i < records.size(); ++i) {
    if (records[i].event == "step rejected") {
      ++rejected;
      EXPECT_EQ(records[i].step_norm, 0.0);
      EXPECT_EQ(records[i].value, records[i - 1].value);
    } else {
      EXPECT_LT(records[i].value, records[i - 1].value);
    }
    EXPECT_GT(records[i].step_size, 0.0);  // the damping mu
  }
  EXPECT_GT(rejected, 0);
  const long long accepted = summary.iterations - rejected;
  EXPECT_EQ(summary.events.count("step rejected") ? summary.events.at("step rejected") : 0, rejected);
  EXPECT_EQ(summary.counts.value, 1 + summary.iterations);
  EXPECT_EQ(summary.counts.hessian, 1 + accepted);
  EXPECT_EQ(summary.counts.gradient, 1 + accepted);
  EXPECT_EQ(summary.counts.gauss_newton_vector, 0);
  EXPECT_EQ(summary.final_value, records.back().value);
}

// Rosenbrock residuals from (-1.2, 1): the first Gauss-Newton step overshoots
// (f 12.1 -> 1171), so the line search backtracks.
TEST(GaussNewton, CountsMatchCallbackRecords) {
  for (const LinearSolver solver : kSolvers) {
    SCOPED_TRACE(hesse::optim::to_string(solver));
    RosenbrockResiduals model;
    Vector<double> x = vec({-1.2, 1});
    std::vector<hesse::optim::IterationRecord> records;
    GaussNewtonOptions options = gn(solver);
    options.callback = [&](const hesse::optim::IterationRecord& record) {
      records.push_back(record);
      return true;
    };
    const Summary summary = hesse::optim::minimize(model, x, options);
    EXPECT_TRUE(summary.converged()) << summary.full_report();
    EXPECT_LT(relative(x, vec({1, 1})), 1e-6);
    ASSERT_EQ(static_cast<int>(summary.history.size()), summary.iterations + 1);
    ASSERT_GE(records.size() + 1, summary.history.size());
    long long trials = 0;
    long long cg_iterations = 0;
    for (const auto& record : summary.history) {
      trials += record.line_search_trials;
      cg_iterations += record.inner_iterations;
    }
    EXPECT_GT(summary.history[1].line_search_trials, 1);
    EXPECT_EQ(summary.counts.line_search_trials, trials);
    EXPECT_EQ(summary.counts.value, 1 + trials);
    if (solver == LinearSolver::ConjugateGradient) {
      EXPECT_EQ(summary.counts.hessian, 0);
      // Per CG solve: one J^T u to start, then one J v and one J^T u per iteration.
      EXPECT_EQ(summary.counts.gauss_newton_vector, summary.iterations + 2 * cg_iterations);
    } else {
      const long long accepted = summary.termination == TerminationReason::GradientTolerance
                                     ? summary.iterations
                                     : summary.iterations - 1;
      EXPECT_EQ(summary.counts.hessian, 1 + accepted);
      EXPECT_EQ(summary.counts.gradient, 1 + accepted);
      EXPECT_EQ(summary.counts.gauss_newton_vector, 0);
    }
  }
}

TEST(LevenbergMarquardt, CallbackStops) {
  RosenbrockResiduals model;
  Vector<double> x = vec({-1.2, 1});
  LevenbergMarquardtOptions options;
  options.callback = [](const hesse::optim::IterationRecord& record) { return record.iteration < 2; };
  const Summary summary = hesse::optim::minimize(model, x, options);
  EXPECT_EQ(summary.termination, TerminationReason::UserStop);
  EXPECT_EQ(summary.iterations, 2);
}

// ---------------------------------------------------------------- NaN handling

// r = log(x) - 1 from x = (20, 20): the first full step lands at x < 0 where
// r is NaN. LM rejects it and raises mu; GN shortens it; both reach x = e
// (to 1e-8 relative).
TEST(LeastSquaresNaN, NonFiniteResidualsAreRecovered) {
  const Vector<double> e = Vector<double>::Constant(2, std::exp(1.0));
  for (const LinearSolver solver : kSolvers) {
    SCOPED_TRACE(hesse::optim::to_string(solver));
    LogResiduals model;
    Vector<double> x = Vector<double>::Constant(2, 20);
    LevenbergMarquardtOptions lm_options = lm(solver);
    lm_options.termination.gradient_tolerance = 1e-12;
    Summary summary = hesse::optim::minimize(model, x, lm_options);
    EXPECT_TRUE(summary.converged()) << summary.full_report();
    EXPECT_GE(summary.events["non-finite residuals: step rejected"], 1) << summary.full_report();
    EXPECT_LT(relative(x, e), 1e-8);

    x = Vector<double>::Constant(2, 20);
    GaussNewtonOptions gn_options = gn(solver);
    gn_options.termination.gradient_tolerance = 1e-12;
    summary = hesse::optim::minimize(model, x, gn_options);
    EXPECT_TRUE(summary.converged()) << summary.full_report();
    EXPECT_GE(summary.events["non-finite residuals: step shortened"], 1) << summary.full_report();
    EXPECT_LT(relative(x, e), 1e-8);
  }
}

TEST(LeastSquaresNaN, NonFiniteStartIsANumericalFailure) {
  LogResiduals model;
  Vector<double> x = vec({-1, 2});
  Summary summary = hesse::optim::levenberg_marquardt(model, x);
  EXPECT_EQ(summary.termination, TerminationReason::NumericalFailure);
  EXPECT_EQ(x, vec({-1, 2}));
  summary = hesse::optim::gauss_newton(model, x);
  EXPECT_EQ(summary.termination, TerminationReason::NumericalFailure);
}

// ---------------------------------------------------------------- options

template <class Options>
void expect_invalid(const Options& options, const std::string& fragment) {
  RosenbrockResiduals model;
  Vector<double> x = vec({-1.2, 1});
  const std::string message =
      hesse::testing::invalid_argument_message([&] { hesse::optim::minimize(model, x, options); });
  EXPECT_NE(message.find(fragment), std::string::npos)
      << "expected " << fragment << ", got '" << message << "'";
}

TEST(LeastSquaresOptions, ValidateNamesFieldValueAndRule) {
  LevenbergMarquardtOptions lm_options;
  lm_options.initial_damping = -1;
  expect_invalid(lm_options, "LevenbergMarquardtOptions.initial_damping = -1: must be finite and > 0");
  lm_options = {};
  lm_options.max_damping = 1e-6;
  expect_invalid(lm_options, "LevenbergMarquardtOptions.max_damping = 1e-06: must be finite and > initial_damping");
  lm_options = {};
  lm_options.min_diagonal = 0;
  expect_invalid(lm_options, "LevenbergMarquardtOptions.min_diagonal = 0: must be finite and > 0");
  lm_options = {};
  lm_options.linear.cg_relative_tolerance = 2;
  expect_invalid(lm_options, "LevenbergMarquardtOptions.linear.cg_relative_tolerance = 2: must be in (0, 1)");
  lm_options = {};
  lm_options.termination.max_iterations = -3;
  expect_invalid(lm_options, "LevenbergMarquardtOptions.termination.max_iterations = -3: must be >= 0");

  GaussNewtonOptions gn_options;
  gn_options.sufficient_decrease = 0.7;
  expect_invalid(gn_options, "GaussNewtonOptions.sufficient_decrease = 0.7: must be in (0, 0.5)");
  gn_options = {};
  gn_options.max_line_search_trials = 0;
  expect_invalid(gn_options, "GaussNewtonOptions.max_line_search_trials = 0: must be >= 1");
  gn_options = {};
  gn_options.linear.cg_max_iterations = 0;
  expect_invalid(gn_options, "GaussNewtonOptions.linear.cg_max_iterations = 0: must be >= 1");
  gn_options = {};
  gn_options.linear.linear_solver = static_cast<LinearSolver>(7);
  expect_invalid(gn_options, "GaussNewtonOptions.linear.linear_solver = 7: must be Auto");
}

TEST(LeastSquaresOptions, WrongStartingPointSizeThrows) {
  RosenbrockResiduals model;
  Vector<double> x = vec({1, 2, 3});
  EXPECT_THROW(hesse::optim::levenberg_marquardt(model, x), hesse::InvalidArgument);
}

// Auto picks dense QR for a model with jacobian() and CG for a matrix-free one.
TEST(LeastSquaresOptions, AutoSolverChoice) {
  LinearResiduals<double> dense(30, 4, 5);
  MatrixFreeLinearResiduals<double> matrix_free(30, 4, 5);
  Vector<double> x = Vector<double>::Zero(4);
  EXPECT_GT(hesse::optim::levenberg_marquardt(dense, x).counts.hessian, 0);
  x.setZero();
  LevenbergMarquardtOptions options;
  options.scaling = DampingScaling::Identity;
  const Summary summary = hesse::optim::levenberg_marquardt(matrix_free, x, options);
  EXPECT_EQ(summary.counts.hessian, 0);
  EXPECT_GT(summary.counts.gauss_newton_vector, 0);
}

}  // namespace

// ---------------------------------------------------------------- no allocation in CG

namespace {

// CGLS with a caller-owned workspace: a second solve of the same size (any
// number of iterations) allocates nothing.
TEST(LeastSquaresCg, SecondSolveAllocatesNothing) {
  if (!hesse::testing::counts_allocations())
    GTEST_SKIP() << "malloc cannot be interposed under AddressSanitizer";
  LinearResiduals<double> model(200, 20, 6);
  const Vector<double> x = Vector<double>::Zero(20);
  Vector<double> r;
  model.residuals(x, r);
  const Vector<double> diagonal = Vector<double>::Ones(20);
  const Vector<double> scale = Vector<double>::Constant(20, 0.5);
  Vector<double> p;
  hesse::optim::least_squares_detail::CglsWorkspace<double> workspace;
  hesse::optim::least_squares_detail::cgls(model, x, r, 0.5, diagonal, nullptr, 1e-12, 100, p,
                                           workspace);
  hesse::testing::start_counting_allocations();
  const auto result = hesse::optim::least_squares_detail::cgls(model, x, r, 0.5, diagonal, &scale,
                                                               1e-12, 100, p, workspace);
  hesse::testing::pause_counting_allocations();
  EXPECT_EQ(hesse::testing::counted_allocations(), 0);
  EXPECT_GT(result.iterations, 5);
  // The damped normal equations hold: (A^T A + 0.5 I) p = -A^T r.
  const Vector<double> lhs = model.a.transpose() * (model.a * p) + 0.5 * p;
  const Vector<double> rhs = -(model.a.transpose() * r);
  EXPECT_LT((lhs - rhs).norm(), 1e-9 * rhs.norm());
}

}  // namespace
