// Bookkeeping every full-batch solver shares: counting evaluations, keeping
// the best point seen, timing, limits, and recording iterations. Solvers call
// the objective only through an Evaluator, so the Summary's counts are exact.
#pragma once

#include <chrono>
#include <cmath>
#include <limits>

#include "hesse/core/types.hpp"
#include "hesse/objective/concepts.hpp"
#include "hesse/optim/summary.hpp"
#include "hesse/optim/termination.hpp"

namespace hesse::optim {

template <Objective F>
class Evaluator {
 public:
  using T = ScalarOf<F>;

  Evaluator(F& f, const TerminationOptions& termination, Summary& summary)
      : f_(f), termination_(termination), summary_(summary),
        start_(std::chrono::steady_clock::now()) {}

  F& objective() { return f_; }
  Summary& summary() { return summary_; }
  const TerminationOptions& termination() const { return termination_; }

  T value(const Vector<T>& x) {
    ++summary_.counts.value;
    return f_.value(x);
  }

  /// f(x) and g = grad f(x); the point is offered as the best if finite.
  T value_and_gradient(const Vector<T>& x, Vector<T>& g)
    requires DifferentiableObjective<F>
  {
    ++summary_.counts.value;
    ++summary_.counts.gradient;
    const T f = f_.value_and_gradient(x, &g);
    offer(x, f, g);
    return f;
  }

  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out)
    requires HessianVectorObjective<F>
  {
    ++summary_.counts.hessian_vector;
    f_.hessian_vector(x, v, out);
  }

  void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out)
    requires GaussNewtonObjective<F>
  {
    ++summary_.counts.gauss_newton_vector;
    f_.gauss_newton_vector(x, v, out);
  }

  void hessian(const Vector<T>& x, Matrix<T>& H)
    requires DenseHessianObjective<F>
  {
    ++summary_.counts.hessian;
    f_.hessian(x, H);
  }

  /// Keeps (x, f, g) if f is finite, g is finite and f is the lowest so far.
  void offer(const Vector<T>& x, T f, const Vector<T>& g) {
    if (!std::isfinite(static_cast<double>(f)) || !g.allFinite()) return;
    if (has_best_ && !(f < best_value_)) return;
    best_x_ = x;
    best_gradient_ = g;
    best_value_ = f;
    has_best_ = true;
  }
  bool has_best() const { return has_best_; }
  const Vector<T>& best_x() const { return best_x_; }
  const Vector<T>& best_gradient() const { return best_gradient_; }
  T best_value() const { return best_value_; }

  double elapsed_seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  bool evaluation_limit_reached() const {
    return termination_.max_evaluations > 0 && summary_.counts.value >= termination_.max_evaluations;
  }
  bool time_limit_reached() const {
    return termination_.time_limit_seconds > 0 && elapsed_seconds() >= termination_.time_limit_seconds;
  }

  /// Counts a named event in the Summary.
  void event(const std::string& name) { ++summary_.events[name]; }

 private:
  F& f_;
  const TerminationOptions& termination_;
  Summary& summary_;
  std::chrono::steady_clock::time_point start_;
  Vector<T> best_x_, best_gradient_;
  T best_value_ = std::numeric_limits<T>::infinity();
  bool has_best_ = false;
};

}  // namespace hesse::optim
