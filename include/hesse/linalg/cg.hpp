// Matrix-free conjugate gradients for symmetric systems A x = b, as the inner
// solvers of truncated Newton and trust-region Newton methods.
//
//   conjugate_gradient   preconditioned CG (Nocedal & Wright, 2nd ed., Alg. 5.3)
//                        that stops at the first direction of non-positive
//                        curvature d^T A d <= 0 (the truncated Newton test of
//                        N&W Alg. 7.1) instead of dividing by it
//   steihaug_cg          Steihaug-Toint CG for the trust-region subproblem
//                        min g^T p + 1/2 p^T A p  s.t. |p|_2 <= radius
//                        (N&W Alg. 7.2)
//
// The operator is anything with `void apply(const Vector<T>& v, Vector<T>& out)`
// computing out = A v; a preconditioner has the same call computing
// out = M^{-1} v for a symmetric positive definite M. All vectors live in a
// caller-owned CgWorkspace, sized once: an iteration allocates nothing (as long
// as the operator's apply does not).
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include "hesse/core/types.hpp"

namespace hesse::linalg {

enum class CgStatus {
  Converged,          ///< |r| <= max(absolute_tolerance, relative_tolerance |b|)
  IterationLimit,     ///< max_iterations reached
  NegativeCurvature,  ///< found d with d^T A d <= 0; x is the iterate before it
  TrustRegionBoundary,///< (Steihaug) the step reached |p| = radius
  Breakdown,          ///< NaN/Inf in the operator's output or the recurrences
};

const char* to_string(CgStatus status);

struct CgOptions {
  /// Stop when |r|_2 <= max(absolute_tolerance, relative_tolerance * |b|_2);
  /// in a truncated Newton method relative_tolerance is the forcing term eta_k.
  double relative_tolerance = 1e-10;
  double absolute_tolerance = 0;
  /// 0: the dimension n (exact arithmetic converges in n steps).
  Index max_iterations = 0;
};

struct CgResult {
  CgStatus status = CgStatus::IterationLimit;
  Index iterations = 0;        ///< operator applications in the loop
  double residual_norm = 0;    ///< |A x - b|_2 at the returned x (recurred)
  /// Rayleigh quotient d^T A d / d^T d of the direction that stopped CG with
  /// NegativeCurvature (0 otherwise); the direction itself is workspace.d.
  double curvature = 0;
  /// Steihaug only: the model value m(p) = g^T p + 1/2 p^T A p at the returned p.
  double model_value = 0;
};

/// Scratch vectors of CG, owned by the caller and reused across solves.
template <class T>
struct CgWorkspace {
  Vector<T> r;   ///< residual A x - b
  Vector<T> z;   ///< preconditioned residual M^{-1} r
  Vector<T> d;   ///< search direction
  Vector<T> Ad;  ///< A d

