// The iteration loop every full-batch solver shares. A solver supplies only
// its step rule; the loop evaluates the start, applies the termination tests
// after each step, calls the callback, records the history, enforces limits
// and returns the best point seen, whatever happened.
#pragma once

#include <cmath>
#include <string>
#include <utility>

#include "hesse/optim/evaluator.hpp"

namespace hesse::optim {

/// What one step of a solver's rule reports back to the loop.
struct StepOutcome {
  bool ok = true;  ///< false: stop with `failure` (the best point is kept)
  TerminationReason failure = TerminationReason::NumericalFailure;
  std::string message;
  double step_size = 0;       ///< line-search step or trust radius, for the record
  int line_search_trials = 0;
  int inner_iterations = 0;
  std::string event;          ///< counted in Summary::events and kept in the record

  static StepOutcome fail(TerminationReason reason, std::string why) {
    StepOutcome out;
    out.ok = false;
    out.failure = reason;
    out.message = std::move(why);
    return out;
  }
};

/// Runs `step(evaluator, x, fx, g, iteration) -> StepOutcome` until a test in
/// `termination` holds. The step must leave x, fx, g at the accepted point
/// (evaluated through the evaluator, so counts stay exact); it may leave them
/// unchanged for a rejected step (a trust-region method) and say so in
/// `event`. On return x holds the best point seen.
template <DifferentiableObjective F, class Step>
Summary run_solver(std::string method, F& f, Vector<ScalarOf<F>>& x,
                   const TerminationOptions& termination, const IterationCallback& callback,
                   Step&& step) {
  using T = ScalarOf<F>;
  termination.validate(method);
  HESSE_REQUIRE(x.size() == f.dimension(), method + ": the starting point has " +
                                               std::to_string(x.size()) +
                                               " entries, the objective has dimension " +
                                               std::to_string(f.dimension()));
  Summary summary;
  summary.method = method;
  Evaluator<F> evaluator(f, termination, summary);
  Vector<T> g(x.size());
  T fx = evaluator.value_and_gradient(x, g);
  summary.initial_value = static_cast<double>(fx);
  summary.initial_gradient_norm = g.size() ? static_cast<double>(g.template lpNorm<Eigen::Infinity>()) : 0.0;

  auto finish = [&](TerminationReason reason, std::string message) {
    summary.termination = reason;
    summary.message = std::move(message);
    if (evaluator.has_best()) {
      x = evaluator.best_x();
      summary.final_value = static_cast<double>(evaluator.best_value());
      summary.gradient_norm = evaluator.best_gradient().size()
                                  ? static_cast<double>(evaluator.best_gradient().template lpNorm<Eigen::Infinity>())
                                  : 0.0;
    } else {
      summary.final_value = static_cast<double>(fx);
      summary.gradient_norm = std::numeric_limits<double>::quiet_NaN();
    }
    summary.seconds = evaluator.elapsed_seconds();
    return summary;
  };

  IterationRecord start;
  start.value = summary.initial_value;
  start.gradient_norm = summary.initial_gradient_norm;
  summary.history.push_back(start);
  if (!std::isfinite(summary.initial_value) || !g.allFinite())
    return finish(TerminationReason::NumericalFailure,
                  "the objective or its gradient is not finite at the starting point");
  if (callback && !callback(start)) return finish(TerminationReason::UserStop, "stopped by the callback");

  const double g0 = summary.initial_gradient_norm;
  auto gradient_converged = [&](double gnorm) {
    return gnorm <= termination.gradient_tolerance ||
           (termination.relative_gradient_tolerance > 0 &&
            gnorm <= termination.relative_gradient_tolerance * g0);
  };
  if (gradient_converged(g0))
    return finish(TerminationReason::GradientTolerance, "gradient tolerance met at the starting point");

  Vector<T> previous_x;
  for (int iteration = 1;; ++iteration) {
    if (iteration > termination.max_iterations)
      return finish(TerminationReason::IterationLimit,
                    "reached max_iterations = " + std::to_string(termination.max_iterations));
    previous_x = x;
    const double previous_f = static_cast<double>(fx);
    StepOutcome outcome = step(evaluator, x, fx, g, iteration);
    summary.iterations = iteration;
    if (!outcome.event.empty()) evaluator.event(outcome.event);

    IterationRecord record;
    record.iteration = iteration;
    record.value = static_cast<double>(fx);
    record.gradient_norm = g.size() ? static_cast<double>(g.template lpNorm<Eigen::Infinity>()) : 0.0;
    record.step_norm = static_cast<double>((x - previous_x).norm());
    record.step_size = outcome.step_size;
    record.line_search_trials = outcome.line_search_trials;
    record.inner_iterations = outcome.inner_iterations;
    record.event = outcome.event;
    record.seconds = evaluator.elapsed_seconds();
    summary.counts.line_search_trials += outcome.line_search_trials;
    summary.history.push_back(record);

    if (!outcome.ok) return finish(outcome.failure, outcome.message);
    if (callback && !callback(record)) return finish(TerminationReason::UserStop, "stopped by the callback");
    if (gradient_converged(record.gradient_norm))
      return finish(TerminationReason::GradientTolerance, "gradient tolerance met");
    const bool moved = record.step_norm > 0;
    if (moved && termination.function_tolerance > 0 &&
        std::abs(previous_f - record.value) <=
            termination.function_tolerance * std::max(1.0, std::abs(previous_f)))
      return finish(TerminationReason::FunctionTolerance, "relative change of f below function_tolerance");
    if (moved && termination.step_tolerance > 0 &&
        record.step_norm <= termination.step_tolerance * (1.0 + static_cast<double>(previous_x.norm())))
      return finish(TerminationReason::StepTolerance, "step below step_tolerance");
    if (evaluator.evaluation_limit_reached())
      return finish(TerminationReason::EvaluationLimit,
                    "reached max_evaluations = " + std::to_string(termination.max_evaluations));
    if (evaluator.time_limit_reached())
      return finish(TerminationReason::TimeLimit, "reached time_limit_seconds");
  }
}

}  // namespace hesse::optim
