// L2-regularised logistic regression (models/logistic_regression.hpp) solved to
// |g|_inf <= tolerance from theta = 0 by hesse's Newton, Newton-CG, trust-ncg
// and L-BFGS, and by LBFGS++ (when its header is installed) twice: on its own
// objective, written as an LBFGS++ user writes it (an Eigen functor with two
// GEMVs per evaluation; the peer comparison, like scikit-learn's and SciPy's
// own objective code), and on the very same hesse objective object (a
// comparison of the solvers alone); prints one JSON object.
// bench/run_logistic runs this and bench/logistic_peers.py (scikit-learn,
// SciPy) on the same NPY files.
//
//   bench_logistic --write-breast-cancer DIR
//       writes DIR/X.npy (float64 [569, 30]) and DIR/y.npy (int64 [569]): all
//       569 samples of the built-in set (train and test splits joined),
//       each feature standardised to mean 0, population standard deviation 1
//   bench_logistic --features X.npy --labels y.npy [--l2 L] [--tolerance TOL]
//       [--reps R] [--solution-out FILE.npy]
//       L: the ridge penalty (default 1/n, scikit-learn's C = 1); TOL: 1e-6;
//       R: repetitions per solver (default 7), the median time is reported.
//       Times exclude loading the data and building the objective (for
//       LBFGS++'s own objective: copying X into its layout).
//       FILE.npy: hesse Newton's solution [w; b] for the peers' comparison.
//       --product-costs: also time value, value+gradient, HVP and Hessian at
//       theta = 0, and LBFGS++'s own objective (stderr); --history: every
//       hesse run's iterations (stderr); --experiment: also run Newton-CG with
//       Hessian-vector products on every 10th sample (SubsampledHessian below).
//
// LBFGS++ stops on |g|_2 <= TOL (it has no infinity-norm test), which is
// stricter than hesse's |g|_inf <= TOL by up to a factor sqrt(d + 1).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "hesse/data/builtin.hpp"
#include "hesse/data/npy.hpp"
#include "hesse/models/logistic_regression.hpp"
#include "hesse/optim/lbfgs.hpp"
#include "hesse/optim/newton.hpp"
#include "hesse/optim/newton_cg.hpp"
#include "hesse/optim/trust_region.hpp"

#if __has_include(<LBFGS.h>)
#include <LBFGS.h>
#define HESSE_BENCH_HAVE_LBFGSPP 1
#else
#define HESSE_BENCH_HAVE_LBFGSPP 0
#endif

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;
using Clock = std::chrono::steady_clock;

constexpr char kProgram[] = "bench_logistic";

[[noreturn]] void fail(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
  std::exit(2);
}

