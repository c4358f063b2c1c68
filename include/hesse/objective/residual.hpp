// Residual objectives: a vector function r: R^n -> R^m whose sum of squares
// f(x) = 1/2 |r(x)|^2 is to be minimised (nonlinear least squares).
//
//   concept ResidualObjective
//     using Scalar = float | double;
//     Index dimension() const                  n
//     Index num_residuals() const              m
//     void residuals(const Vector& x, Vector& r)                         r = r(x)
//     void jacobian_vector(const Vector& x, const Vector& v, Vector& Jv)  Jv = J(x) v      (m)
//     void jacobian_transpose_vector(const Vector& x, const Vector& u, Vector& JTu)
//                                                                        JTu = J(x)^T u   (n)
//   concept DenseJacobianResidual  (refinement, small n)
//     void jacobian(const Vector& x, Matrix& J)                          the m x n J(x)
//
// Outputs are caller-owned and resized by the model when needed.
//
// LeastSquaresObjective<R> turns a residual objective into an ordinary
// objective of tiers 1, 2 and 4 (concepts.hpp):
//   f(x)    = 1/2 r^T r
//   grad f  = J^T r
//   G(x) v  = J^T (J v)      the Gauss-Newton matrix, i.e. the Hessian
//                            J^T J + sum_i r_i Hess r_i without its second term
//                            (Nocedal & Wright, 2nd ed., eq. 10.5)
// so every solver and the derivative checker work on it. It has no
// hessian_vector: the exact Hessian needs the residuals' second derivatives.
//
// check_residuals() compares the Jacobian products with finite differences of
// r, in the manner of derivative_check.hpp (same options, same report):
//   jacobian_vector     J v vs the five-point central difference of r along v
//   jacobian_adjoint    u.(J v) vs v.(J^T u) for random u, v: together with the
//                       first check this pins down J^T u
//   dense_jacobian      (DenseJacobianResidual) columns of J vs differences of r
//                       along coordinates, and J v vs jacobian_vector
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"
#include "hesse/objective/concepts.hpp"
#include "hesse/objective/derivative_check.hpp"

namespace hesse {

template <class R>
concept ResidualObjective = requires { typename R::Scalar; } &&
    std::floating_point<typename R::Scalar> &&
    requires(R& r, const R& cr, const Vector<typename R::Scalar>& x,
             const Vector<typename R::Scalar>& v, Vector<typename R::Scalar>& out) {
      { cr.dimension() } -> std::convertible_to<Index>;
      { cr.num_residuals() } -> std::convertible_to<Index>;
      r.residuals(x, out);
      r.jacobian_vector(x, v, out);
      r.jacobian_transpose_vector(x, v, out);
    };

template <class R>
concept DenseJacobianResidual =
    ResidualObjective<R> &&
    requires(R& r, const Vector<typename R::Scalar>& x, Matrix<typename R::Scalar>& J) {
      r.jacobian(x, J);
    };

/// f(x) = 1/2 |r(x)|^2 of a residual objective, as an objective of tiers 1, 2
/// and 4. Holds a reference to the residual objective, which must outlive it.
template <ResidualObjective R>
class LeastSquaresObjective {
 public:
  using Scalar = ScalarOf<R>;
  using T = Scalar;

  explicit LeastSquaresObjective(R& residual_objective) : residual_(residual_objective) {}

  Index dimension() const { return residual_.dimension(); }
  Index num_residuals() const { return residual_.num_residuals(); }
  R& residual_objective() { return residual_; }

  T value(const Vector<T>& x) {
    residual_.residuals(x, r_);
    return T(0.5) * r_.squaredNorm();
  }

  /// f = 1/2 r^T r and, unless g is nullptr, g = J^T r.
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    residual_.residuals(x, r_);
    if (g) residual_.jacobian_transpose_vector(x, r_, *g);
    return T(0.5) * r_.squaredNorm();
  }

  /// out = J^T (J v): one product with J and one with J^T.
  void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    residual_.jacobian_vector(x, v, jv_);
    residual_.jacobian_transpose_vector(x, jv_, out);
  }

  /// The residuals computed by the last value or value_and_gradient call.
  const Vector<T>& last_residuals() const { return r_; }

 private:
  R& residual_;
  Vector<T> r_;
  Vector<T> jv_;
};

namespace residual_check_detail {

template <class R>
void require_shapes(R& model, const Vector<ScalarOf<R>>& x, const char* check) {
  derivative_check_detail::require_dimension(check, x.size(), model.dimension());
}

}  // namespace residual_check_detail

/// J v vs the five-point central difference of r along random unit v, normwise.
template <ResidualObjective R>
CheckEntry check_jacobian_vector(R& model, const Vector<ScalarOf<R>>& x,
                                 const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<R>;
  namespace dc = derivative_check_detail;
  options.validate();
  residual_check_detail::require_shapes(model, x, "check_jacobian_vector");
  const Index n = model.dimension();
  const Index m = model.num_residuals();
  Vector<T> r;
  model.residuals(x, r);
  if (r.size() != m) return dc::size_mismatch("jacobian_vector", "r", r.size(), m);
  const T h = dc::finite_difference_step(x, options);
  const double floor = dc::difference_floor<T>(dc::inf_norm<T>(r), static_cast<double>(h), options);
  Rng rng(options.seed);
  Vector<T> jv;
  Vector<T> shifted;
  double worst = 0;
  std::string detail;
  for (int k = 0; k < options.num_directions; ++k) {
    const Vector<T> v = dc::random_unit_vector<T>(rng, n);
    model.jacobian_vector(x, v, jv);
    if (jv.size() != m) return dc::size_mismatch("jacobian_vector", "Jv", jv.size(), m);
    const Vector<T> fd = dc::five_point_difference(
        [&](T t) {
          model.residuals((x + t * v).eval(), shifted);
          return shifted;
        },
        h);
    const double error = dc::vector_relative_error<T>(jv, fd, floor);
    if (k == 0 || error > worst) {
      worst = error;
      Index i = 0;
      if (m > 0) (jv - fd).cwiseAbs().maxCoeff(&i);
      detail = m == 0 ? std::string("no residuals")
                      : "direction " + std::to_string(k) + ", residual " + std::to_string(i) +
                            ": Jv " + dc::format_number(static_cast<double>(jv[i])) +
                            ", finite difference " + dc::format_number(static_cast<double>(fd[i]));
    }
  }
  return dc::make_entry("jacobian_vector", worst, options.tolerance, std::move(detail));
}