  void resize(Index n) {
    if (r.size() != n) {
      r.resize(n);
      z.resize(n);
      d.resize(n);
      Ad.resize(n);
    }
  }
};

/// M = I.
struct IdentityPreconditioner {
  template <class T>
  void apply(const Vector<T>& v, Vector<T>& out) const {
    out = v;
  }
};

/// M = diag(diagonal); every entry must be positive.
template <class T>
struct DiagonalPreconditioner {
  Vector<T> inverse_diagonal;
  void apply(const Vector<T>& v, Vector<T>& out) const { out = inverse_diagonal.cwiseProduct(v); }
};

namespace detail {
template <class T>
bool finite(T value) {
  return std::isfinite(static_cast<double>(value));
}
}  // namespace detail

/// Solves A x = b by preconditioned CG from x = 0 (N&W Alg. 5.3). Stops with
/// NegativeCurvature at the first d_j with d_j^T A d_j <= 0: then x is the CG
/// iterate x_j (x = 0 when j = 0) and workspace.d holds d_j, a direction of
/// non-positive curvature (d_0 = -M^{-1}(-b) = M^{-1} b).
template <class T, class Operator, class Preconditioner>
CgResult conjugate_gradient(Operator& A, Preconditioner& M, const Vector<T>& b, Vector<T>& x,
                            const CgOptions& options, CgWorkspace<T>& ws) {
  const Index n = b.size();
  ws.resize(n);
  x.setZero(n);
  CgResult result;
  const double b_norm = static_cast<double>(b.norm());
  const double tolerance = std::max(options.absolute_tolerance, options.relative_tolerance * b_norm);
  const Index max_iterations = options.max_iterations > 0 ? options.max_iterations : n;

  ws.r = -b;  // r_0 = A x_0 - b with x_0 = 0
  result.residual_norm = b_norm;
  if (!detail::finite(b_norm)) {
    result.status = CgStatus::Breakdown;
    return result;
  }
  if (b_norm <= tolerance) {
    result.status = CgStatus::Converged;
    return result;
  }
  M.apply(ws.r, ws.z);
  ws.d = -ws.z;
  T rz = ws.r.dot(ws.z);
  for (Index j = 0; j < max_iterations; ++j) {
    A.apply(ws.d, ws.Ad);
    ++result.iterations;
    const T curvature = ws.d.dot(ws.Ad);
    if (!detail::finite(curvature)) {
      result.status = CgStatus::Breakdown;
      return result;
    }
    if (curvature <= T(0)) {
      result.status = CgStatus::NegativeCurvature;
      result.curvature = static_cast<double>(curvature / ws.d.squaredNorm());
      return result;
    }
    const T alpha = rz / curvature;
    x.noalias() += alpha * ws.d;
    ws.r.noalias() += alpha * ws.Ad;
    result.residual_norm = static_cast<double>(ws.r.norm());
    if (!detail::finite(result.residual_norm)) {
      result.status = CgStatus::Breakdown;
      return result;
    }
    if (result.residual_norm <= tolerance) {
      result.status = CgStatus::Converged;
      return result;
    }
    M.apply(ws.r, ws.z);
    const T rz_next = ws.r.dot(ws.z);
    const T beta = rz_next / rz;
    rz = rz_next;
    ws.d = beta * ws.d - ws.z;
  }
  result.status = CgStatus::IterationLimit;
  return result;
}

/// The roots tau_1 <= tau_2 of |p + tau d|_2 = radius (|p| <= radius, d != 0).
template <class T>
void boundary_roots(const Vector<T>& p, const Vector<T>& d, double radius, double& tau_low,
                    double& tau_high) {
  const double dd = static_cast<double>(d.squaredNorm());
  const double pd = static_cast<double>(p.dot(d));
  const double pp = static_cast<double>(p.squaredNorm());
  const double c = std::min(0.0, pp - radius * radius);
  const double discriminant = std::sqrt(std::max(0.0, pd * pd - dd * c));
  // Cancellation-free quadratic formula.
  const double q = pd >= 0 ? -(pd + discriminant) : -(pd - discriminant);
  double r1 = q / dd;
  double r2 = q != 0 ? c / q : 0.0;
  tau_low = std::min(r1, r2);
  tau_high = std::max(r1, r2);
}

/// Steihaug-Toint CG (N&W Alg. 7.2): approximately minimises the model
/// m(p) = g^T p + 1/2 p^T A p subject to |p|_2 <= radius, starting at p = 0.
/// Stops with Converged when |A p + g| <= max(absolute, relative |g|), with
/// TrustRegionBoundary when the next CG iterate would leave the region, and
/// with NegativeCurvature when d^T A d <= 0; in the last two cases p is moved
/// along d to the boundary, to the root with the lower model value.
/// result.model_value is m(p), recurred as 1/2 (g^T p + r^T p), r = A p + g,
/// so no extra operator application is needed for the predicted reduction.
template <class T, class Operator>
CgResult steihaug_cg(Operator& A, const Vector<T>& g, double radius, Vector<T>& p,
                     const CgOptions& options, CgWorkspace<T>& ws) {
  const Index n = g.size();
  ws.resize(n);
  p.setZero(n);
  CgResult result;
  const double g_norm = static_cast<double>(g.norm());
  const double tolerance = std::max(options.absolute_tolerance, options.relative_tolerance * g_norm);
  const Index max_iterations = options.max_iterations > 0 ? options.max_iterations : n;
  ws.r = g;
  ws.d = -g;
  result.residual_norm = g_norm;
  if (!detail::finite(g_norm)) {
    result.status = CgStatus::Breakdown;
    return result;
  }
  if (g_norm <= tolerance) {
    result.status = CgStatus::Converged;
    return result;
  }
  auto finish = [&](CgStatus status) {
    result.status = status;
    result.residual_norm = static_cast<double>(ws.r.norm());
    result.model_value = 0.5 * static_cast<double>(g.dot(p) + ws.r.dot(p));
    return result;
  };
  // Moves p along d to the boundary root with the lower model value; the
  // model changes by tau r^T d + tau^2/2 d^T A d.
  auto to_boundary = [&](T curvature, bool both_roots) {
    double tau_low = 0, tau_high = 0;
    boundary_roots(p, ws.d, radius, tau_low, tau_high);
    const double rd = static_cast<double>(ws.r.dot(ws.d));
    const double c = static_cast<double>(curvature);
    auto change = [&](double tau) { return tau * rd + 0.5 * tau * tau * c; };
    const double tau = (both_roots && change(tau_low) < change(tau_high)) ? tau_low : tau_high;
    p.noalias() += static_cast<T>(tau) * ws.d;
    ws.r.noalias() += static_cast<T>(tau) * ws.Ad;
  };
  T rr = ws.r.squaredNorm();
  for (Index j = 0; j < max_iterations; ++j) {
    A.apply(ws.d, ws.Ad);
    ++result.iterations;
    const T curvature = ws.d.dot(ws.Ad);
    if (!detail::finite(curvature)) return finish(CgStatus::Breakdown);
    if (curvature <= T(0)) {
      result.curvature = static_cast<double>(curvature / ws.d.squaredNorm());
      to_boundary(curvature, true);
      return finish(CgStatus::NegativeCurvature);
    }
    const T alpha = rr / curvature;
    if (static_cast<double>((p + alpha * ws.d).norm()) >= radius) {
      // The model decreases along d up to alpha > tau_high: take the positive root.
      to_boundary(curvature, false);
      return finish(CgStatus::TrustRegionBoundary);
    }
    p.noalias() += alpha * ws.d;
    ws.r.noalias() += alpha * ws.Ad;
    const T rr_next = ws.r.squaredNorm();
    if (!detail::finite(rr_next)) return finish(CgStatus::Breakdown);
    if (std::sqrt(static_cast<double>(rr_next)) <= tolerance) return finish(CgStatus::Converged);
    const T beta = rr_next / rr;
    rr = rr_next;
    ws.d = beta * ws.d - ws.r;
  }
  return finish(CgStatus::IterationLimit);
}

}  // namespace hesse::linalg