/// Writes a little-endian NPY version 1.0 file: float64 [rows, cols] (cols = 0:
/// 1-D [rows]) or int64 [rows] from `values` in C order.
void write_npy(const std::filesystem::path& path, const char* descr, Index rows, Index cols,
               const void* data, std::size_t bytes) {
  std::ostringstream header;
  header << "{'descr': '" << descr << "', 'fortran_order': False, 'shape': (" << rows
         << (cols > 0 ? ", " + std::to_string(cols) + ")" : ",)") << ", }";
  std::string text = header.str();
  const std::size_t unpadded = 10 + text.size() + 1;
  text.append((64 - unpadded % 64) % 64, ' ');
  text.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("cannot write " + path.string());
  out.write("\x93NUMPY\x01\x00", 8);
  const auto length = static_cast<std::uint16_t>(text.size());
  const char length_bytes[2] = {static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
  out.write(length_bytes, 2);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

int write_breast_cancer(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto split = hesse::data::load_builtin<double>("breast-cancer", {});
  const Index d = split.train.num_features();
  const Index n_train = split.train.num_samples();
  const Index n = n_train + split.test.num_samples();
  Matrix<double> X(d, n);  // one sample per column
  X << split.train.features, split.test.features;
  Vector<double> mean = X.rowwise().mean();
  X.colwise() -= mean;
  const Vector<double> stddev = (X.array().square().rowwise().sum() / static_cast<double>(n)).sqrt().matrix();
  for (Index j = 0; j < d; ++j) X.row(j) /= stddev[j] > 0 ? stddev[j] : 1.0;
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i)
    y[static_cast<std::size_t>(i)] = i < n_train ? split.train.label(i) : split.test.label(i - n_train);
  // X [d, n] column-major is the C-order [n, d] array NumPy expects.
  write_npy(dir / "X.npy", "<f8", n, d, X.data(), sizeof(double) * static_cast<std::size_t>(X.size()));
  write_npy(dir / "y.npy", "<i8", n, 0, y.data(), sizeof(std::int64_t) * y.size());
  std::cout << "{\"written\": \"" << dir.string() << "\", \"n\": " << n << ", \"d\": " << d << "}\n";
  return 0;
}

struct Result {
  std::string solver;
  std::vector<double> seconds;
  int iterations = 0;
  long long function_evaluations = 0, gradient_evaluations = 0, hessian_vector_products = 0,
            hessians = 0;
  double final_value = 0, gradient_norm = 0;
  std::string termination;
  bool converged = false;
  Vector<double> solution;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t k = values.size() / 2;
  return values.size() % 2 ? values[k] : 0.5 * (values[k - 1] + values[k]);
}

bool print_history = false;

template <class F, class Options>
Result run_hesse(const std::string& name, F& f, Options options, int reps) {
  Result result;
  result.solver = name;
  for (int r = 0; r < reps; ++r) {
    Vector<double> x = Vector<double>::Zero(f.dimension());
    const auto start = Clock::now();
    const auto summary = hesse::optim::minimize(f, x, options);
    result.seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    if (r == 0) {
      result.iterations = summary.iterations;
      result.function_evaluations = summary.counts.value;
      result.gradient_evaluations = summary.counts.gradient;
      result.hessian_vector_products = summary.counts.hessian_vector;
      result.hessians = summary.counts.hessian;
      result.final_value = summary.final_value;
      result.gradient_norm = summary.gradient_norm;
      result.termination = std::string(hesse::optim::to_string(summary.termination));
      result.converged = summary.converged();
      result.solution = x;
      if (print_history) {
        std::cerr << name << ": " << summary.brief_report() << "\n";
        for (const auto& record : summary.history)
          std::cerr << "  " << record.iteration << " f " << record.value << " |g| " << record.gradient_norm
                    << " step " << record.step_size << " trials " << record.line_search_trials << " inner "
                    << record.inner_iterations << " t " << record.seconds << " " << record.event << "\n";
      }
    }
  }
  return result;
}

#if HESSE_BENCH_HAVE_LBFGSPP
/// LBFGS++'s functor interface over hesse's objective (the same code, so the
/// comparison is of the solvers), counting evaluations.
template <class F>
struct LbfgsppOnHesse {
  F& f;
  long long evaluations = 0;
  double operator()(const Eigen::VectorXd& x, Eigen::VectorXd& gradient) {
    ++evaluations;
    return f.value_and_gradient(x, &gradient);
  }
};

/// The objective as an LBFGS++ user writes it, on X [n, d] in the storage
/// order `Layout` (Eigen's default column-major, or row-major as NumPy's C
/// order reads): z = X w + b, f = mean log-loss + l2/2 |w|^2,
/// g = [X^T (sigmoid(z) - y) / n + l2 w; 1^T (sigmoid(z) - y) / n], with
/// Eigen's GEMVs and array expressions (vectorised exp and log1p).
template <int Layout>
class EigenLogistic {
 public:
  using Features = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Layout>;
  EigenLogistic(const hesse::data::Dataset<double>& data, double l2)
      : X_(data.features.transpose()), y_(data.targets.row(0).transpose().array()), l2_(l2) {}
  long long evaluations = 0;
  double operator()(const Eigen::VectorXd& theta, Eigen::VectorXd& gradient) {
    ++evaluations;
    const Index n = X_.rows(), d = X_.cols();
    z_.noalias() = X_ * theta.head(d);
    z_.array() += theta[d];
    const auto z = z_.array();
    e_ = (-z.abs()).exp();  // log(1 + exp(-s z)) = max(z, 0) - y z + log1p(exp(-|z|))
    const double loss = (z.max(0.0) - y_ * z + e_.log1p()).sum();
    r_ = (z >= 0).select(1.0 / (1.0 + e_), e_ / (1.0 + e_)) - y_;  // sigmoid(z) - y
    gradient.resize(d + 1);
    gradient.head(d).noalias() = X_.transpose() * r_.matrix() / static_cast<double>(n);
    gradient.head(d) += l2_ * theta.head(d);
    gradient[d] = r_.sum() / static_cast<double>(n);
    return loss / static_cast<double>(n) + 0.5 * l2_ * theta.head(d).squaredNorm();
  }

 private:
  Features X_;
  Eigen::ArrayXd y_;
  double l2_;
  Eigen::VectorXd z_;
  Eigen::ArrayXd e_, r_;
};

/// `objective` is the functor LBFGS++ minimises; `f` (hesse's objective on the
/// same data) re-evaluates the solution for the table.
template <template <class> class LineSearch, class Functor>
Result run_lbfgspp(const std::string& name, Functor& objective, hesse::models::LogisticRegression<double>& f,
                   double tolerance, int reps, int line_search_kind) {
  Result result;
  result.solver = name;
  LBFGSpp::LBFGSParam<double> param;
  param.m = 10;  // hesse's LbfgsOptions::memory
  param.epsilon = tolerance;
  param.epsilon_rel = 0;
  param.max_iterations = 100000;
  param.linesearch = line_search_kind;
  for (int r = 0; r < reps; ++r) {
    Eigen::VectorXd x = Eigen::VectorXd::Zero(f.dimension());
    objective.evaluations = 0;
    double fx = 0;
    int iterations = 0;
    std::string termination = "gradient tolerance";
    const auto start = Clock::now();
    try {
      LBFGSpp::LBFGSSolver<double, LineSearch> solver(param);
      iterations = solver.minimize(objective, x, fx);
    } catch (const std::exception& error) {
      termination = std::string("exception: ") + error.what();
    }
    result.seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    if (r == 0) {
      Vector<double> g;
      result.iterations = iterations;
      result.function_evaluations = result.gradient_evaluations = objective.evaluations;
      result.final_value = f.value_and_gradient(x, &g);
      result.gradient_norm = g.lpNorm<Eigen::Infinity>();
      result.termination = termination;
      result.converged = result.gradient_norm <= tolerance;
      result.solution = x;
    }
  }
  return result;
}

/// Checks that LBFGS++'s own objective computes hesse's value and gradient,
/// then runs both line searches on it.
template <int Layout>
void run_lbfgspp_own(const std::string& layout, const hesse::data::Dataset<double>& data, double l2,
                     hesse::models::LogisticRegression<double>& f, double tolerance, int reps,
                     std::vector<Result>& results) {
  EigenLogistic<Layout> own(data, l2);
  const Vector<double> at = Vector<double>::Constant(f.dimension(), 0.01);
  Vector<double> g, g_own;
  const double gap = std::abs(f.value_and_gradient(at, &g) - own(at, g_own));
  if (gap > 1e-12 || (g - g_own).norm() > 1e-12 * g.norm())
    fail("LBFGS++'s own Eigen objective disagrees with LogisticRegression");
  const std::string suffix = " on its own eigen objective (X " + layout + ")";
  results.push_back(run_lbfgspp<LBFGSpp::LineSearchBacktracking>(
      "lbfgspp backtracking (strong wolfe)" + suffix, own, f, tolerance, reps,
      LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE));
  results.push_back(run_lbfgspp<LBFGSpp::LineSearchNocedalWright>(
      "lbfgspp nocedal-wright (strong wolfe)" + suffix, own, f, tolerance, reps,
      LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE));
}
#endif

/// An experiment for the diagnosis: exact value and gradient on every sample,
/// Hessian-vector products on a fixed subsample (every k-th sample), as in
/// Byrd, Chin, Neveitt & Nocedal 2011 (subsampled Hessian Newton-CG): a
/// product then costs 1/k of a pass over X.
struct SubsampledHessian {
  using Scalar = double;
  hesse::models::LogisticRegression<double>& full;
  hesse::models::LogisticRegression<double>& subsample;
  Index dimension() const { return full.dimension(); }
  double value(const Vector<double>& x) { return full.value(x); }
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) { return full.value_and_gradient(x, g); }
  void hessian_vector(const Vector<double>& x, const Vector<double>& v, Vector<double>& out) {
    subsample.hessian_vector(x, v, out);
  }
};

