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
#pragma once

#include <string>

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

}  // namespace hesse::linesearch
