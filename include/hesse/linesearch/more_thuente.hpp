// Line search for the strong Wolfe conditions (Nocedal & Wright, 2nd ed., eq. 3.7),
//   phi(a) <= phi(0) + c1 a phi'(0)   and   |phi'(a)| <= c2 |phi'(0)|,
// after J. J. More and D. J. Thuente, "Line search algorithms with guaranteed
// sufficient decrease", ACM TOMS 20(3), 1994, pp. 286-307 (MT below).
//
// The search keeps an interval of uncertainty [a_l, a_u] (the endpoint a_l is
// the trial with the least value of the function being searched) and, at
// each trial a_t, chooses the next one from cubic, quadratic and secant
// interpolants of the values and slopes at a_l and a_t (MT section 4, cases
// 1-4). Until the interval is bracketed the trial is extrapolated into
// [a_t + 1.1 (a_t - a_l), a_t + 4 (a_t - a_l)]; once bracketed, a step that
// fails to shrink the interval by a third is replaced by bisection.
//
// While no trial has satisfied sufficient decrease together with
// phi'(a) >= min(c1, c2) phi'(0), the search works on the auxiliary function
// psi(a) = phi(a) - phi(0) - c1 a phi'(0) (MT section 3), whose minimisers
// satisfy sufficient decrease; afterwards on phi itself.
//
// A non-finite trial becomes an upper limit on later trials, and the next
// trial is halfway back to a_l.
#pragma once

#include <limits>

#include "hesse/linesearch/line_search.hpp"