void print_json(const std::vector<Result>& results, const std::string& features, Index n, Index d,
                double l2, double tolerance, int reps, double setup_seconds) {
  std::cout.precision(17);
  std::cout << "{\n \"program\": \"bench_logistic\",\n \"features\": \"" << features << "\",\n \"n\": " << n
            << ",\n \"d\": " << d << ",\n \"l2\": " << l2 << ",\n \"tolerance\": " << tolerance
            << ",\n \"reps\": " << reps << ",\n \"threads\": " << omp_get_max_threads()
            << ",\n \"eigen_threads\": " << Eigen::nbThreads() << ",\n \"lbfgspp\": "
            << (HESSE_BENCH_HAVE_LBFGSPP ? "true" : "false") << ",\n \"objective_setup_seconds\": "
            << setup_seconds << ",\n \"solvers\": {";
  for (std::size_t k = 0; k < results.size(); ++k) {
    const Result& r = results[k];
    const double max_diff = (r.solution - results.front().solution).lpNorm<Eigen::Infinity>();
    std::cout << (k ? "," : "") << "\n  \"" << r.solver << "\": {\"seconds\": " << median(r.seconds)
              << ", \"seconds_min\": " << *std::min_element(r.seconds.begin(), r.seconds.end())
              << ", \"iterations\": " << r.iterations << ", \"function_evaluations\": " << r.function_evaluations
              << ", \"gradient_evaluations\": " << r.gradient_evaluations
              << ", \"hessian_vector_products\": " << r.hessian_vector_products
              << ", \"hessian_evaluations\": " << r.hessians << ", \"final_value\": " << r.final_value
              << ", \"gradient_norm_inf\": " << r.gradient_norm << ", \"termination\": \"" << r.termination
              << "\", \"converged\": " << (r.converged ? "true" : "false")
              << ", \"max_coef_diff_to_hesse_newton\": " << max_diff << "}";
  }
  std::cout << "\n }\n}\n";
}

