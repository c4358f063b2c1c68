// The objective tiers of hesse. Every method works on a function of one flat
// parameter vector x and states the tier it needs; a method given an objective
// that lacks the tier fails to compile with a message naming the missing call
// (see HESSE_REQUIRE_OBJECTIVE below).
//
//   tier 1  Objective                  Scalar value(const Vector& x)
//   tier 2  DifferentiableObjective    Scalar value_and_gradient(const Vector& x, Vector* g)
//                                      (g may be nullptr: value only)
//   tier 3  HessianVectorObjective     void hessian_vector(const Vector& x, const Vector& v, Vector& Hv)
//   tier 4  GaussNewtonObjective       void gauss_newton_vector(const Vector& x, const Vector& v, Vector& Gv)
//   tier 5  DenseHessianObjective      void hessian(const Vector& x, Matrix& H)
//   tier 6  BatchObjective             Index num_samples(); void select_batch(std::span<const Index>);
//                                      void select_all()  -- tiers 1-5 then act on the selected samples
//
// Every objective also exposes `using Scalar = ...;` and `Index dimension() const`.
// Products write into caller-owned output vectors, which are resized when needed.
#pragma once

#include <concepts>
#include <span>

#include "hesse/core/types.hpp"

namespace hesse {

template <class F>
using ScalarOf = typename F::Scalar;

template <class F>
concept Objective = requires { typename F::Scalar; } &&
    std::floating_point<typename F::Scalar> &&
    requires(F& f, const F& cf, const Vector<typename F::Scalar>& x) {
      { cf.dimension() } -> std::convertible_to<Index>;
      { f.value(x) } -> std::convertible_to<typename F::Scalar>;
    };

template <class F>
concept DifferentiableObjective =
    Objective<F> && requires(F& f, const Vector<typename F::Scalar>& x, Vector<typename F::Scalar>* g) {
      { f.value_and_gradient(x, g) } -> std::convertible_to<typename F::Scalar>;
    };

template <class F>
concept HessianVectorObjective =
    DifferentiableObjective<F> &&
    requires(F& f, const Vector<typename F::Scalar>& x, const Vector<typename F::Scalar>& v,
             Vector<typename F::Scalar>& out) { f.hessian_vector(x, v, out); };

template <class F>
concept GaussNewtonObjective =
    DifferentiableObjective<F> &&
    requires(F& f, const Vector<typename F::Scalar>& x, const Vector<typename F::Scalar>& v,
             Vector<typename F::Scalar>& out) { f.gauss_newton_vector(x, v, out); };

template <class F>
concept DenseHessianObjective =
    DifferentiableObjective<F> &&
    requires(F& f, const Vector<typename F::Scalar>& x, Matrix<typename F::Scalar>& H) {
      f.hessian(x, H);
    };

template <class F>
concept BatchObjective = Objective<F> && requires(F& f, const F& cf, std::span<const Index> idx) {
  { cf.num_samples() } -> std::convertible_to<Index>;
  f.select_batch(idx);
  f.select_all();
};


}  // namespace hesse

/// Fails compilation with a readable message when objective type F does not
/// provide the tier a method needs, e.g.
///   HESSE_REQUIRE_OBJECTIVE(F, HessianVectorObjective,
///       "hessian_vector(x, v, out)");
#define HESSE_REQUIRE_OBJECTIVE(F, Tier, call)                                         \
  static_assert(::hesse::Tier<F>, "hesse: this method needs an objective with " call \
                                  " (concept hesse::" #Tier "); the objective type lacks it")
