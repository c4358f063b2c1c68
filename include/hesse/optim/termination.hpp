// Stopping criteria shared by every full-batch solver. The first test that
// holds ends the run; the Summary names it.
#pragma once

#include <string>

namespace hesse::optim {

struct TerminationOptions {
  /// Stop when |g|_inf <= gradient_tolerance.
  double gradient_tolerance = 1e-6;
  /// Stop when |g|_inf <= relative_gradient_tolerance * |g_0|_inf (0: off).
  double relative_gradient_tolerance = 0;
  /// Stop when |f_k - f_{k+1}| <= function_tolerance * max(1, |f_k|) (0: off).
  double function_tolerance = 1e-14;
  /// Stop when |x_{k+1} - x_k|_2 <= step_tolerance * (1 + |x_k|_2) (0: off).
  double step_tolerance = 1e-14;
  int max_iterations = 1000;
  /// Limit on objective evaluations (value or value-and-gradient; 0: none).
  long long max_evaluations = 0;
  /// Wall-clock limit (0: none).
  double time_limit_seconds = 0;

  /// Throws InvalidArgument naming `owner`.field, the value and the rule.
  void validate(const std::string& owner) const;
};

}  // namespace hesse::optim