/// Times the objective's products at theta = 0 (the costs the solvers pay).
void print_product_costs(hesse::models::LogisticRegression<double>& f, const Vector<double>& at,
                         const hesse::data::Dataset<double>& data) {
  Vector<double> g, v = Vector<double>::Ones(f.dimension()), hv;
  Matrix<double> H;
  auto time = [](const std::function<void()>& call) {
    call();
    std::vector<double> t;
    for (int r = 0; r < 15; ++r) {
      const auto start = Clock::now();
      call();
      t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    return median(t) * 1e3;
  };
  const double value_ms = time([&] { f.value(at); });
  const double gradient_ms = time([&] { f.value_and_gradient(at, &g); });
  const double hvp_ms = time([&] { f.hessian_vector(at, v, hv); });
  const double hessian_ms = time([&] { f.hessian(at, H); });
  // hessian_vector above repeats one theta, so all but the first call use the
  // p (1 - p) kept from the previous pass (as Newton-CG's products after a
  // gradient do); alternating two thetas times the product from scratch.
  const Vector<double> other = at + Vector<double>::Constant(at.size(), 1e-3);
  bool flip = false;
  const double hvp_new_theta_ms = time([&] {
    flip = !flip;
    f.hessian_vector(flip ? other : at, v, hv);
  });
  std::cerr.precision(4);
  std::cerr << "{\"product_ms\": {\"value\": " << value_ms << ", \"value_and_gradient\": " << gradient_ms
            << ", \"hessian_vector\": " << hvp_ms << ", \"hessian_vector_new_theta\": " << hvp_new_theta_ms
            << ", \"hessian\": " << hessian_ms;
#if HESSE_BENCH_HAVE_LBFGSPP
  EigenLogistic<Eigen::ColMajor> col_major(data, f.options().l2);
  EigenLogistic<Eigen::RowMajor> row_major(data, f.options().l2);
  std::cerr << ", \"lbfgspp_own_value_and_gradient_col_major\": " << time([&] { col_major(at, g); })
            << ", \"lbfgspp_own_value_and_gradient_row_major\": " << time([&] { row_major(at, g); });
#else
  (void)data;
#endif
  std::cerr << "}}\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string features, labels, solution_out, breast_cancer_dir;
  double l2 = -1, tolerance = 1e-6;
  int reps = 7;
  bool product_costs = false, experiment = false;
  CLI::App app{
      "L2-regularised logistic regression solved to |g|_inf <= TOL from theta = 0 by hesse's\n"
      "Newton, Newton-CG, trust-ncg and L-BFGS, and by LBFGS++ when its header is installed;\n"
      "prints one JSON object. Two uses:\n"
      "  bench_logistic --write-breast-cancer DIR\n"
      "  bench_logistic --features X.npy --labels y.npy [--l2 L] [--tolerance TOL] [--reps R] ...",
      kProgram};
  hesse::bench::configure(app);
  app.add_option("--write-breast-cancer", breast_cancer_dir,
                 "Write DIR/X.npy (float64 [569, 30], all samples, each feature standardised to\n"
                 "mean 0, population standard deviation 1) and DIR/y.npy (int64 [569]), then exit")
      ->type_name("DIR");
  app.add_option("--features", features, "Features, NPY float64 [n, d] (required to solve)")
      ->type_name("X.npy");
  app.add_option("--labels", labels, "Labels 0/1, NPY [n] (required to solve)")->type_name("y.npy");
  app.add_option("--l2", l2, "Ridge penalty")
      ->type_name("L")
      ->default_str("1/n, scikit-learn's C = 1");
  app.add_option("--tolerance", tolerance, "Stop at |g|_inf <= TOL (LBFGS++: |g|_2 <= TOL)")
      ->type_name("TOL");
  app.add_option("--reps", reps, "Repetitions per solver; the median time is reported")
      ->type_name("R")
      ->transform(hesse::bench::integer());
  app.add_option("--solution-out", solution_out, "Write hesse Newton's solution [w; b] here")
      ->type_name("FILE.npy");
  app.add_flag("--product-costs", product_costs,
               "Also time value, value+gradient, HVP and Hessian at theta = 0, and LBFGS++'s own\n"
               "objective (stderr)");
  app.add_flag("--history", print_history, "Print every hesse run's iterations (stderr)");
  app.add_flag("--experiment", experiment,
               "Also run Newton-CG with Hessian-vector products on every 10th sample");
  app.footer(
      "Times exclude loading the data and building the objective (for LBFGS++'s own objective:\n"
      "copying X into its layout).");
  hesse::bench::parse(app, argc, argv);
  if (!breast_cancer_dir.empty()) return write_breast_cancer(breast_cancer_dir);
  if (features.empty() || labels.empty())
    hesse::bench::usage_error(kProgram, "--features and --labels are required");
  if (reps < 1) hesse::bench::usage_error(kProgram, "--reps must be >= 1");

  const auto data = hesse::data::load_npy<double>(features, labels);
  const Index n = data.num_samples();
  if (l2 < 0) l2 = 1.0 / static_cast<double>(n);

  const auto setup_start = Clock::now();
  hesse::models::LogisticRegression<double> f(data, {.l2 = l2, .fit_intercept = true});
  const double setup_seconds = std::chrono::duration<double>(Clock::now() - setup_start).count();
  if (product_costs) print_product_costs(f, Vector<double>::Zero(f.dimension()), data);

  hesse::optim::TerminationOptions termination;
  termination.gradient_tolerance = tolerance;
  termination.max_iterations = 100000;

  std::vector<Result> results;
  results.push_back(run_hesse("hesse newton", f, hesse::optim::NewtonOptions{.termination = termination}, reps));
  results.push_back(
      run_hesse("hesse newton-cg", f, hesse::optim::NewtonCgOptions{.termination = termination}, reps));
  results.push_back(
      run_hesse("hesse trust-ncg", f, hesse::optim::TrustNcgOptions{.termination = termination}, reps));
  // The default trust-ncg probes for negative curvature (20 Lanczos steps)
  // where the gradient test passes; a convex objective has none to find.
  results.push_back(run_hesse("hesse trust-ncg (no saddle check)", f,
                              hesse::optim::TrustNcgOptions{.termination = termination,
                                                            .second_order_check_steps = 0},
                              reps));
  results.push_back(run_hesse("hesse lbfgs", f, hesse::optim::LbfgsOptions{.termination = termination}, reps));
#if HESSE_BENCH_HAVE_LBFGSPP
  // The peer: LBFGS++ on its own objective code, in both storage orders of X.
  run_lbfgspp_own<Eigen::ColMajor>("col-major", data, l2, f, tolerance, reps, results);
  run_lbfgspp_own<Eigen::RowMajor>("row-major", data, l2, f, tolerance, reps, results);
  // The solvers alone: LBFGS++ on hesse's objective object.
  LbfgsppOnHesse<hesse::models::LogisticRegression<double>> on_hesse{f};
  results.push_back(run_lbfgspp<LBFGSpp::LineSearchBacktracking>(
      "lbfgspp backtracking (strong wolfe) on hesse's objective", on_hesse, f, tolerance, reps,
      LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE));
  results.push_back(run_lbfgspp<LBFGSpp::LineSearchNocedalWright>(
      "lbfgspp nocedal-wright (strong wolfe) on hesse's objective", on_hesse, f, tolerance, reps,
      LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE));
#endif
  if (experiment) {
    constexpr Index kEvery = 10;
    hesse::data::Dataset<double> every;
    const Index m = (n + kEvery - 1) / kEvery;
    every.features.resize(data.num_features(), m);
    every.targets.resize(1, m);
    for (Index k = 0; k < m; ++k) {
      every.features.col(k) = data.features.col(k * kEvery);
      every.targets(0, k) = data.targets(0, k * kEvery);
    }
    every.num_classes = 2;
    hesse::models::LogisticRegression<double> sub(every, {.l2 = l2, .fit_intercept = true});
    SubsampledHessian subsampled{f, sub};
    results.push_back(run_hesse("experiment subsampled-hessian (1/10): hesse newton-cg", subsampled,
                                hesse::optim::NewtonCgOptions{.termination = termination}, reps));
  }
  if (!solution_out.empty()) {
    const Vector<double>& x = results.front().solution;
    write_npy(solution_out, "<f8", x.size(), 0, x.data(), sizeof(double) * static_cast<std::size_t>(x.size()));
  }
  print_json(results, features, n, data.num_features(), l2, tolerance, reps, setup_seconds);
  return 0;
}
