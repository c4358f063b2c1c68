#include "hesse/linalg/dense.hpp"

#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "hesse/core/error.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/linalg/cg.hpp"

namespace hesse::linalg {

const char* to_string(CgStatus status) {
  switch (status) {
    case CgStatus::Converged:
      return "converged";
    case CgStatus::IterationLimit:
      return "iteration limit";
    case CgStatus::NegativeCurvature:
      return "negative curvature";
    case CgStatus::TrustRegionBoundary:
      return "trust-region boundary";
    case CgStatus::Breakdown:
      return "breakdown";
  }
  return "unknown";
}

const char* to_string(Definiteness definiteness) {
  switch (definiteness) {
    case Definiteness::PositiveDefinite:
      return "positive definite";
    case Definiteness::PositiveSemidefinite:
      return "positive semidefinite";
    case Definiteness::Indefinite:
      return "indefinite";
    case Definiteness::NegativeDefinite:
      return "negative definite";
  }
  return "unknown";
}

template <class T>
DampedCholeskyResult damped_cholesky(const Matrix<T>& H, Eigen::LLT<Matrix<T>>& llt,
                                     const DampingOptions& options) {
  DampedCholeskyResult result;
  result.attempts = 1;
  llt.compute(H);
  if (llt.info() == Eigen::Success && llt.matrixLLT().allFinite()) {
    result.success = true;
    return result;
  }
  if (!H.allFinite() || H.rows() == 0) return result;
  const double max_diagonal = static_cast<double>(H.diagonal().cwiseAbs().maxCoeff());
  const double min_diagonal = static_cast<double>(H.diagonal().minCoeff());
  const double beta = options.shift_scale * (max_diagonal > 0 ? max_diagonal : 1.0);
  double tau = beta + std::max(0.0, -min_diagonal);
  for (int k = 0; k < options.max_attempts; ++k) {
    ++result.attempts;
    llt.compute(H + static_cast<T>(tau) * Matrix<T>::Identity(H.rows(), H.cols()));
    if (llt.info() == Eigen::Success && llt.matrixLLT().allFinite()) {
      result.success = true;
      result.shift = tau;
      return result;
    }
    tau *= options.shift_growth;
    if (!std::isfinite(tau) || tau > static_cast<double>(std::numeric_limits<T>::max())) break;
  }
  return result;
}

template <class T>
bool symmetric_eigen(const Matrix<T>& H, Eigen::SelfAdjointEigenSolver<Matrix<T>>& solver) {
  if (!H.allFinite()) return false;
  solver.compute(H, Eigen::ComputeEigenvectors);
  return solver.info() == Eigen::Success;
}

template <class T>
Definiteness classify(const Vector<T>& eigenvalues, double zero_tolerance) {
  if (eigenvalues.size() == 0) return Definiteness::PositiveSemidefinite;
  const double lowest = static_cast<double>(eigenvalues.minCoeff());
  const double highest = static_cast<double>(eigenvalues.maxCoeff());
  if (lowest > zero_tolerance) return Definiteness::PositiveDefinite;
  if (lowest >= -zero_tolerance) return Definiteness::PositiveSemidefinite;
  if (highest < -zero_tolerance) return Definiteness::NegativeDefinite;
  return Definiteness::Indefinite;
}

template <class T>
TrustRegionSubproblemResult solve_trust_region_subproblem(
    const Eigen::SelfAdjointEigenSolver<Matrix<T>>& eigen, const Vector<T>& g, double radius,
    Vector<T>& p, double relative_tolerance) {
  // Work in the eigenbasis and in double: p = V s, a = V^T g.
  const Eigen::VectorXd lambda = eigen.eigenvalues().template cast<double>();
  const Eigen::MatrixXd V = eigen.eigenvectors().template cast<double>();
  const Eigen::VectorXd a = V.transpose() * g.template cast<double>();
  const Index n = lambda.size();
  TrustRegionSubproblemResult result;
  Eigen::VectorXd s = Eigen::VectorXd::Zero(n);
  auto finish = [&]() {
    p = (V * s).template cast<T>();
    result.model_value = a.dot(s) + 0.5 * s.dot(lambda.cwiseProduct(s));
    return result;
  };
  if (n == 0) return finish();
  const double lambda1 = lambda[0];
  const double a_norm = a.norm();
  const double scale = std::max(lambda.cwiseAbs().maxCoeff(), std::numeric_limits<double>::min());
  auto norm_at = [&](double l) {
    double sum = 0;
    for (Index i = 0; i < n; ++i) {
      const double denominator = lambda[i] + l;
      if (a[i] != 0) sum += (a[i] / denominator) * (a[i] / denominator);
    }
    return std::sqrt(sum);
  };
  auto step_at = [&](double l) {
    for (Index i = 0; i < n; ++i) s[i] = a[i] != 0 ? -a[i] / (lambda[i] + l) : 0.0;
  };

  // Interior: the Newton step of a positive definite model inside the region.
  if (lambda1 > 0 && norm_at(0) <= radius) {
    step_at(0);
    return finish();
  }
  const double lower = std::max(0.0, -lambda1);
  // The lowest eigenspace: eigenvalues within a rounding distance of lambda_1.
  const double cluster_gap = 100 * std::numeric_limits<T>::epsilon() * scale;
  Index cluster = 0;
  double a_cluster = 0;
  while (cluster < n && lambda[cluster] - lambda1 <= cluster_gap) {
    a_cluster += a[cluster] * a[cluster];
    ++cluster;
  }
  a_cluster = std::sqrt(a_cluster);
  if (lambda1 <= 0 &&
      a_cluster <= 100 * std::numeric_limits<T>::epsilon() * std::max(a_norm, 1e-300)) {
    // Possible hard case (N&W eq. 4.45): the secular equation may have no root
    // above -lambda_1; take p(-lambda_1) on the other eigenvectors and fill up
    // to the boundary along v_1.
    double q_squared = 0;
    for (Index i = 0; i < n; ++i) {
      s[i] = (i < cluster || a[i] == 0) ? 0.0 : -a[i] / (lambda[i] + lower);
      q_squared += s[i] * s[i];
    }
    if (q_squared <= radius * radius) {
      s[0] += std::sqrt(radius * radius - q_squared);
      result.hard_case = true;
      result.on_boundary = true;
      result.multiplier = lower;
      return finish();
    }
  }
  // Secular equation 1/|p(l)| = 1/radius on (lower, upper], where
  // |p(upper)| <= |g| / (lambda_1 + upper) <= radius.
  double lo = lower;
  double hi = lower + a_norm / radius + std::numeric_limits<double>::min();
  if (lambda1 > 0) hi = a_norm / radius;
  double l = 0.5 * (lo + hi);
  for (int iteration = 0; iteration < 300; ++iteration) {
    result.iterations = iteration + 1;
    const double norm = norm_at(l);
    if (std::abs(norm - radius) <= relative_tolerance * radius) break;
    if (norm > radius)
      lo = l;
    else
      hi = l;
    // Newton step on 1/radius - 1/|p(l)| (N&W Alg. 4.3):
    // l += (|p| / |q|)^2 (|p| - radius) / radius,  |q|^2 = sum a_i^2 / (lambda_i + l)^3.
    double q_squared = 0;
    for (Index i = 0; i < n; ++i) {
      const double denominator = lambda[i] + l;
      if (a[i] != 0) q_squared += a[i] * a[i] / (denominator * denominator * denominator);
    }
    double next = l + (norm * norm / q_squared) * (norm - radius) / radius;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (hi - lo <= 1e-15 * std::max(1.0, hi)) break;
    l = next;
  }
  step_at(l);
  result.multiplier = l;
  result.on_boundary = true;
  return finish();
}

// The Ritz values of F on the subspace after `iterations` products with
// re-orthonormalisation; the basis is warm-started by the caller's previous
// result, which for moving averages changes little between calls.
template <class T>
bool top_eigenpairs(const Eigen::Ref<const Matrix<T>>& F, Matrix<T>& basis, bool warm,
                    Index iterations, std::uint64_t seed, Vector<double>& values,
                    double& rest_mean) {
  const Index n = F.rows(), r = basis.cols();
  HESSE_REQUIRE(F.cols() == n && basis.rows() == n && r > 0 && r < n,
                "top_eigenpairs: a " + std::to_string(F.rows()) + " x " + std::to_string(F.cols()) +
                    " matrix with a basis of " + std::to_string(basis.rows()) + " x " +
                    std::to_string(r) + " (needs a square matrix and 0 < r < n)");
  if (!warm) {
    Rng start(seed);
    std::normal_distribution<double> draw(0.0, 1.0);
    for (Index j = 0; j < r; ++j)
      for (Index i = 0; i < n; ++i) basis(i, j) = static_cast<T>(draw(start));
    iterations *= 3;
  }
  Matrix<T> image(n, r);
  Eigen::HouseholderQR<Matrix<T>> qr(n, r);
  for (Index it = 0; it < iterations; ++it) {
    image.noalias() = F.template selfadjointView<Eigen::Lower>() * basis;
    qr.compute(image);
    basis.setIdentity();
    basis = qr.householderQ() * basis;
  }
  image.noalias() = F.template selfadjointView<Eigen::Lower>() * basis;
  const Matrix<T> projected = basis.transpose() * image;
  Eigen::SelfAdjointEigenSolver<Matrix<T>> eigen(projected);
  if (eigen.info() != Eigen::Success) return false;
  image.noalias() = basis * eigen.eigenvectors();
  basis = image;
  values = eigen.eigenvalues().template cast<double>().cwiseMax(0.0);
  // The other n - r eigenvalues by their mean: what is left of the trace.
  rest_mean =
      std::max(0.0, (static_cast<double>(F.trace()) - values.sum()) / static_cast<double>(n - r));
  return basis.allFinite() && values.allFinite() && std::isfinite(rest_mean);
}

template DampedCholeskyResult damped_cholesky<float>(const Matrix<float>&,
                                                     Eigen::LLT<Matrix<float>>&,
                                                     const DampingOptions&);
template DampedCholeskyResult damped_cholesky<double>(const Matrix<double>&,
                                                      Eigen::LLT<Matrix<double>>&,
                                                      const DampingOptions&);
template bool symmetric_eigen<float>(const Matrix<float>&,
                                     Eigen::SelfAdjointEigenSolver<Matrix<float>>&);
template bool symmetric_eigen<double>(const Matrix<double>&,
                                      Eigen::SelfAdjointEigenSolver<Matrix<double>>&);
template bool top_eigenpairs<float>(const Eigen::Ref<const Matrix<float>>&, Matrix<float>&, bool,
                                    Index, std::uint64_t, Vector<double>&, double&);
template bool top_eigenpairs<double>(const Eigen::Ref<const Matrix<double>>&, Matrix<double>&, bool,
                                     Index, std::uint64_t, Vector<double>&, double&);
template Definiteness classify<float>(const Vector<float>&, double);
template Definiteness classify<double>(const Vector<double>&, double);
template TrustRegionSubproblemResult solve_trust_region_subproblem<float>(
    const Eigen::SelfAdjointEigenSolver<Matrix<float>>&, const Vector<float>&, double,
    Vector<float>&, double);
template TrustRegionSubproblemResult solve_trust_region_subproblem<double>(
    const Eigen::SelfAdjointEigenSolver<Matrix<double>>&, const Vector<double>&, double,
    Vector<double>&, double);

}  // namespace hesse::linalg
