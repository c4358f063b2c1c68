// Full-batch solvers against independent references:
//
// * L2 logistic regression on all 569 samples of `breast-cancer` (train and
//   test splits joined, every feature standardised to mean 0 and population
//   standard deviation 1), l2 = 1/n: hesse's Newton, Newton-CG, trust-ncg and
//   L-BFGS, run to |g|_inf <= 1e-10, give scikit-learn's coefficients
//   (LogisticRegression(C = 1/(n l2)), solvers newton-cg and newton-cholesky
//   at tol 1e-10 on their own scaling) within 1e-6 relative (max |diff| /
//   max |coef|). L-BFGS may instead stop on a line-search failure at
//   |g|_inf <= 1e-9, where f no longer changes above its rounding (accepted,
//   the coefficients must still agree). scikit-learn runs under Debian's /usr/bin/python3; the test is
//   skipped, with the reason, when it is missing.
// * Linear least squares with an intercept: Newton, Newton-CG, trust-ncg and
//   L-BFGS reach the normal-equations solution (Eigen LDLT of J^T J) within
//   1e-8 relative.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "hesse/core/rng.hpp"
#include "hesse/data/builtin.hpp"
#include "hesse/models/linear_least_squares.hpp"
#include "hesse/models/logistic_regression.hpp"
#include "hesse/optim/lbfgs.hpp"
#include "hesse/optim/newton.hpp"
#include "hesse/optim/newton_cg.hpp"
#include "hesse/optim/trust_region.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;

const char* kPython = "/usr/bin/python3";  // Debian's python3-sklearn imports only here

bool sklearn_available() {
  return std::filesystem::exists(kPython) &&
         std::system((std::string(kPython) + " -c 'import sklearn' >/dev/null 2>&1").c_str()) == 0;
}

/// All of breast-cancer, standardised (see the top of this file).
hesse::data::Dataset<double> standardised_breast_cancer() {
  const auto split = hesse::data::load_builtin<double>("breast-cancer", {});
  hesse::data::Dataset<double> data;
  data.features.resize(split.train.num_features(), split.train.num_samples() + split.test.num_samples());
  data.features << split.train.features, split.test.features;
  data.targets.resize(1, data.features.cols());
  data.targets << split.train.targets, split.test.targets;
  data.num_classes = 2;
  const Vector<double> mean = data.features.rowwise().mean();
  data.features.colwise() -= mean;
  const auto n = static_cast<double>(data.features.cols());
  for (Index j = 0; j < data.features.rows(); ++j) {
    const double stddev = std::sqrt(data.features.row(j).squaredNorm() / n);
    if (stddev > 0) data.features.row(j) /= stddev;
  }
  return data;
}

constexpr const char* kScript = R"(
import sys, warnings
import numpy as np
from sklearn.linear_model import LogisticRegression
data = np.loadtxt(sys.argv[1])
X, y = data[:, :-1], data[:, -1]
l2 = float(sys.argv[2])
# scikit-learn 1.2's newton-cg minimises sum(log-loss) + 1/(2C) |w|^2, n times
# hesse's mean(log-loss) + l2/2 |w|^2 with C = 1/(n l2); newton-cholesky
# minimises hesse's scaling itself. tol 1e-10 is tighter than 1e-10 / n on
# hesse's scale for the former and equal for the latter.
for solver in ("newton-cg", "newton-cholesky"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LogisticRegression(C=1.0 / (len(y) * l2), solver=solver, tol=1e-10, max_iter=10000).fit(X, y)
    print(solver, " ".join(repr(float(v)) for v in np.concatenate([fit.coef_[0], fit.intercept_])))
)";

/// Runs kScript on `data`; returns solver name -> [w; b].
std::vector<std::pair<std::string, Vector<double>>> sklearn_solutions(const hesse::data::Dataset<double>& data,
                                                                      double l2) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("hesse_optim_reference_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream script(dir / "fit.py");
    script << kScript;
    std::ofstream table(dir / "data.txt");
    table.precision(17);
    for (Index i = 0; i < data.num_samples(); ++i) {
      for (Index j = 0; j < data.num_features(); ++j) table << data.features(j, i) << ' ';
      table << data.targets(0, i) << '\n';
    }
  }
  std::ostringstream command;
  command.precision(17);
  command << kPython << ' ' << (dir / "fit.py").string() << ' ' << (dir / "data.txt").string() << ' ' << l2;
  std::string output;
  {
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> pipe(::popen(command.str().c_str(), "r"), ::pclose);
    char buffer[8192];
    while (pipe && std::fgets(buffer, sizeof buffer, pipe.get())) output += buffer;
  }
  std::filesystem::remove_all(dir);
  std::vector<std::pair<std::string, Vector<double>>> solutions;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    std::vector<double> values;
    for (double v; fields >> v;) values.push_back(v);
    solutions.emplace_back(name, Eigen::Map<Vector<double>>(values.data(), static_cast<Index>(values.size())));
  }
  return solutions;
}

