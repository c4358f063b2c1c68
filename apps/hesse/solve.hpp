// The full-batch solvers as the CLI offers them: one settings struct filled
// from the command line, one call that runs the chosen method on any
// objective, and the Summary as JSON.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/optim/bfgs.hpp"
#include "hesse/optim/gradient_descent.hpp"
#include "hesse/objective/residual.hpp"
#include "hesse/optim/lbfgs.hpp"
#include "hesse/optim/least_squares.hpp"
#include "hesse/optim/newton.hpp"
#include "hesse/optim/newton_cg.hpp"
#include "hesse/optim/trust_region.hpp"

namespace hesse::cli {

struct SolverSettings {
  std::string method = "lbfgs";
  std::string line_search;  ///< empty: the method's default
  double gradient_tolerance = 1e-6;
  double function_tolerance = 1e-14;
  int max_iterations = 1000;
  double time_limit_seconds = 0;
  double learning_rate = 1e-2;
  int memory = 10;
  std::string strategy = "levenberg";  ///< newton: what to do when H is not positive definite
  bool verbose = false;  ///< print every iteration
};

/// Adds --method (or --optimizer, by name) and the solver options to `cmd`.
void add_solver_options(CLI::App* cmd, SolverSettings& settings, const std::string& method_flag);

/// The method names the CLI accepts, for messages and --help.
const std::vector<std::string>& solver_methods();

nlohmann::json summary_json(const optim::Summary& summary);

namespace detail {

optim::TerminationOptions termination(const SolverSettings& s);
linesearch::LineSearchOptions line_search(const SolverSettings& s, linesearch::LineSearchKind fallback);
optim::IterationCallback printer(const SolverSettings& s);
/// Fills the indefinite-Hessian strategy of `o` from --strategy.
void set_strategy(const SolverSettings& s, optim::NewtonOptions& o);

}  // namespace detail

/// Runs the method named in `settings` on f from x (x receives the result).
template <class F>
optim::Summary solve(F& f, Vector<ScalarOf<F>>& x, const SolverSettings& s) {
  using linesearch::LineSearchKind;
  const std::string& m = s.method;
  if (m == "gd") {
    optim::GradientDescentOptions o{.termination = detail::termination(s), .callback = detail::printer(s),
                                    .learning_rate = s.learning_rate};
    if (s.line_search == "none")
      o.line_search.reset();
    else
      o.line_search = detail::line_search(s, LineSearchKind::Armijo);
    return optim::minimize(f, x, o);
  }
  if (m == "bfgs") {
    optim::BfgsOptions o{.termination = detail::termination(s), .callback = detail::printer(s)};
    o.line_search = detail::line_search(s, LineSearchKind::StrongWolfe);
    return optim::minimize(f, x, o);
  }
  if (m == "lbfgs") {
    optim::LbfgsOptions o{.termination = detail::termination(s), .callback = detail::printer(s),
                          .line_search = detail::line_search(s, LineSearchKind::StrongWolfe),
                          .memory = s.memory};
    return optim::minimize(f, x, o);
  }
  if (m == "newton") {
    optim::NewtonOptions o{.termination = detail::termination(s), .callback = detail::printer(s)};
    detail::set_strategy(s, o);
    if (s.line_search == "none") o.use_line_search = false;
    return optim::minimize(f, x, o);
  }
  if (m == "newton-cg") {
    return optim::minimize(f, x, optim::NewtonCgOptions{.termination = detail::termination(s),
                                                        .callback = detail::printer(s)});
  }
  if (m == "trust-ncg") {
    return optim::minimize(f, x, optim::TrustNcgOptions{.termination = detail::termination(s),
                                                        .callback = detail::printer(s)});
  }
  if (m == "trust-exact") {
    return optim::minimize(f, x, optim::TrustExactOptions{.termination = detail::termination(s),
                                                          .callback = detail::printer(s)});
  }
  if (m == "lm" || m == "gauss-newton") {
    if constexpr (ResidualObjective<F>) {
      if (m == "lm")
        return optim::minimize(f, x, optim::LevenbergMarquardtOptions{.termination = detail::termination(s),
                                                                      .callback = detail::printer(s)});
      return optim::minimize(f, x, optim::GaussNewtonOptions{.termination = detail::termination(s),
                                                             .callback = detail::printer(s)});
    } else {
      throw InvalidArgument("method '" + m +
                            "' needs a least-squares objective (residuals); use --model linear");
    }
  }
  std::string valid;
  for (const auto& name : solver_methods()) valid += (valid.empty() ? "" : ", ") + name;
  throw InvalidArgument("unknown method '" + m + "' (valid: " + valid + ")");
}

}  // namespace hesse::cli
