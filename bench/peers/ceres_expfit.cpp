// Ceres peer of bench/least_squares_expfit.cpp: the same exponential fit
// y = a exp(b t) + c, read from the same data file, from the same start
// (1, 0, 0), with Levenberg-Marquardt and the same tolerances. Built by
// bench/run_least_squares with g++ against Debian's libceres-dev (not part of
// the CMake build). One residual block of all m residuals with an analytic
// Jacobian, so Ceres' per-block overhead does not count against it.
//
//   ceres_expfit --data FILE [--reps R] [--tolerance TOL]
#include <ceres/ceres.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

class ExponentialFit final : public ceres::CostFunction {
 public:
  ExponentialFit(const std::vector<double>& t, const std::vector<double>& y) : t_(t), y_(y) {
    set_num_residuals(static_cast<int>(t.size()));
    mutable_parameter_block_sizes()->push_back(3);
  }
  bool Evaluate(double const* const* parameters, double* residuals, double** jacobians) const override {
    const double a = parameters[0][0], b = parameters[0][1], c = parameters[0][2];
    double* j = jacobians ? jacobians[0] : nullptr;  // row-major m x 3
    for (std::size_t i = 0; i < t_.size(); ++i) {
      const double e = std::exp(b * t_[i]);
      residuals[i] = a * e + c - y_[i];
      if (j) {
        j[3 * i] = e;
        j[3 * i + 1] = a * t_[i] * e;
        j[3 * i + 2] = 1;
      }
    }
    return true;
  }

 private:
  const std::vector<double>& t_;
  const std::vector<double>& y_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string data;
  int reps = 20;
  double tolerance = 1e-10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--data") data = argv[i + 1];
    else if (arg == "--reps") reps = std::atoi(argv[i + 1]);
    else if (arg == "--tolerance") tolerance = std::atof(argv[i + 1]);
    else {
      std::cerr << "ceres_expfit: unknown option " << arg << "\n";
      return 2;
    }
  }
  std::vector<double> t, y;
  std::ifstream in(data);
  double ti, yi;
  while (in >> ti >> yi) {
    t.push_back(ti);
    y.push_back(yi);
  }
  if (t.empty()) {
    std::cerr << "ceres_expfit: no data in '" << data << "'\n";
    return 2;
  }
  std::printf("{\n");
  const std::pair<const char*, ceres::LinearSolverType> solvers[] = {
      {"ceres_lm_dense_qr", ceres::DENSE_QR}, {"ceres_lm_dense_normal_cholesky", ceres::DENSE_NORMAL_CHOLESKY}};
  for (std::size_t s = 0; s < 2; ++s) {
    std::vector<double> seconds;
    ceres::Solver::Summary summary;
    double x[3];
    for (int rep = 0; rep < reps; ++rep) {
      x[0] = 1;
      x[1] = 0;
      x[2] = 0;
      ceres::Problem::Options problem_options;
      problem_options.cost_function_ownership = ceres::DO_NOT_TAKE_OWNERSHIP;
      ExponentialFit cost(t, y);
      ceres::Problem problem(problem_options);
      problem.AddResidualBlock(&cost, nullptr, x);
      ceres::Solver::Options options;
      options.minimizer_type = ceres::TRUST_REGION;
      options.trust_region_strategy_type = ceres::LEVENBERG_MARQUARDT;
      options.linear_solver_type = solvers[s].second;
      options.function_tolerance = tolerance;
      options.parameter_tolerance = tolerance;
      options.gradient_tolerance = tolerance;
      options.max_num_iterations = 1000;
      options.num_threads = 1;
      options.logging_type = ceres::SILENT;
      const auto start = std::chrono::steady_clock::now();
      ceres::Solve(options, &problem, &summary);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    std::printf(
        "  \"%s\": {\"median_seconds\": %.6e, \"min_seconds\": %.6e, \"iterations\": %d, "
        "\"successful_iterations\": %d, \"residual_evaluations\": %d, \"jacobian_evaluations\": %d, "
        "\"final_cost\": %.17g, \"termination\": \"%s\", \"x\": [%.17g, %.17g, %.17g]}%s\n",
        solvers[s].first, seconds[seconds.size() / 2], seconds.front(),
        static_cast<int>(summary.iterations.size()) - 1,
        summary.num_successful_steps, summary.num_residual_evaluations,
        summary.num_jacobian_evaluations, summary.final_cost,
        ceres::TerminationTypeToString(summary.termination_type), x[0], x[1], x[2], s == 0 ? "," : "");
  }
  std::printf("}\n");
  return 0;
}
