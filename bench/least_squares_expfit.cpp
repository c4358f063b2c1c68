// Exponential curve fit y = a exp(b t) + c by Levenberg-Marquardt (and
// Gauss-Newton for reference), timed; prints one JSON object. The peers
// (SciPy least_squares, Ceres) run from bench/run_least_squares on the same
// data file, start and tolerances.
//
//   bench_least_squares_expfit --write-data FILE [--points N] [--seed S] [--noise SIGMA]
//       writes N points t_i evenly in [0, 4], y_i = 2.5 exp(-1.3 t_i) + 0.5 + N(0, SIGMA^2)
//       (defaults 10000, 42, 0.05), one "t y" line each with 17 significant digits
//   bench_least_squares_expfit --data FILE [--reps R] [--tolerance TOL]
//       fits from the start (1, 0, 0) with function, step and gradient
//       tolerances TOL (default 1e-10), R times (default 20) per solver
//
// The start has b = 0, where the columns of J for a and c coincide: J^T J is
// singular and only the damping makes the first step defined.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/optim/least_squares.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;

/// r_i = a exp(b t_i) + c - y_i; J row i = (e_i, a t_i e_i, 1), e_i = exp(b t_i).
struct ExponentialFit {
  using Scalar = double;
  Vector<double> t, y, e;
  Index dimension() const { return 3; }
  Index num_residuals() const { return t.size(); }
  void residuals(const Vector<double>& x, Vector<double>& r) {
    r = (x[0] * (x[1] * t.array()).exp() + x[2] - y.array()).matrix();
  }
  void jacobian_vector(const Vector<double>& x, const Vector<double>& v, Vector<double>& out) {
    e = (x[1] * t.array()).exp().matrix();
    out = (e.array() * (v[0] + v[1] * x[0] * t.array()) + v[2]).matrix();
  }
  void jacobian_transpose_vector(const Vector<double>& x, const Vector<double>& u, Vector<double>& out) {
    e = (x[1] * t.array()).exp().matrix();
    out.resize(3);
    out << e.dot(u), x[0] * (e.array() * t.array() * u.array()).sum(), u.sum();
  }
  void jacobian(const Vector<double>& x, Matrix<double>& j) {
    j.resize(t.size(), 3);
    j.col(0) = (x[1] * t.array()).exp().matrix();
    j.col(1) = (x[0] * t.array() * j.col(0).array()).matrix();
    j.col(2).setOnes();
  }
};

constexpr char kProgram[] = "bench_least_squares_expfit";

[[noreturn]] void fail(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
  std::exit(2);
}

struct Run {
  std::string name;
  std::vector<double> seconds;
  hesse::optim::Summary summary;
  Vector<double> x;
};

template <class Options>
Run time_solver(const std::string& name, ExponentialFit& model, const Options& options, int reps) {
  Run run;
  run.name = name;
  for (int rep = 0; rep < reps; ++rep) {
    Vector<double> x(3);
    x << 1.0, 0.0, 0.0;
    const auto start = std::chrono::steady_clock::now();
    run.summary = hesse::optim::minimize(model, x, options);
    run.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    run.x = x;
  }
  return run;
}

void print_run(const Run& run, bool last) {
  std::vector<double> sorted = run.seconds;
  std::sort(sorted.begin(), sorted.end());
  const auto& s = run.summary;
  const long long rejected = s.events.count("step rejected") ? s.events.at("step rejected") : 0;
  std::printf(
      "    \"%s\": {\"median_seconds\": %.6e, \"min_seconds\": %.6e, \"iterations\": %d, "
      "\"successful_iterations\": %lld, \"residual_evaluations\": %lld, \"jacobian_evaluations\": %lld, "
      "\"final_cost\": %.17g, \"gradient_norm\": %.3e, \"termination\": \"%s\", "
      "\"x\": [%.17g, %.17g, %.17g]}%s\n",
      run.name.c_str(), sorted[sorted.size() / 2], sorted.front(), s.iterations,
      static_cast<long long>(s.iterations) - rejected, s.counts.value, s.counts.hessian, s.final_value,
      s.gradient_norm, std::string(hesse::optim::to_string(s.termination)).c_str(), run.x[0], run.x[1],
      run.x[2], last ? "" : ",");
}

}  // namespace

