#include "solve.hpp"

#include <cstdio>

namespace hesse::cli {

const std::vector<std::string>& solver_methods() {
  static const std::vector<std::string> names{"gd",        "bfgs",      "lbfgs",      "newton",
                                              "newton-cg", "trust-ncg", "trust-exact", "gauss-newton", "lm"};
  return names;
}

void add_solver_options(CLI::App* cmd, SolverSettings& s, const std::string& method_flag) {
  std::string methods;
  for (const auto& name : solver_methods()) methods += (methods.empty() ? "" : "|") + name;
  cmd->add_option(method_flag, s.method, "Solver: " + methods)->capture_default_str();
  cmd->add_option("--line-search", s.line_search,
                  "armijo | strong-wolfe (| none for gd); default: the method's own");
  cmd->add_option("--gradient-tolerance", s.gradient_tolerance, "Stop when |g|_inf <= this")
      ->capture_default_str();
  cmd->add_option("--function-tolerance", s.function_tolerance,
                  "Stop when the relative change of f is <= this (0: off)")
      ->capture_default_str();
  cmd->add_option("--max-iterations", s.max_iterations, "Iteration limit")->capture_default_str();
  cmd->add_option("--time-limit", s.time_limit_seconds, "Wall-clock limit in seconds (0: none)")
      ->capture_default_str();
  cmd->add_option("--learning-rate", s.learning_rate,
                  "gd: fixed step, or the first trial step with a line search")
      ->capture_default_str();
  cmd->add_option("--memory", s.memory, "lbfgs: curvature pairs kept")->capture_default_str();
  cmd->add_option("--strategy", s.strategy,
                  "newton, when the Hessian is not positive definite: levenberg | abs-eigenvalues | "
                  "clip-eigenvalues | negative-curvature | none")
      ->capture_default_str();
  cmd->add_flag("--verbose", s.verbose, "Print every iteration");
}

nlohmann::json summary_json(const optim::Summary& summary) {
  nlohmann::json events = nlohmann::json::object();
  for (const auto& [name, count] : summary.events) events[name] = count;
  return {{"method", summary.method},
          {"termination", std::string(optim::to_string(summary.termination))},
          {"message", summary.message},
          {"converged", summary.converged()},
          {"iterations", summary.iterations},
          {"initial_value", summary.initial_value},
          {"final_value", summary.final_value},
          {"initial_gradient_norm", summary.initial_gradient_norm},
          {"gradient_norm", summary.gradient_norm},
          {"seconds", summary.seconds},
          {"evaluations",
           {{"value", summary.counts.value},
            {"gradient", summary.counts.gradient},
            {"hessian_vector", summary.counts.hessian_vector},
            {"gauss_newton_vector", summary.counts.gauss_newton_vector},
            {"hessian", summary.counts.hessian},
            {"line_search_trials", summary.counts.line_search_trials}}},
          {"events", events}};
}

namespace detail {

optim::TerminationOptions termination(const SolverSettings& s) {
  return {.gradient_tolerance = s.gradient_tolerance,
          .function_tolerance = s.function_tolerance,
          .max_iterations = s.max_iterations,
          .time_limit_seconds = s.time_limit_seconds};
}

linesearch::LineSearchOptions line_search(const SolverSettings& s,
                                          linesearch::LineSearchKind fallback) {
  linesearch::LineSearchOptions options;
  options.kind = s.line_search.empty() ? fallback : linesearch::parse_line_search(s.line_search);
  return options;
}

optim::IterationCallback printer(const SolverSettings& s) {
  if (!s.verbose) return {};
  return [](const optim::IterationRecord& r) {
    std::printf("%5d  f %.10e  |g| %.3e  step %.3e  %s\n", r.iteration, r.value, r.gradient_norm,
                r.step_norm, r.event.c_str());
    return true;
  };
}

void set_strategy(const SolverSettings& s, optim::NewtonOptions& o) {
  using optim::IndefiniteStrategy;
  if (s.strategy == "levenberg") {
    o.strategy = IndefiniteStrategy::LevenbergShift;
  } else if (s.strategy == "abs-eigenvalues") {
    o.strategy = IndefiniteStrategy::EigenvalueModification;
    o.eigenvalue_rule = optim::EigenvalueRule::Absolute;
  } else if (s.strategy == "clip-eigenvalues") {
    o.strategy = IndefiniteStrategy::EigenvalueModification;
    o.eigenvalue_rule = optim::EigenvalueRule::Clip;
  } else if (s.strategy == "negative-curvature") {
    o.strategy = IndefiniteStrategy::NegativeCurvature;
  } else if (s.strategy == "none") {
    o.strategy = IndefiniteStrategy::None;
  } else {
    throw InvalidArgument("--strategy '" + s.strategy +
                          "': expected levenberg, abs-eigenvalues, clip-eigenvalues, "
                          "negative-curvature or none");
  }
}

}  // namespace detail
}  // namespace hesse::cli
