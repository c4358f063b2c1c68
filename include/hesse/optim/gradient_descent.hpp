// Gradient descent, x_{k+1} = x_k - a_k g_k, with a fixed learning rate a_k = a
// or a line search along -g_k (Nocedal & Wright, 2nd ed., section 3.1).
//
// With a line search, the first trial step of iteration 1 is the learning
// rate; later ones assume the first-order change of f repeats (N&W eq. 3.60):
//   a_k^0 = a_{k-1} |g_{k-1}|^2 / |g_k|^2.
// A fixed step that lands on a non-finite value or gradient ends the run
// (NumericalFailure, event "non-finite value") at the best point seen.
#pragma once

#include <optional>
#include <sstream>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/linesearch/line_search.hpp"
#include "hesse/optim/solver_loop.hpp"

namespace hesse::optim {

struct GradientDescentOptions {
  TerminationOptions termination;
  IterationCallback callback;
  /// The fixed step without a line search; the first trial step with one.
  double learning_rate = 1e-2;
  /// Empty: fixed steps of learning_rate.
  std::optional<linesearch::LineSearchOptions> line_search =
      linesearch::LineSearchOptions{.kind = linesearch::LineSearchKind::Armijo};

  /// Throws InvalidArgument naming gradient_descent.<field>, its value and the rule.
  void validate() const {
    if (!(learning_rate > 0 && std::isfinite(learning_rate))) {
      std::ostringstream message;
      message << "gradient_descent.learning_rate = " << learning_rate << ": must be finite and > 0";
      throw InvalidArgument(message.str());
    }
    if (line_search) line_search->validate("gradient_descent.line_search");
  }
};

template <DifferentiableObjective F>
Summary minimize(F& f, Vector<ScalarOf<F>>& x, const GradientDescentOptions& options) {
  using T = ScalarOf<F>;
  options.validate();
  Vector<T> direction(x.size());
  Vector<T> x_new(x.size());
  Vector<T> g_new(x.size());
  double previous_step = options.learning_rate;
  double previous_gradient_norm2 = 0;

  auto step = [&](Evaluator<F>& evaluator, Vector<T>& x, T& fx, Vector<T>& g, int iteration) {
    StepOutcome outcome;
    direction = -g;
    T f_new = 0;
    const double gradient_norm2 = static_cast<double>(g.squaredNorm());
    if (options.line_search) {
      const double initial_step =
          iteration == 1 ? options.learning_rate
                         : previous_step * previous_gradient_norm2 / gradient_norm2;
      const linesearch::LineSearchResult search = linesearch::line_search(
          evaluator, x, fx, g, direction, initial_step, *options.line_search, x_new, f_new, g_new);
      outcome.line_search_trials = search.trials;
      if (!search.success) {
        outcome = StepOutcome::fail(TerminationReason::LineSearchFailure, search.message);
        outcome.line_search_trials = search.trials;
        return outcome;
      }
      outcome.step_size = search.step;
      previous_step = search.step;
      previous_gradient_norm2 = gradient_norm2;
    } else {
      x_new = x + static_cast<T>(options.learning_rate) * direction;
      f_new = evaluator.value_and_gradient(x_new, g_new);
      if (!std::isfinite(static_cast<double>(f_new)) || !g_new.allFinite()) {
        outcome = StepOutcome::fail(
            TerminationReason::NumericalFailure,
            "non-finite value or gradient after a step of learning_rate = " +
                std::to_string(options.learning_rate) + "; lower it or use a line search");
        outcome.event = "non-finite value";
        return outcome;
      }
      outcome.step_size = options.learning_rate;
    }
    x.swap(x_new);
    g.swap(g_new);
    fx = f_new;
    return outcome;
  };
  return run_solver("gradient_descent", f, x, options.termination, options.callback, step);
}

}  // namespace hesse::optim
