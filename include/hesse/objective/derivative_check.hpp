// Finite-difference checks of an objective's derivatives (in the spirit of
// Ceres' GradientChecker): every analytic quantity a tier provides is compared
// with central differences of the tier below it, or with an identity it must
// satisfy (symmetry, positive semidefiniteness).
//
//   check_gradient               g(x)       vs  differences of f along coordinates and directions
//   check_hessian_vector         H(x) v     vs  differences of g along v
//   check_hessian_symmetry       w.(Hv)     vs  v.(Hw)
//   check_gauss_newton_symmetry  w.(Gv)     vs  v.(Gw)
//   check_gauss_newton_psd       v.(Gv)    >=  0
//   check_dense_hessian          H columns  vs  differences of g, H v vs hessian_vector, H = H^T
//
// Differences are formed in the objective's own Scalar; errors are reported
// in double. Every difference is the five-point central stencil
//   D(h) = (8 (q(h) - q(-h)) - (q(2h) - q(-2h))) / 12h,     q(t) = f or g at x + t d,
// the Richardson extrapolation of the central differences with steps h and 2h.
// Its truncation error is O(h^4) instead of the O(h^2 f''') of the plain
// central difference (Nocedal & Wright, 2nd ed., section 8.1, eq. 8.7), which
// at the default step h = cbrt(eps) max(1, |x|_inf) is below the round-off
// error O(eps |f| / h); so a gradient that is exactly zero at a minimiser with
// large third derivatives is not flagged for the stencil's own error.
//
// Relative error of two numbers (or vectors, in the infinity norm):
//   |a - b| / max(|a|, |b|, floor),   floor = noise / tolerance,
// where noise = 10 eps (1 + |f(x)|) / h bounds the round-off error of the
// difference of values (|g(x)|_inf in place of |f(x)| when gradients are
// differenced). So a discrepancy no larger than the round-off of the finite
// difference itself always passes, and a true zero (the gradient at a
// minimiser, the Hessian of a linear function) compares against the round-off
// instead of dividing by zero. Comparisons that involve no difference
// (symmetry, dense Hessian vs Hessian-vector products) have no floor beyond
// the smallest normal double.
//
// The checks only use the calls the objective's concepts guarantee; they do
// not change a batch objective's batch selection.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "hesse/core/error.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"
#include "hesse/objective/concepts.hpp"

namespace hesse {

struct DerivativeCheckOptions {
  /// Finite-difference step; 0 = automatic: cbrt(eps of Scalar) * max(1, |x|_inf).
  double step = 0;
  /// A check passes when its worst relative error is at most this.
  double tolerance = 1e-6;
  /// Seed of the random directions (each check restarts from this seed).
  std::uint64_t seed = 0;
  /// Random directions for the directional gradient, HVP, symmetry and PSD checks.
  int num_directions = 3;
  /// The gradient (and dense Hessian) is checked on every coordinate when the
  /// dimension is at most this, otherwise on this many random coordinates.
  Index max_coordinates = 200;

  /// Throws hesse::InvalidArgument naming the field, its value and the rule.
  void validate() const;
};

/// Outcome of one check. `error` is the worst relative error seen.
struct CheckEntry {
  std::string name;
  double error = 0;
  bool passed = true;
  std::string detail;  ///< where the worst error occurred, with both values
};

struct DerivativeCheckReport {
  std::vector<CheckEntry> entries;

