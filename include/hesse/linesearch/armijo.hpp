// Backtracking line search with the Armijo (sufficient-decrease) condition,
//   phi(a) <= phi(0) + c1 a phi'(0),          phi(a) = f(x + a d),
// (Nocedal & Wright, 2nd ed., eq. 3.4), trying a shorter step after each
// rejection. The shorter step minimises an interpolant of what is known
// (section 3.5): the quadratic through phi(0), phi'(0) and phi(a0) after the
// first rejection (eq. 3.58), then the cubic through phi(0), phi'(0) and the
// last two rejected trials (eq. 3.59 and the formula below it). Each new step
// is safeguarded into [0.1 a, 0.5 a] of the rejected step a, so that it
// neither stalls nor collapses. A non-finite trial halves the step.
//
// The search never lengthens the initial step; pass a good one (1 for Newton
// and quasi-Newton directions).
#pragma once

#include "hesse/linesearch/line_search.hpp"

namespace hesse::linesearch {

namespace detail {

/// Minimiser of the quadratic with phi(0), phi'(0) and phi(step) (N&W eq. 3.58).
inline double quadratic_backtrack(double value0, double slope0, double step, double value) {
  return -slope0 * step * step / (2 * (value - value0 - slope0 * step));
}

/// Minimiser of the cubic with phi(0), phi'(0), phi(step) and phi(previous)
/// (N&W section 3.5, after eq. 3.58): phi(a) ~ c3 a^3 + c2 a^2 + phi'(0) a + phi(0).
inline double cubic_backtrack(double value0, double slope0, double step, double value,
                              double previous_step, double previous_value) {
  const double excess = value - value0 - slope0 * step;
  const double previous_excess = previous_value - value0 - slope0 * previous_step;
  const double denominator = step * step * previous_step * previous_step * (step - previous_step);
  const double c3 = (previous_step * previous_step * excess - step * step * previous_excess) / denominator;
  const double c2 = (-previous_step * previous_step * previous_step * excess +
                     step * step * step * previous_excess) /
                    denominator;
  if (c3 == 0) return -slope0 / (2 * c2);
  return (-c2 + std::sqrt(c2 * c2 - 3 * c3 * slope0)) / (3 * c3);
}

}  // namespace detail

template <DifferentiableObjective F>
LineSearchResult armijo_backtracking(optim::Evaluator<F>& evaluator, const Vector<ScalarOf<F>>& x,
                                     ScalarOf<F> fx, const Vector<ScalarOf<F>>& g,
                                     const Vector<ScalarOf<F>>& direction, double initial_step,
                                     const LineSearchOptions& options, Vector<ScalarOf<F>>& x_new,
                                     ScalarOf<F>& f_new, Vector<ScalarOf<F>>& g_new) {
  options.validate("line_search");
  LineSearchResult result;
  const double slope0 =
      detail::initial_slope(x, fx, g, direction, initial_step, x_new, f_new, g_new, result);
  if (slope0 == 0) return result;
  const double value0 = static_cast<double>(fx);

  double step = std::clamp(initial_step, options.min_step, options.max_step);
  double best_step = 0;
  double best_value = value0;
  double last_step = 0;
  // The previous rejected finite trial, which the cubic needs.
  double previous_step = 0;
  double previous_value = 0;
  bool have_previous = false;
  while (result.trials < options.max_trials) {
    const detail::Trial trial =
        detail::evaluate_trial(evaluator, x, direction, step, x_new, f_new, g_new, result);
    last_step = step;
    if (trial.finite && trial.value < best_value) {
      best_value = trial.value;
      best_step = step;
    }
    if (trial.finite && trial.value <= value0 + options.sufficient_decrease * step * slope0) {
      result.success = true;
      result.step = step;
      return result;
    }
    double next = detail::kNonFiniteShrink * step;
    if (trial.finite) {
      const double interpolated =
          have_previous ? detail::cubic_backtrack(value0, slope0, step, trial.value, previous_step,
                                                  previous_value)
                        : detail::quadratic_backtrack(value0, slope0, step, trial.value);
      if (std::isfinite(interpolated)) next = std::clamp(interpolated, 0.1 * step, 0.5 * step);
      previous_step = step;
      previous_value = trial.value;
      have_previous = true;
    } else {
      have_previous = false;
    }
    if (next < options.min_step) {
      result.message = "armijo: the step fell below min_step = " + std::to_string(options.min_step) +
                       " without sufficient decrease";
      break;
    }
    step = next;
  }
  if (result.message.empty())
    result.message = "armijo: no sufficient decrease within max_trials = " +
                     std::to_string(options.max_trials);
  detail::settle_at_best(evaluator, x, fx, g, direction, best_step, last_step, x_new, f_new, g_new,
                         result);
  return result;
}

}  // namespace hesse::linesearch
