// What a full-batch solver reports (in the manner of Ceres' Solver::Summary):
// why it stopped, where it started and ended, how much work it did, and one
// record per iteration.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hesse::optim {

enum class TerminationReason {
  GradientTolerance,   ///< |g|_inf <= gradient_tolerance (or the relative test)
  FunctionTolerance,   ///< relative decrease of f below function_tolerance
  StepTolerance,       ///< |step| <= step_tolerance (1 + |x|)
  IterationLimit,
  EvaluationLimit,
  TimeLimit,
  UserStop,            ///< the iteration callback returned false
  LineSearchFailure,   ///< no acceptable step along a descent direction
  NumericalFailure,    ///< NaN/Inf or a breakdown that recovery could not fix
};

std::string_view to_string(TerminationReason reason);
/// Gradient, function and step tolerances count as convergence.
bool is_convergence(TerminationReason reason);

/// One iteration, as the callback sees it and the Summary keeps it.
struct IterationRecord {
  int iteration = 0;           ///< 0 = the starting point
  double value = 0;
  double gradient_norm = 0;    ///< infinity norm
  double step_norm = 0;        ///< |x_k - x_{k-1}|_2
  double step_size = 0;        ///< line-search step length, or trust radius
  int line_search_trials = 0;
  int inner_iterations = 0;    ///< CG iterations, Levenberg shifts, ...
  std::string event;           ///< e.g. "indefinite: levenberg shift", "step rejected"
  double seconds = 0;          ///< since the solver started
};

/// Evaluations of each kind; a value-and-gradient call counts once in both.
struct EvaluationCounts {
  long long value = 0;
  long long gradient = 0;
  long long hessian_vector = 0;
  long long gauss_newton_vector = 0;
  long long hessian = 0;
  long long line_search_trials = 0;
};

struct Summary {
  std::string method;
  TerminationReason termination = TerminationReason::IterationLimit;
  std::string message;  ///< human-readable detail of the termination
  double initial_value = 0;
  double final_value = 0;              ///< value at the returned (best) point
  double initial_gradient_norm = 0;
  double gradient_norm = 0;            ///< at the returned point, infinity norm
  int iterations = 0;
  EvaluationCounts counts;
  double seconds = 0;
  std::vector<IterationRecord> history;
  /// Named events and how often they occurred, e.g. "positive definite",
  /// "indefinite", "bfgs update skipped", "non-finite value recovered".
  std::map<std::string, long long> events;

  bool converged() const { return is_convergence(termination); }
  /// One line: method, termination, iterations, values, gradient norm, time.
  std::string brief_report() const;
  /// Several lines: the brief report, every count and event.
  std::string full_report() const;
};

/// Called after every iteration; returning false stops the solver (UserStop).
using IterationCallback = std::function<bool(const IterationRecord&)>;

}  // namespace hesse::optim
