// hesse minimize: a solver on a problem of the test catalogue.
#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "hesse/objective/problems.hpp"
#include "solve.hpp"

namespace hesse::cli {
namespace {

struct MinimizeSettings {
  std::string problem = "rosenbrock";
  Index dim = 2;
  double condition_number = 1e4;
  std::uint64_t seed = 0;
  bool json = false;
  SolverSettings solver;
};

template <class Problem>
void run_problem(Problem problem, const MinimizeSettings& s) {
  Vector<double> x = problem.standard_start();
  const optim::Summary summary = solve(problem, x, s.solver);
  const double distance = (x - problem.known_minimizer()).norm();
  if (s.json) {
    nlohmann::json out = summary_json(summary);
    out["problem"] = s.problem;
    out["dimension"] = problem.dimension();
    out["known_minimum"] = static_cast<double>(problem.known_minimum());
    out["distance_to_known_minimizer"] = distance;
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("problem %s (n = %ld), known minimum %.6g\n", s.problem.c_str(),
                static_cast<long>(problem.dimension()), static_cast<double>(problem.known_minimum()));
    std::cout << summary.full_report();
    std::printf("distance to the known minimizer %.3e\n", distance);
  }
}

void run(const MinimizeSettings& s) {
  const std::string& p = s.problem;
  const bool fixed_dimension = p != "rosenbrock" && p != "quadratic";
  HESSE_REQUIRE(s.dim >= 1, "--dim " + std::to_string(s.dim) + ": must be >= 1");
  HESSE_REQUIRE(!fixed_dimension || s.dim == 2 || p == "powell" || p == "wood" || p == "square",
                "--dim: problem " + p + " has a fixed dimension");
  if (p == "rosenbrock") return run_problem(problems::Rosenbrock<double>(s.dim), s);
  if (p == "quadratic") return run_problem(problems::Quadratic<double>(s.dim, s.condition_number, s.seed), s);
  if (p == "square") return run_problem(problems::OneDimensionalSquare<double>(), s);
  if (p == "powell") return run_problem(problems::PowellSingular<double>(), s);
  if (p == "wood") return run_problem(problems::Wood<double>(), s);
  if (p == "beale") return run_problem(problems::Beale<double>(), s);
  if (p == "brown") return run_problem(problems::BrownBadlyScaled<double>(), s);
  if (p == "saddle") return run_problem(problems::StrictSaddle<double>(), s);
  throw InvalidArgument("unknown problem '" + p +
                        "' (valid: rosenbrock, quadratic, square, powell, wood, beale, brown, saddle)");
}

}  // namespace

void add_minimize_command(CLI::App& app) {
  auto s = std::make_shared<MinimizeSettings>();
  CLI::App* cmd = app.add_subcommand("minimize", "Run a solver on a problem of the test catalogue");
  cmd->add_option("--problem", s->problem,
                  "rosenbrock | quadratic | square | powell | wood | beale | brown | saddle")
      ->capture_default_str();
  cmd->add_option("--dim", s->dim, "Dimension (rosenbrock, quadratic)")->capture_default_str();
  cmd->add_option("--condition", s->condition_number, "Condition number of the quadratic")
      ->capture_default_str();
  cmd->add_option("--seed", s->seed, "Seed of the quadratic's eigenvectors")->capture_default_str();
  cmd->add_flag("--json", s->json, "Print the Summary as one JSON object");
  add_solver_options(cmd, s->solver, "--method");
  cmd->callback([s] { run(*s); });
}

}  // namespace hesse::cli