int main(int argc, char** argv) {
  std::string write_path, data_path;
  Index points = 10000;
  std::uint64_t seed = 42;
  double noise = 0.05, tolerance = 1e-10;
  int reps = 20;
  CLI::App app{
      "Exponential curve fit y = a exp(b t) + c by Levenberg-Marquardt, timed; prints one JSON\n"
      "object. Two uses:\n"
      "  bench_least_squares_expfit --write-data FILE [--points N] [--seed S] [--noise SIGMA]\n"
      "  bench_least_squares_expfit --data FILE [--reps R] [--tolerance TOL]",
      kProgram};
  hesse::bench::configure(app);
  app.add_option("--write-data", write_path,
                 "Write N points t_i evenly in [0, 4],\n"
                 "y_i = 2.5 exp(-1.3 t_i) + 0.5 + N(0, SIGMA^2), one \"t y\" line each\n"
                 "with 17 significant digits, then exit")
      ->type_name("FILE");
  app.add_option("--points", points, "Points to write (>= 3)")
      ->type_name("N")
      ->transform(hesse::bench::integer());
  app.add_option("--seed", seed, "Seed of the noise")
      ->type_name("S")
      ->transform(hesse::bench::seed());
  app.add_option("--noise", noise, "Standard deviation of the noise")->type_name("SIGMA");
  app.add_option("--data", data_path, "Fit the points of FILE from the start (1, 0, 0)")
      ->type_name("FILE");
  app.add_option("--reps", reps,
                 "Fits per solver (>= 1); the median and minimum times are reported")
      ->type_name("R")
      ->transform(hesse::bench::integer());
  app.add_option("--tolerance", tolerance, "Function, step and gradient tolerance")
      ->type_name("TOL");
  hesse::bench::parse(app, argc, argv);
  if (!write_path.empty()) {
    if (points < 3) hesse::bench::usage_error(kProgram, "--points must be >= 3");
    hesse::Rng rng(seed);
    Vector<double> eps(points);
    hesse::fill_normal<double>(rng, eps, noise);
    std::FILE* out = std::fopen(write_path.c_str(), "w");
    if (!out) fail("cannot write " + write_path);
    for (Index i = 0; i < points; ++i) {
      const double t = 4.0 * double(i) / double(points - 1);
      std::fprintf(out, "%.17g %.17g\n", t, 2.5 * std::exp(-1.3 * t) + 0.5 + eps[i]);
    }
    std::fclose(out);
    return 0;
  }
  if (data_path.empty())
    hesse::bench::usage_error(kProgram, "pass --write-data FILE or --data FILE");
  if (reps < 1) hesse::bench::usage_error(kProgram, "--reps must be >= 1");

  ExponentialFit model;
  {
    std::ifstream in(data_path);
    if (!in) fail("cannot read " + data_path);
    std::vector<double> t, y;
    double ti = 0, yi = 0;
    while (in >> ti >> yi) {
      t.push_back(ti);
      y.push_back(yi);
    }
    model.t = Eigen::Map<Vector<double>>(t.data(), Index(t.size()));
    model.y = Eigen::Map<Vector<double>>(y.data(), Index(y.size()));
  }

  hesse::optim::TerminationOptions termination;
  termination.function_tolerance = tolerance;
  termination.step_tolerance = tolerance;
  termination.gradient_tolerance = tolerance;
  termination.max_iterations = 1000;

  std::vector<Run> runs;
  for (const auto& [name, solver] :
       {std::pair{"hesse_lm_dense_qr", hesse::optim::LinearSolver::DenseQR},
        std::pair{"hesse_lm_dense_cholesky", hesse::optim::LinearSolver::DenseCholesky},
        std::pair{"hesse_lm_cg", hesse::optim::LinearSolver::ConjugateGradient}}) {
    hesse::optim::LevenbergMarquardtOptions options;
    options.termination = termination;
    options.linear.linear_solver = solver;
    runs.push_back(time_solver(name, model, options, reps));
  }

  std::printf("{\n  \"problem\": {\"points\": %lld, \"start\": [1, 0, 0], \"tolerance\": %g, \"reps\": %d},\n",
              static_cast<long long>(model.t.size()), tolerance, reps);
  std::printf("  \"results\": {\n");
  for (std::size_t i = 0; i < runs.size(); ++i) print_run(runs[i], i + 1 == runs.size());
  std::printf("  }\n}\n");
  return 0;
}