hesse::optim::TerminationOptions tight(double gradient_tolerance) {
  hesse::optim::TerminationOptions termination;
  termination.gradient_tolerance = gradient_tolerance;
  termination.function_tolerance = 0;
  termination.step_tolerance = 0;
  termination.max_iterations = 10000;
  return termination;
}

/// Every solver under test, run from zero on f; name -> (summary, solution).
template <class F>
std::vector<std::tuple<std::string, hesse::optim::Summary, Vector<double>>> solve_all(F& f, double tolerance) {
  std::vector<std::tuple<std::string, hesse::optim::Summary, Vector<double>>> runs;
  auto run = [&](const std::string& name, const auto& options) {
    Vector<double> x = Vector<double>::Zero(f.dimension());
    auto summary = hesse::optim::minimize(f, x, options);
    runs.emplace_back(name, std::move(summary), std::move(x));
  };
  run("newton", hesse::optim::NewtonOptions{.termination = tight(tolerance)});
  run("newton-cg", hesse::optim::NewtonCgOptions{.termination = tight(tolerance)});
  run("trust-ncg", hesse::optim::TrustNcgOptions{.termination = tight(tolerance)});
  run("lbfgs", hesse::optim::LbfgsOptions{.termination = tight(tolerance)});
  return runs;
}

TEST(OptimReference, LogisticRegressionOnBreastCancerMatchesScikitLearn) {
  if (!sklearn_available()) GTEST_SKIP() << kPython << " with scikit-learn is not installed";
  const auto data = standardised_breast_cancer();
  ASSERT_EQ(data.num_samples(), 569);
  const double l2 = 1.0 / static_cast<double>(data.num_samples());  // scikit-learn's C = 1
  const auto references = sklearn_solutions(data, l2);
  ASSERT_EQ(references.size(), 2u) << "the scikit-learn script failed";

  hesse::models::LogisticRegression<double> f(data, {.l2 = l2, .fit_intercept = true});
  for (const auto& [name, summary, x] : solve_all(f, 1e-10)) {
    SCOPED_TRACE(name);
    if (name == "lbfgs" && summary.termination == hesse::optim::TerminationReason::LineSearchFailure) {
      // Near the minimiser f ~ 0.066 changes by ~|g|^2 / lambda, below its
      // rounding once |g| < ~1e-9: the strong-Wolfe search can no longer see
      // a decrease. Accept that floor, not more.
      EXPECT_LE(summary.gradient_norm, 1e-9) << summary.brief_report();
    } else {
      EXPECT_EQ(summary.termination, hesse::optim::TerminationReason::GradientTolerance) << summary.brief_report();
      EXPECT_LE(summary.gradient_norm, 1e-10);
    }
    for (const auto& [solver, reference] : references) {
      ASSERT_EQ(reference.size(), x.size()) << solver;
      const double scale = reference.lpNorm<Eigen::Infinity>();
      EXPECT_LE((x - reference).lpNorm<Eigen::Infinity>(), 1e-6 * scale)
          << "scikit-learn " << solver << ": max |coef| " << scale;
    }
  }
}

TEST(OptimReference, LinearLeastSquaresMatchesTheNormalEquations) {
  // y = X^T w* + 0.7 + noise, 300 samples, 12 features of scales 1 to 2.1.
  constexpr Index kSamples = 300, kFeatures = 12;
  hesse::Rng rng(7);
  hesse::data::Dataset<double> data;
  data.features.resize(kFeatures, kSamples);
  for (Index j = 0; j < kFeatures; ++j) {
    Vector<double> row(kSamples);
    hesse::fill_normal<double>(rng, row, 1.0 + 0.1 * static_cast<double>(j));
    data.features.row(j) = row.transpose();
  }
  Vector<double> w_true(kFeatures), noise(kSamples);
  hesse::fill_normal<double>(rng, w_true);
  hesse::fill_normal<double>(rng, noise, 0.1);
  data.targets = ((data.features.transpose() * w_true).array() + 0.7 + noise.array()).matrix().transpose();

  Matrix<double> J(kSamples, kFeatures + 1);  // [X^T, 1]
  J << data.features.transpose(), Vector<double>::Ones(kSamples);
  const Vector<double> closed_form = (J.transpose() * J).ldlt().solve(J.transpose() * data.targets.row(0).transpose());

  hesse::models::LinearLeastSquares<double> f(data, {.l2 = 0, .fit_intercept = true});
  // g = J^T J (x - x*), so |x - x*|_2 <= |g|_2 / lambda_min(J^T J) <= sqrt(d + 1) |g|_inf / lambda_min:
  // this gradient tolerance guarantees |x - x*|_2 <= 1e-8 |x*|_2.
  const double lambda_min = (J.transpose() * J).selfadjointView<Eigen::Lower>().eigenvalues().minCoeff();
  const double tolerance = 1e-8 * lambda_min * closed_form.norm() / std::sqrt(double(kFeatures + 1));
  for (const auto& [name, summary, x] : solve_all(f, tolerance)) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(summary.converged()) << summary.brief_report();
    EXPECT_LE((x - closed_form).norm(), 1e-8 * closed_form.norm()) << summary.brief_report();
  }
}

}  // namespace
