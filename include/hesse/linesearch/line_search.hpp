// Line searches with one interface: along a descent direction d from x, find
// a step alpha so that x + alpha d is acceptable, and leave the accepted point
// evaluated. Any solver that uses a line search takes either kind.
//
//   Armijo       backtracking with quadratic/cubic interpolation until the
//                sufficient-decrease condition holds (Nocedal & Wright 3.5)
//   StrongWolfe  More & Thuente (1994): sufficient decrease and
//                |phi'(alpha)| <= curvature |phi'(0)|
//
// A trial whose value or gradient is not finite counts as too long a step: the
// search shrinks it (event "non-finite trial") instead of failing.
//
// Both kinds share one call, `line_search(evaluator, x, fx, g, d, initial_step,
// options, x_new, f_new, g_new)`, defined at the end of this file. Every trial
// is a value-and-gradient evaluation through the solver's Evaluator, so the
// Summary's counts stay exact. On success x_new, f_new, g_new hold the accepted
// point; on failure (not a descent direction, trials exhausted, the step
// outside [min_step, max_step], no progress possible) they hold the best trial
// seen, which is x itself when no trial lowered f.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/core/types.hpp"
#include "hesse/objective/concepts.hpp"
#include "hesse/optim/evaluator.hpp"

namespace hesse::linesearch {

enum class LineSearchKind { Armijo, StrongWolfe };

/// "armijo" / "strong-wolfe"; parse throws InvalidArgument listing the names.
const char* to_string(LineSearchKind kind);
LineSearchKind parse_line_search(const std::string& name);

struct LineSearchOptions {
  LineSearchKind kind = LineSearchKind::StrongWolfe;
  double sufficient_decrease = 1e-4;  ///< c1 in phi(a) <= phi(0) + c1 a phi'(0)
  double curvature = 0.9;             ///< c2 of the strong Wolfe condition (0.1 for CG-like methods)
  int max_trials = 30;                ///< function evaluations per search
  double min_step = 1e-20;
  double max_step = 1e20;
  void validate(const std::string& owner) const;
};

struct LineSearchResult {
  bool success = false;
  double step = 0;         ///< accepted alpha
  int trials = 0;          ///< function evaluations made
  int non_finite_trials = 0;
  std::string message;     ///< why it failed, when it did
};

template <DifferentiableObjective F>
LineSearchResult armijo_backtracking(optim::Evaluator<F>& evaluator, const Vector<ScalarOf<F>>& x,
                                     ScalarOf<F> fx, const Vector<ScalarOf<F>>& g,
                                     const Vector<ScalarOf<F>>& direction, double initial_step,
                                     const LineSearchOptions& options, Vector<ScalarOf<F>>& x_new,
                                     ScalarOf<F>& f_new, Vector<ScalarOf<F>>& g_new);

template <DifferentiableObjective F>
LineSearchResult more_thuente(optim::Evaluator<F>& evaluator, const Vector<ScalarOf<F>>& x,
                              ScalarOf<F> fx, const Vector<ScalarOf<F>>& g,
                              const Vector<ScalarOf<F>>& direction, double initial_step,
                              const LineSearchOptions& options, Vector<ScalarOf<F>>& x_new,
                              ScalarOf<F>& f_new, Vector<ScalarOf<F>>& g_new);

namespace detail {

/// A trial that is not finite is retreated from by this factor towards the
/// last finite point.
inline constexpr double kNonFiniteShrink = 0.5;

/// phi(step) = f(x + step d) and phi'(step) = g(x + step d).d of one trial.
struct Trial {
  double value = 0;
  double slope = 0;
  bool finite = false;
};

/// Evaluates the trial x_new = x + step d into x_new, f_new, g_new; counts it
/// (and a non-finite one, also as the event "non-finite trial").
template <DifferentiableObjective F>
Trial evaluate_trial(optim::Evaluator<F>& evaluator, const Vector<ScalarOf<F>>& x,
                     const Vector<ScalarOf<F>>& direction, double step, Vector<ScalarOf<F>>& x_new,
                     ScalarOf<F>& f_new, Vector<ScalarOf<F>>& g_new, LineSearchResult& result) {
  using T = ScalarOf<F>;
  x_new = x + static_cast<T>(step) * direction;
  f_new = evaluator.value_and_gradient(x_new, g_new);
  ++result.trials;
  Trial trial;
  trial.value = static_cast<double>(f_new);
  trial.slope = static_cast<double>(g_new.dot(direction));
  trial.finite = std::isfinite(trial.value) && std::isfinite(trial.slope);
  if (!trial.finite) {
    ++result.non_finite_trials;
    evaluator.event("non-finite trial");
  }
  return trial;
}

/// After a failed search, leaves x_new, f_new, g_new at the best trial: x
/// itself when best_step is 0, the last trial when that was the best, and
/// otherwise a re-evaluation at best_step (counted as a trial).
template <DifferentiableObjective F>
void settle_at_best(optim::Evaluator<F>& evaluator, const Vector<ScalarOf<F>>& x, ScalarOf<F> fx,
                    const Vector<ScalarOf<F>>& g, const Vector<ScalarOf<F>>& direction,
                    double best_step, double last_step, Vector<ScalarOf<F>>& x_new,
                    ScalarOf<F>& f_new, Vector<ScalarOf<F>>& g_new, LineSearchResult& result) {
  result.success = false;
  result.step = best_step;
  if (best_step == 0) {
    x_new = x;
    f_new = fx;
    g_new = g;
  } else if (best_step != last_step) {
    evaluate_trial(evaluator, x, direction, best_step, x_new, f_new, g_new, result);
  }
}

/// The common entry checks: a descent direction and a positive initial step.
/// Returns phi'(0) = g.d, or fails `result` (leaving x_new at x) and returns 0.
template <class T>
double initial_slope(const Vector<T>& x, T fx, const Vector<T>& g, const Vector<T>& direction,
                     double initial_step, Vector<T>& x_new, T& f_new, Vector<T>& g_new,
                     LineSearchResult& result) {
  HESSE_REQUIRE(direction.size() == x.size() && g.size() == x.size(),
                "line_search: x, g and the direction must have the same size");
  HESSE_REQUIRE(initial_step > 0 && std::isfinite(initial_step),
                "line_search: initial_step = " + std::to_string(initial_step) +
                    ": must be finite and > 0");
  const double slope = static_cast<double>(g.dot(direction));
  if (slope < 0 && std::isfinite(slope)) return slope;
  x_new = x;
  f_new = fx;
  g_new = g;
  result.success = false;
  result.message = "not a descent direction: g.d = " + std::to_string(slope) + " (must be < 0)";
  return 0;
}

}  // namespace detail

/// Runs the line search of `options.kind` (see the top of this file).
template <DifferentiableObjective F>
LineSearchResult line_search(optim::Evaluator<F>& evaluator, const Vector<ScalarOf<F>>& x,
                             ScalarOf<F> fx, const Vector<ScalarOf<F>>& g,
                             const Vector<ScalarOf<F>>& direction, double initial_step,
                             const LineSearchOptions& options, Vector<ScalarOf<F>>& x_new,
                             ScalarOf<F>& f_new, Vector<ScalarOf<F>>& g_new) {
  switch (options.kind) {
    case LineSearchKind::Armijo:
      return armijo_backtracking(evaluator, x, fx, g, direction, initial_step, options, x_new,
                                 f_new, g_new);
    case LineSearchKind::StrongWolfe:
      break;
  }
  return more_thuente(evaluator, x, fx, g, direction, initial_step, options, x_new, f_new, g_new);
}

}  // namespace hesse::linesearch

#include "hesse/linesearch/armijo.hpp"        // IWYU pragma: export
#include "hesse/linesearch/more_thuente.hpp"  // IWYU pragma: export