/// |u.(J v) - v.(J^T u)| / max(|u| |J v|, |v| |J^T u|) for random unit u, v.
template <ResidualObjective R>
CheckEntry check_jacobian_adjoint(R& model, const Vector<ScalarOf<R>>& x,
                                  const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<R>;
  namespace dc = derivative_check_detail;
  options.validate();
  residual_check_detail::require_shapes(model, x, "check_jacobian_adjoint");
  const Index n = model.dimension();
  const Index m = model.num_residuals();
  Rng rng(options.seed);
  Vector<T> jv;
  Vector<T> jtu;
  double worst = 0;
  std::string detail;
  for (int k = 0; k < options.num_directions; ++k) {
    const Vector<T> v = dc::random_unit_vector<T>(rng, n);
    const Vector<T> u = dc::random_unit_vector<T>(rng, m);
    model.jacobian_vector(x, v, jv);
    if (jv.size() != m) return dc::size_mismatch("jacobian_adjoint", "Jv", jv.size(), m);
    model.jacobian_transpose_vector(x, u, jtu);
    if (jtu.size() != n) return dc::size_mismatch("jacobian_adjoint", "J^T u", jtu.size(), n);
    const double u_jv = static_cast<double>(u.dot(jv));
    const double v_jtu = static_cast<double>(v.dot(jtu));
    const double scale = std::max({static_cast<double>(jv.norm()), static_cast<double>(jtu.norm()),
                                   std::numeric_limits<double>::min()});
    double error = std::abs(u_jv - v_jtu) / scale;
    if (!std::isfinite(error)) error = std::numeric_limits<double>::infinity();
    if (k == 0 || error > worst) {
      worst = error;
      detail = "pair " + std::to_string(k) + ": u.(J v) = " + dc::format_number(u_jv) +
               ", v.(J^T u) = " + dc::format_number(v_jtu);
    }
  }
  return dc::make_entry("jacobian_adjoint", worst, options.tolerance, std::move(detail));
}

/// Dense J vs (i) differences of r along coordinate axes (all columns, or
/// max_coordinates random ones) and (ii) jacobian_vector on random directions.
template <DenseJacobianResidual R>
CheckEntry check_dense_jacobian(R& model, const Vector<ScalarOf<R>>& x,
                                const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<R>;
  namespace dc = derivative_check_detail;
  options.validate();
  residual_check_detail::require_shapes(model, x, "check_dense_jacobian");
  const Index n = model.dimension();
  const Index m = model.num_residuals();
  Matrix<T> jacobian;
  model.jacobian(x, jacobian);
  if (jacobian.rows() != m || jacobian.cols() != n)
    return dc::size_mismatch("dense_jacobian", "J (rows x cols)", jacobian.rows() * jacobian.cols(),
                             m * n);
  Vector<T> r;
  model.residuals(x, r);
  const T h = dc::finite_difference_step(x, options);
  const double floor = dc::difference_floor<T>(dc::inf_norm<T>(r), static_cast<double>(h), options);
  Rng rng(options.seed);
  double worst = 0;
  std::string detail;
  auto record = [&](double error, const std::string& where) {
    if (detail.empty() || error > worst) {
      worst = error;
      detail = where;
    }
  };
  Vector<T> shifted;
  dc::compare_columns_with_differences<T>(
      jacobian, x, h, floor, dc::coordinates_to_check(n, options.max_coordinates, rng),
      [&](const Vector<T>& xp) -> const Vector<T>& {
        model.residuals(xp, shifted);
        return shifted;
      },
      "r", record);
  Vector<T> jv;
  for (int k = 0; k < options.num_directions; ++k) {
    const Vector<T> v = dc::random_unit_vector<T>(rng, n);
    model.jacobian_vector(x, v, jv);
    if (jv.size() != m) return dc::size_mismatch("dense_jacobian", "Jv", jv.size(), m);
    const Vector<T> dense_jv = jacobian * v;
    record(dc::vector_relative_error<T>(dense_jv, jv, std::numeric_limits<double>::min()),
           "J v vs jacobian_vector, direction " + std::to_string(k));
  }
  if (detail.empty()) detail = "dimension 0";
  return dc::make_entry("dense_jacobian", worst, options.tolerance, std::move(detail));
}

/// Runs jacobian_vector, jacobian_adjoint and (when the model has a dense
/// Jacobian) dense_jacobian.
template <ResidualObjective R>
DerivativeCheckReport check_residuals(R& model, const Vector<ScalarOf<R>>& x,
                                      const DerivativeCheckOptions& options = {}) {
  options.validate();
  residual_check_detail::require_shapes(model, x, "check_residuals");
  DerivativeCheckReport report;
  report.entries.push_back(check_jacobian_vector(model, x, options));
  report.entries.push_back(check_jacobian_adjoint(model, x, options));
  if constexpr (DenseJacobianResidual<R>) report.entries.push_back(check_dense_jacobian(model, x, options));
  return report;
}

}  // namespace hesse
