#include "hesse/optim/summary.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "hesse/core/error.hpp"
#include "hesse/optim/termination.hpp"

namespace hesse::optim {

std::string_view to_string(TerminationReason reason) {
  switch (reason) {
    case TerminationReason::GradientTolerance: return "gradient_tolerance";
    case TerminationReason::FunctionTolerance: return "function_tolerance";
    case TerminationReason::StepTolerance: return "step_tolerance";
    case TerminationReason::IterationLimit: return "iteration_limit";
    case TerminationReason::EvaluationLimit: return "evaluation_limit";
    case TerminationReason::TimeLimit: return "time_limit";
    case TerminationReason::UserStop: return "user_stop";
    case TerminationReason::LineSearchFailure: return "line_search_failure";
    case TerminationReason::NumericalFailure: return "numerical_failure";
  }
  return "unknown";
}

bool is_convergence(TerminationReason reason) {
  return reason == TerminationReason::GradientTolerance ||
         reason == TerminationReason::FunctionTolerance ||
         reason == TerminationReason::StepTolerance;
}

std::string Summary::brief_report() const {
  char line[512];
  std::snprintf(line, sizeof line,
                "%s: %s (%s), %d iterations, f %.6e -> %.6e, |g|_inf %.3e, %.3f s",
                method.c_str(), converged() ? "converged" : "not converged",
                std::string(to_string(termination)).c_str(), iterations, initial_value,
                final_value, gradient_norm, seconds);
  return line;
}

std::string Summary::full_report() const {
  std::ostringstream out;
  out << brief_report() << "\n";
  out << "  termination: " << to_string(termination) << ": " << message << "\n";
  out << "  evaluations: value " << counts.value << ", gradient " << counts.gradient
      << ", hessian-vector " << counts.hessian_vector << ", gauss-newton-vector "
      << counts.gauss_newton_vector << ", hessian " << counts.hessian << ", line-search trials "
      << counts.line_search_trials << "\n";
  for (const auto& [name, count] : events) out << "  event: " << name << " x " << count << "\n";
  return out.str();
}

void TerminationOptions::validate(const std::string& owner) const {
  auto require = [&](bool ok, const std::string& field, double value, const char* rule) {
    if (!ok) {
      std::ostringstream message;
      message << owner << ".termination." << field << " = " << value << ": " << rule;
      throw InvalidArgument(message.str());
    }
  };
  auto finite_non_negative = [](double v) { return std::isfinite(v) && v >= 0; };
  require(finite_non_negative(gradient_tolerance), "gradient_tolerance", gradient_tolerance,
          "must be finite and >= 0");
  require(finite_non_negative(relative_gradient_tolerance), "relative_gradient_tolerance",
          relative_gradient_tolerance, "must be finite and >= 0");
  require(finite_non_negative(function_tolerance), "function_tolerance", function_tolerance,
          "must be finite and >= 0");
  require(finite_non_negative(step_tolerance), "step_tolerance", step_tolerance,
          "must be finite and >= 0");
  require(max_iterations >= 0, "max_iterations", max_iterations, "must be >= 0");
  require(max_evaluations >= 0, "max_evaluations", double(max_evaluations), "must be >= 0 (0: no limit)");
  require(finite_non_negative(time_limit_seconds), "time_limit_seconds", time_limit_seconds,
          "must be finite and >= 0 (0: no limit)");
}

}  // namespace hesse::optim