namespace hesse::linesearch {

namespace detail {

/// A trial step with its value and slope.
struct SearchPoint {
  double step = 0;
  double value = 0;
  double slope = 0;
};

/// Minimiser of the cubic that interpolates values and slopes at a and b
/// (N&W eq. 3.59), evaluated with MT's scaling against overflow. `exists` is
/// false when the cubic has no local minimiser (negative discriminant).
inline double cubic_minimizer(const SearchPoint& a, const SearchPoint& b, bool* exists = nullptr) {
  const double d1 = a.slope + b.slope - 3 * (a.value - b.value) / (a.step - b.step);
  const double scale = std::max({std::abs(d1), std::abs(a.slope), std::abs(b.slope)});
  const double radicand = (d1 / scale) * (d1 / scale) - (a.slope / scale) * (b.slope / scale);
  if (exists) *exists = radicand > 0;
  double d2 = scale * std::sqrt(std::max(0.0, radicand));
  if (b.step < a.step) d2 = -d2;
  return b.step - (b.step - a.step) * (b.slope + d2 - d1) / (b.slope - a.slope + 2 * d2);
}

/// Minimiser of the quadratic with the value and slope at a and the value at b.
inline double quadratic_minimizer(const SearchPoint& a, const SearchPoint& b) {
  const double width = b.step - a.step;
  return a.step - a.slope * width * width / (2 * (b.value - a.value - a.slope * width));
}

/// Zero of the secant of the slopes at a and b.
inline double secant_step(const SearchPoint& a, const SearchPoint& b) {
  return b.step + b.slope / (b.slope - a.slope) * (a.step - b.step);
}

/// MT section 4: the next trial from the best point `low` (a_l), the other
/// endpoint `high` (a_u) and the new trial, within [lower, upper] while not
/// bracketed; then moves the endpoints (the "updating algorithm" of MT
/// section 2).
inline double select_trial(SearchPoint& low, SearchPoint& high, const SearchPoint& trial,
                           bool& bracketed, double lower, double upper) {
  const bool slopes_differ_in_sign =
      (trial.slope < 0 && low.slope > 0) || (trial.slope > 0 && low.slope < 0);
  const bool forward = trial.step > low.step;
  double next = 0;
  if (trial.value > low.value) {
    // Case 1: a higher value; the minimiser is bracketed between low and the trial.
    const double cubic = cubic_minimizer(low, trial);
    const double quadratic = quadratic_minimizer(low, trial);
    next = std::abs(cubic - low.step) < std::abs(quadratic - low.step)
               ? cubic
               : cubic + (quadratic - cubic) / 2;
    bracketed = true;
  } else if (slopes_differ_in_sign) {
    // Case 2: a lower value and the slope changed sign: bracketed again.
    const double cubic = cubic_minimizer(low, trial);
    const double secant = secant_step(low, trial);
    next = std::abs(cubic - trial.step) > std::abs(secant - trial.step) ? cubic : secant;
    bracketed = true;
  } else if (std::abs(trial.slope) < std::abs(low.slope)) {
    // Case 3: a lower value, same sign, smaller slope. Use the cubic only when
    // it has a minimiser beyond the trial; otherwise head for the bound.
    bool exists = false;
    double cubic = cubic_minimizer(low, trial, &exists);
    if (!exists || (cubic - trial.step) * (trial.step - low.step) <= 0) cubic = forward ? upper : lower;
    const double secant = secant_step(low, trial);
    if (bracketed) {
      next = std::abs(cubic - trial.step) < std::abs(secant - trial.step) ? cubic : secant;
      const double limit = trial.step + 0.66 * (high.step - trial.step);
      next = forward ? std::min(limit, next) : std::max(limit, next);
    } else {
      next = std::abs(cubic - trial.step) > std::abs(secant - trial.step) ? cubic : secant;
      next = std::clamp(next, lower, upper);
    }
  } else {
    // Case 4: a lower value, same sign, slope not smaller: extrapolate.
    if (bracketed)
      next = cubic_minimizer(trial, high);
    else
      next = forward ? upper : lower;
  }

  if (trial.value > low.value) {
    high = trial;
  } else {
    if (slopes_differ_in_sign) high = low;
    low = trial;
  }
  return next;
}

}  // namespace detail

template <DifferentiableObjective F>
LineSearchResult more_thuente(optim::Evaluator<F>& evaluator, const Vector<ScalarOf<F>>& x,
                              ScalarOf<F> fx, const Vector<ScalarOf<F>>& g,
                              const Vector<ScalarOf<F>>& direction, double initial_step,
                              const LineSearchOptions& options, Vector<ScalarOf<F>>& x_new,
                              ScalarOf<F>& f_new, Vector<ScalarOf<F>>& g_new) {
  using detail::SearchPoint;
  // Relative width below which the interval of uncertainty is treated as a point.
  constexpr double kMinRelativeWidth = 1e-14;
  constexpr double kExtrapolateMin = 1.1;
  constexpr double kExtrapolateMax = 4.0;

  options.validate("line_search");
  LineSearchResult result;
  const double slope0 =
      detail::initial_slope(x, fx, g, direction, initial_step, x_new, f_new, g_new, result);
  if (slope0 == 0) return result;
  const double value0 = static_cast<double>(fx);
  const double c1 = options.sufficient_decrease;
  const double c2 = options.curvature;
  // psi(a) = phi(a) - phi(0) - c1 a phi'(0) enters only through this slope:
  // psi values differ from phi values by a linear term.
  const double psi_slope_shift = c1 * slope0;

  double max_step = options.max_step;  // lowered by non-finite trials
  double step = std::clamp(initial_step, options.min_step, max_step);
  SearchPoint low{0, value0, slope0};
  SearchPoint high{0, value0, slope0};
  bool bracketed = false;
  bool auxiliary = true;  // working on psi (MT's stage 1)
  double lower = 0;
  double upper = step + kExtrapolateMax * step;
  double width = options.max_step - options.min_step;
  double previous_width = 2 * width;
  double best_step = 0;
  double best_value = value0;
  double last_step = 0;

  while (true) {
    if (result.trials >= options.max_trials) {
      result.message = "strong wolfe: no acceptable step within max_trials = " +
                       std::to_string(options.max_trials);
      break;
    }
    const detail::Trial trial =
        detail::evaluate_trial(evaluator, x, direction, step, x_new, f_new, g_new, result);
    last_step = step;
    if (!trial.finite) {
      max_step = step;
      step = low.step + detail::kNonFiniteShrink * (step - low.step);
      if (step <= options.min_step || step == low.step) {
        result.message = "strong wolfe: every trial beyond the last finite point was not finite";
        break;
      }
      upper = std::min(upper, max_step);
      continue;
    }
    if (trial.value < best_value) {
      best_value = trial.value;
      best_step = step;
    }

    const bool sufficient_decrease = trial.value <= value0 + c1 * step * slope0;
    if (sufficient_decrease && std::abs(trial.slope) <= c2 * -slope0) {
      result.success = true;
      result.step = step;
      return result;
    }
    if (auxiliary && sufficient_decrease && trial.slope >= std::min(c1, c2) * slope0) auxiliary = false;

    if (step >= max_step && sufficient_decrease && trial.slope <= psi_slope_shift) {
      result.message = "strong wolfe: the step reached max_step = " + std::to_string(max_step);
      break;
    }
    if (step <= options.min_step && (!sufficient_decrease || trial.slope >= psi_slope_shift)) {
      result.message = "strong wolfe: the step reached min_step = " + std::to_string(options.min_step);
      break;
    }

    SearchPoint current{step, trial.value, trial.slope};
    if (auxiliary && trial.value <= low.value && !sufficient_decrease) {
      // MT section 3: select on psi (shifting values and slopes by the linear
      // term), then shift the endpoints back.
      auto to_psi = [&](SearchPoint p) {
        p.value -= p.step * psi_slope_shift;
        p.slope -= psi_slope_shift;
        return p;
      };
      auto from_psi = [&](SearchPoint p) {
        p.value += p.step * psi_slope_shift;
        p.slope += psi_slope_shift;
        return p;
      };
      SearchPoint low_psi = to_psi(low);
      SearchPoint high_psi = to_psi(high);
      step = detail::select_trial(low_psi, high_psi, to_psi(current), bracketed, lower, upper);
      low = from_psi(low_psi);
      high = from_psi(high_psi);
    } else {
      step = detail::select_trial(low, high, current, bracketed, lower, upper);
    }

    if (bracketed) {
      if (std::abs(high.step - low.step) >= 0.66 * previous_width)
        step = low.step + 0.5 * (high.step - low.step);
      previous_width = width;
      width = std::abs(high.step - low.step);
      lower = std::min(low.step, high.step);
      upper = std::max(low.step, high.step);
    } else {
      lower = step + kExtrapolateMin * (step - low.step);
      upper = step + kExtrapolateMax * (step - low.step);
    }
    step = std::clamp(step, options.min_step, max_step);
    // MT's rounding-error test: a bracketed trial that is not strictly inside
    // the interval, or an interval of (relative) width zero, cannot progress.
    if (bracketed && (step <= lower || step >= upper || upper - lower <= kMinRelativeWidth * upper)) {
      result.message = "strong wolfe: rounding errors prevent progress in the interval of uncertainty";
      break;
    }
  }
  detail::settle_at_best(evaluator, x, fx, g, direction, best_step, last_step, x_new, f_new, g_new,
                         result);
  return result;
}

}  // namespace hesse::linesearch