  /// True when every entry passed (vacuously true for a value-only objective).
  bool passed() const;
  /// Largest error over the entries (0 when there are none).
  double worst_error() const;
  /// One line per check: name, PASS/FAIL, error, detail.
  std::string report() const;
};

namespace derivative_check_detail {

/// |a - b| / max(|a|, |b|, floor); +inf when the result is not finite (NaN
/// inputs), so a NaN never passes.
double relative_error(double a, double b, double floor);

/// Builds an entry whose `passed` is error <= tolerance.
CheckEntry make_entry(std::string name, double error, double tolerance, std::string detail);

/// Entry for an objective whose output has the wrong size.
CheckEntry size_mismatch(std::string name, const char* what, Index got, Index expected);

/// Throws unless x.size() == dimension.
void require_dimension(const char* check, Index x_size, Index dimension);

/// All of 0..n-1 when n <= max_coordinates, else max_coordinates distinct random ones.
std::vector<Index> coordinates_to_check(Index n, Index max_coordinates, Rng& rng);

/// Formats a double as in the report ("1.234e-07").
std::string format_number(double value);

template <class T>
T finite_difference_step(const Vector<T>& x, const DerivativeCheckOptions& options) {
  if (options.step > 0) return static_cast<T>(options.step);
  const double scale = std::max(1.0, static_cast<double>(x.template lpNorm<Eigen::Infinity>()));
  return static_cast<T>(std::cbrt(static_cast<double>(std::numeric_limits<T>::epsilon())) * scale);
}

/// Floor of the relative error for a difference, with step `step`, of a
/// quantity of size `magnitude`: its round-off bound over the tolerance.
template <class T>
double difference_floor(double magnitude, double step, const DerivativeCheckOptions& options) {
  const double noise =
      10.0 * static_cast<double>(std::numeric_limits<T>::epsilon()) * (1.0 + magnitude) / step;
  return noise / options.tolerance;
}

template <class T>
double inf_norm(const Vector<T>& v) {
  return v.size() == 0 ? 0.0 : static_cast<double>(v.template lpNorm<Eigen::Infinity>());
}

/// Normwise relative error of two vectors in the infinity norm.
template <class T>
double vector_relative_error(const Vector<T>& a, const Vector<T>& b, double floor) {
  const double diff = inf_norm<T>(a - b);
  const double denom = std::max({inf_norm<T>(a), inf_norm<T>(b), floor});
  const double error = diff / denom;
  return std::isfinite(error) ? error : std::numeric_limits<double>::infinity();
}

template <class T>
Vector<T> random_unit_vector(Rng& rng, Index n) {
  Vector<T> v(n);
  fill_normal<T>(rng, v);
  const T norm = v.norm();
  if (norm > T(0)) v /= norm;
  return v;
}

/// Five-point central difference of q(t) (the objective's value or gradient
/// at x + t d) with step h; see the top of this file.
template <class T, class Q>
auto five_point_difference(Q&& q, T h) {
  using Result = std::decay_t<decltype(q(h))>;
  const Result plus = q(h);
  const Result minus = q(-h);
  const Result plus2 = q(T(2) * h);
  const Result minus2 = q(T(-2) * h);
  return Result((T(8) * (plus - minus) - (plus2 - minus2)) / (T(12) * h));
}

/// Symmetry of a linear operator `apply(v, out)` on random pairs:
/// |w.(Av) - v.(Aw)| / max(|w| |Av|, |v| |Aw|). The Cauchy-Schwarz bound is the
/// scale rather than the dot products themselves, which may cancel.
template <class T, class Apply>
CheckEntry operator_symmetry(std::string name, const char* product, Index n, Apply&& apply,
                             const DerivativeCheckOptions& options) {
  Rng rng(options.seed);
  Vector<T> av;
  Vector<T> aw;
  double worst = 0;
  std::string detail;
  for (int k = 0; k < options.num_directions; ++k) {
    const Vector<T> v = random_unit_vector<T>(rng, n);
    const Vector<T> w = random_unit_vector<T>(rng, n);
    apply(v, av);
    if (av.size() != n) return size_mismatch(name, product, av.size(), n);
    apply(w, aw);
    const double w_av = static_cast<double>(w.dot(av));
    const double v_aw = static_cast<double>(v.dot(aw));
    const double scale = std::max({static_cast<double>(av.norm()), static_cast<double>(aw.norm()),
                                   std::numeric_limits<double>::min()});
    double error = std::abs(w_av - v_aw) / scale;
    if (!std::isfinite(error)) error = std::numeric_limits<double>::infinity();
    if (k == 0 || error > worst) {
      worst = error;
      detail = "pair " + std::to_string(k) + ": w.(" + product + " v) = " + format_number(w_av) +
               ", v.(" + product + " w) = " + format_number(v_aw);
    }
  }
  return make_entry(std::move(name), worst, options.tolerance, std::move(detail));
}

/// Compares the columns j of a dense derivative matrix M = d fn / d x with
/// five-point differences of fn along coordinate j, reporting each through
/// record(error, where). Shared by the dense Hessian and dense Jacobian checks.
template <class T, class Fn, class Record>
void compare_columns_with_differences(const Matrix<T>& M, const Vector<T>& x, T h, double floor,
                                      const std::vector<Index>& columns, Fn&& fn,
                                      const std::string& differenced, Record&& record) {
  Vector<T> xp = x;
  for (const Index j : columns) {
    const Vector<T> fd = five_point_difference(
        [&](T t) {
          xp[j] = x[j] + t;
          const Vector<T> value = fn(xp);
          xp[j] = x[j];
          return value;
        },
        h);
    const Vector<T> column = M.col(j);
    record(vector_relative_error<T>(column, fd, floor),
           "column " + std::to_string(j) + " vs finite differences of " + differenced);
  }
}

}  // namespace derivative_check_detail

/// Gradient vs central differences of value(): coordinate-wise (all
/// coordinates, or `max_coordinates` random ones) and along
/// `num_directions` random unit directions. The coordinate-wise error is
/// normwise over the checked coordinates.
template <DifferentiableObjective F>
CheckEntry check_gradient(F& f, const Vector<ScalarOf<F>>& x,
                          const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<F>;
  namespace dc = derivative_check_detail;
  options.validate();
  const Index n = f.dimension();
  dc::require_dimension("check_gradient", x.size(), n);

  Vector<T> g;
  const T fx = f.value_and_gradient(x, &g);
  if (g.size() != n) return dc::size_mismatch("gradient", "gradient", g.size(), n);
  const T h = dc::finite_difference_step(x, options);
  const double floor = dc::difference_floor<T>(std::abs(static_cast<double>(fx)), static_cast<double>(h), options);
  Rng rng(options.seed);

  // Coordinate-wise.
  Vector<T> xp = x;
  double max_diff = 0;
  double max_magnitude = floor;
  Index worst_coordinate = 0;
  double worst_fd = 0;
  bool first = true;
  for (const Index j : dc::coordinates_to_check(n, options.max_coordinates, rng)) {
    const double fd = static_cast<double>(dc::five_point_difference(
        [&](T t) {
          xp[j] = x[j] + t;
          const T value = f.value(xp);
          xp[j] = x[j];
          return value;
        },
        h));
    const double analytic = static_cast<double>(g[j]);
    double diff = std::abs(fd - analytic);
    if (!std::isfinite(diff)) diff = std::numeric_limits<double>::infinity();
    max_magnitude = std::max({max_magnitude, std::abs(fd), std::abs(analytic)});
    if (first || diff > max_diff) {
      first = false;
      max_diff = diff;
      worst_coordinate = j;
      worst_fd = fd;
    }
  }
  double worst = max_diff / max_magnitude;
  if (!std::isfinite(worst)) worst = std::numeric_limits<double>::infinity();
  std::string detail = first ? std::string("no coordinates (dimension 0)")
                             : "coordinate " + std::to_string(worst_coordinate) + ": gradient " +
                                   dc::format_number(static_cast<double>(g[worst_coordinate])) +
                                   ", finite difference " + dc::format_number(worst_fd);

  // Along random directions: g.v vs the difference of f along v.
  for (int k = 0; k < options.num_directions; ++k) {
    const Vector<T> v = dc::random_unit_vector<T>(rng, n);
    const double fd = static_cast<double>(
        dc::five_point_difference([&](T t) { return T(f.value((x + t * v).eval())); }, h));
    const double analytic = static_cast<double>(g.dot(v));
    const double error = dc::relative_error(analytic, fd, floor);
    if (error > worst) {
      worst = error;
      detail = "direction " + std::to_string(k) + ": g.v " + dc::format_number(analytic) +
               ", finite difference " + dc::format_number(fd);
    }
  }
  return dc::make_entry("gradient", worst, options.tolerance, std::move(detail));
}

/// H(x) v vs the difference of the gradient along v, for random unit v, normwise.
template <HessianVectorObjective F>
CheckEntry check_hessian_vector(F& f, const Vector<ScalarOf<F>>& x,
                                const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<F>;
  namespace dc = derivative_check_detail;
  options.validate();
  const Index n = f.dimension();
  dc::require_dimension("check_hessian_vector", x.size(), n);

  Vector<T> g;
  f.value_and_gradient(x, &g);
  const T h = dc::finite_difference_step(x, options);
  const double floor = dc::difference_floor<T>(dc::inf_norm<T>(g), static_cast<double>(h), options);
  Rng rng(options.seed);
  Vector<T> hv;
  Vector<T> g_shifted;
  double worst = 0;
  std::string detail;
  for (int k = 0; k < options.num_directions; ++k) {
    const Vector<T> v = dc::random_unit_vector<T>(rng, n);
    f.hessian_vector(x, v, hv);
    if (hv.size() != n) return dc::size_mismatch("hessian_vector", "Hv", hv.size(), n);
    const Vector<T> fd = dc::five_point_difference(
        [&](T t) {
          f.value_and_gradient((x + t * v).eval(), &g_shifted);
          return g_shifted;
        },
        h);
    const double error = dc::vector_relative_error<T>(hv, fd, floor);
    if (k == 0 || error > worst) {
      worst = error;
      Index i = 0;
      (hv - fd).cwiseAbs().maxCoeff(&i);
      detail = "direction " + std::to_string(k) + ", entry " + std::to_string(i) + ": Hv " +
               dc::format_number(static_cast<double>(hv[i])) + ", finite difference " +
               dc::format_number(static_cast<double>(fd[i]));
    }
  }
  return dc::make_entry("hessian_vector", worst, options.tolerance, std::move(detail));
}

/// |w.(Hv) - v.(Hw)| relative to max(|w||Hv|, |v||Hw|) for random unit v, w.
template <HessianVectorObjective F>
CheckEntry check_hessian_symmetry(F& f, const Vector<ScalarOf<F>>& x,
                                  const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<F>;
  options.validate();
  derivative_check_detail::require_dimension("check_hessian_symmetry", x.size(), f.dimension());
  return derivative_check_detail::operator_symmetry<T>(
      "hessian_symmetry", "H", f.dimension(),
      [&](const Vector<T>& v, Vector<T>& out) { f.hessian_vector(x, v, out); }, options);
}

/// |w.(Gv) - v.(Gw)| relative to max(|w||Gv|, |v||Gw|) for random unit v, w.
template <GaussNewtonObjective F>
CheckEntry check_gauss_newton_symmetry(F& f, const Vector<ScalarOf<F>>& x,
                                       const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<F>;
  options.validate();
  derivative_check_detail::require_dimension("check_gauss_newton_symmetry", x.size(), f.dimension());
  return derivative_check_detail::operator_symmetry<T>(
      "gauss_newton_symmetry", "G", f.dimension(),
      [&](const Vector<T>& v, Vector<T>& out) { f.gauss_newton_vector(x, v, out); }, options);
}

/// v.(Gv) >= -tolerance |v| |Gv| for random unit v; the error is
/// max(0, -v.(Gv)) / (|v| |Gv|), the cosine of the angle past 90 degrees.
/// A sampling test: an indefinite G is detected when some random direction
/// sees its negative curvature, which needs a sizeable negative part.
template <GaussNewtonObjective F>
CheckEntry check_gauss_newton_psd(F& f, const Vector<ScalarOf<F>>& x,
                                  const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<F>;
  namespace dc = derivative_check_detail;
  options.validate();
  const Index n = f.dimension();
  dc::require_dimension("check_gauss_newton_psd", x.size(), n);
  Rng rng(options.seed);
  Vector<T> gv;
  double worst = 0;
  std::string detail = "v.(Gv) >= 0 on every sampled direction";
  for (int k = 0; k < options.num_directions; ++k) {
    const Vector<T> v = dc::random_unit_vector<T>(rng, n);
    f.gauss_newton_vector(x, v, gv);
    if (gv.size() != n) return dc::size_mismatch("gauss_newton_psd", "Gv", gv.size(), n);
    const double curvature = static_cast<double>(v.dot(gv));
    const double scale = std::max(static_cast<double>(gv.norm()), std::numeric_limits<double>::min());
    double error = std::max(0.0, -curvature) / scale;
    if (!std::isfinite(curvature)) error = std::numeric_limits<double>::infinity();
    if (error > worst) {
      worst = error;
      detail = "direction " + std::to_string(k) + ": v.(Gv) = " + dc::format_number(curvature) +
               ", |Gv| = " + dc::format_number(scale);
    }
  }
  return dc::make_entry("gauss_newton_psd", worst, options.tolerance, std::move(detail));
}

/// Dense Hessian vs (i) central differences of the gradient along coordinate
/// axes (all columns, or `max_coordinates` random ones), (ii) hessian_vector on
/// random directions when the objective has it, (iii) its own transpose.
template <DenseHessianObjective F>
CheckEntry check_dense_hessian(F& f, const Vector<ScalarOf<F>>& x,
                               const DerivativeCheckOptions& options = {}) {
  using T = ScalarOf<F>;
  namespace dc = derivative_check_detail;
  options.validate();
  const Index n = f.dimension();
  dc::require_dimension("check_dense_hessian", x.size(), n);

  Matrix<T> hessian;
  f.hessian(x, hessian);
  if (hessian.rows() != n || hessian.cols() != n)
    return dc::size_mismatch("dense_hessian", "H (rows x cols)", hessian.rows() * hessian.cols(), n * n);
  Vector<T> g;
  f.value_and_gradient(x, &g);
  const T h = dc::finite_difference_step(x, options);
  const double floor = dc::difference_floor<T>(dc::inf_norm<T>(g), static_cast<double>(h), options);
  Rng rng(options.seed);

  double worst = 0;
  std::string detail;
  auto record = [&](double error, const std::string& where) {
    if (detail.empty() || error > worst) {
      worst = error;
      detail = where;
    }
  };

  Vector<T> g_shifted;
  dc::compare_columns_with_differences<T>(
      hessian, x, h, floor, dc::coordinates_to_check(n, options.max_coordinates, rng),
      [&](const Vector<T>& xp) -> const Vector<T>& {
        f.value_and_gradient(xp, &g_shifted);
        return g_shifted;
      },
      "the gradient", record);

  if constexpr (HessianVectorObjective<F>) {
    Vector<T> hv;
    for (int k = 0; k < options.num_directions; ++k) {
      const Vector<T> v = dc::random_unit_vector<T>(rng, n);
      f.hessian_vector(x, v, hv);
      if (hv.size() != n) return dc::size_mismatch("dense_hessian", "Hv", hv.size(), n);
      const Vector<T> dense_hv = hessian * v;
      record(dc::vector_relative_error<T>(dense_hv, hv, std::numeric_limits<double>::min()),
             "H v vs hessian_vector, direction " + std::to_string(k));
    }
  }

  const double asymmetry = static_cast<double>((hessian - hessian.transpose()).cwiseAbs().maxCoeff());
  const double magnitude = std::max(static_cast<double>(hessian.cwiseAbs().maxCoeff()),
                                    std::numeric_limits<double>::min());
  double symmetry_error = asymmetry / magnitude;
  if (!std::isfinite(symmetry_error)) symmetry_error = std::numeric_limits<double>::infinity();
  record(symmetry_error, "symmetry: max |H - H^T| = " + dc::format_number(asymmetry));

  return dc::make_entry("dense_hessian", worst, options.tolerance, std::move(detail));
}

/// Runs every check the tiers of F allow, in the order gradient, hessian_vector,
/// hessian_symmetry, gauss_newton_symmetry, gauss_newton_psd, dense_hessian.
template <Objective F>
DerivativeCheckReport check_derivatives(F& f, const Vector<ScalarOf<F>>& x,
                                        const DerivativeCheckOptions& options = {}) {
  options.validate();
  derivative_check_detail::require_dimension("check_derivatives", x.size(), f.dimension());
  DerivativeCheckReport report;
  if constexpr (DifferentiableObjective<F>) report.entries.push_back(check_gradient(f, x, options));
  if constexpr (HessianVectorObjective<F>) {
    report.entries.push_back(check_hessian_vector(f, x, options));
    report.entries.push_back(check_hessian_symmetry(f, x, options));
  }
  if constexpr (GaussNewtonObjective<F>) {
    report.entries.push_back(check_gauss_newton_symmetry(f, x, options));
    report.entries.push_back(check_gauss_newton_psd(f, x, options));
  }
  if constexpr (DenseHessianObjective<F>) report.entries.push_back(check_dense_hessian(f, x, options));
  return report;
}

}  // namespace hesse
