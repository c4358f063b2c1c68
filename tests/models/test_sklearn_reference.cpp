// Golden comparison of LogisticRegression with an independent reference:
// NumPy/SciPy evaluate the same L2 logistic objective and gradient on a fixed
// data set, and scikit-learn's LogisticRegression(C = 1 / (n l2)) fits it,
// which checks the documented C mapping: hesse's gradient vanishes at
// scikit-learn's solution. Runs Debian's /usr/bin/python3 and is skipped, with
// the reason, when it or scikit-learn is missing.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "hesse/models/logistic_regression.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;

const char* kPython = "/usr/bin/python3";  // Debian's python3-* modules import only here

// Prints, one per line: n d, the n rows of X, y, theta, l2, value, gradient,
// and scikit-learn's fitted [w; b].
constexpr const char* kScript = R"(
import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

rng = np.random.RandomState(0)
n, d = 40, 3
X = rng.randn(n, d)
y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.5 * rng.randn(n) > 0).astype(float)
theta = np.array([0.3, -0.7, 0.2, 0.1])
l2 = 0.05
w, b = theta[:d], theta[d]
z = X @ w + b
value = np.mean(np.logaddexp(0.0, -(2 * y - 1) * z)) + 0.5 * l2 * w @ w
r = (expit(z) - y) / n
gradient = np.concatenate([X.T @ r + l2 * w, [r.sum()]])
fit = LogisticRegression(C=1.0 / (n * l2), tol=1e-12, max_iter=10000).fit(X, y)
solution = np.concatenate([fit.coef_[0], fit.intercept_])

line = lambda values: print(" ".join(repr(float(v)) for v in np.ravel(values)))
print(n, d)
for row in X:
    line(row)
for values in (y, theta, [l2], [value], gradient, solution):
    line(values)
)";

bool sklearn_available() {
  return std::filesystem::exists(kPython) &&
         std::system((std::string(kPython) + " -c 'import sklearn, scipy' >/dev/null 2>&1").c_str()) == 0;
}

std::string run_reference() {
  const auto script = std::filesystem::temp_directory_path() /
                      ("hesse_sklearn_reference_" + std::to_string(::getpid()) + ".py");
  {
    std::FILE* file = std::fopen(script.c_str(), "w");
    std::fputs(kScript, file);
    std::fclose(file);
  }
  std::string output;
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> pipe(
      ::popen((std::string(kPython) + " " + script.string()).c_str(), "r"), ::pclose);
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe.get())) output += buffer;
  std::filesystem::remove(script);
  return output;
}

Vector<double> parse_line(std::istream& in) {
  std::string line;
  std::getline(in, line);
  std::istringstream values(line);
  std::vector<double> numbers;
  for (double v; values >> v;) numbers.push_back(v);
  return Eigen::Map<Vector<double>>(numbers.data(), static_cast<Index>(numbers.size()));
}

TEST(SklearnReference, LogisticValueGradientAndSolutionAgree) {
  if (!sklearn_available()) GTEST_SKIP() << kPython << " with scikit-learn and SciPy is not installed";
  std::istringstream out(run_reference());
  Index n = 0;
  Index d = 0;
  out >> n >> d;
  out.ignore();
  ASSERT_EQ(n, 40) << "reference script failed";
  hesse::data::Dataset<double> data;
  data.features.resize(d, n);
  for (Index i = 0; i < n; ++i) data.features.col(i) = parse_line(out);
  data.targets = parse_line(out).transpose();
  data.num_classes = 2;
  const Vector<double> theta = parse_line(out);
  const double l2 = parse_line(out)[0];
  const double value = parse_line(out)[0];
  const Vector<double> gradient = parse_line(out);
  const Vector<double> solution = parse_line(out);
  ASSERT_EQ(solution.size(), d + 1);

  hesse::models::LogisticRegression<double> f(data, {.l2 = l2, .fit_intercept = true});
  Vector<double> g;
  EXPECT_NEAR(f.value_and_gradient(theta, &g), value, 1e-10 * value);
  EXPECT_LE((g - gradient).norm(), 1e-10 * gradient.norm());

  f.value_and_gradient(solution, &g);
  EXPECT_LE(g.norm(), 1e-6) << "hesse's gradient at scikit-learn's solution";
}

}  // namespace
