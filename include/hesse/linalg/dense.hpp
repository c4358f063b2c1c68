// Dense symmetric helpers for Newton-type methods on small problems:
//
//   damped_cholesky      LLT of H + tau I with the smallest tau of the sequence
//                        0, tau_1, 10 tau_1, ... that factorises
//                        (Nocedal & Wright, 2nd ed., Alg. 3.3)
//   symmetric_eigen      H = V diag(lambda) V^T (Eigen::SelfAdjointEigenSolver)
//   top_eigenpairs       the top r eigenpairs of a large symmetric positive
//                        semidefinite matrix by warm-started subspace
//                        iteration (the low-rank inverses of K-FAC and the
//                        low-rank roots of Shampoo)
//   classify             the Hessian's sign from its eigenvalues
//   solve_trust_region_subproblem
//                        min g^T p + 1/2 p^T H p  s.t. |p| <= radius, nearly
//                        exactly, hard case included (More & Sorensen 1983;
//                        N&W section 4.3), from the eigendecomposition of H
//
// Explicitly instantiated for float and double in src/linalg/dense.cpp.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <cstdint>
#include <string>

#include "hesse/core/types.hpp"

namespace hesse::linalg {

struct DampingOptions {
  /// beta = shift_scale * max_i |h_ii|, the scale of the first shift (see damped_cholesky).
  double shift_scale = 1e-3;
  /// tau_{k+1} = shift_growth * tau_k.
  double shift_growth = 10;
  /// Shifts tried after tau = 0 before giving up.
  int max_attempts = 60;
};

struct DampedCholeskyResult {
  bool success = false;
  double shift = 0;  ///< tau of the successful factorisation
  int attempts = 0;  ///< factorisations tried (1 when H itself is positive definite)
};

/// Factorises H + tau I = L L^T into `llt` with the first tau in
///   tau_0 = 0,
///   tau_1 = beta + max(0, -min_i h_ii),
///   tau_{k+1} = shift_growth * tau_k,
/// where beta = shift_scale * max_i |h_ii| (shift_scale when the diagonal is
/// zero): N&W Alg. 3.3 with beta scaled to the Hessian, so that the first shift
/// already makes the diagonal positive. Fails (success = false) when no shift
/// within max_attempts works or H holds NaN/Inf.
template <class T>
DampedCholeskyResult damped_cholesky(const Matrix<T>& H, Eigen::LLT<Matrix<T>>& llt,
                                     const DampingOptions& options = {});

/// A symmetric eigendecomposition; false if H holds NaN/Inf or the QR
/// iteration did not converge.
template <class T>
bool symmetric_eigen(const Matrix<T>& H, Eigen::SelfAdjointEigenSolver<Matrix<T>>& solver);

/// The top r = basis.cols() eigenpairs of the symmetric positive
/// semidefinite F (its lower triangle is read): subspace iteration (Halko,
/// Martinsson & Tropp 2011, alg. 4.4 without oversampling) from `basis` when
/// `warm` (a previous result: a slowly changing F needs few iterations), or
/// from a Gaussian basis seeded by `seed` with three times the iterations,
/// then Rayleigh-Ritz. On success basis holds the Ritz vectors (orthonormal
/// columns), `values` their Ritz values clamped at 0 in ascending order and
/// `rest_mean` the mean of F's other n - r eigenvalues from its trace
/// (clamped at 0). Returns false if the small eigenproblem fails or a result
/// is not finite. Needs 0 < r < n; allocates its workspaces.
template <class T>
bool top_eigenpairs(const Eigen::Ref<const Matrix<T>>& F, Matrix<T>& basis, bool warm,
                    Index iterations, std::uint64_t seed, Vector<double>& values,
                    double& rest_mean);

enum class Definiteness {
  PositiveDefinite,      ///< lambda_min > 0
  PositiveSemidefinite,  ///< lambda_min = 0 (singular, no negative eigenvalue)
  Indefinite,            ///< lambda_min < 0 <= lambda_max
  NegativeDefinite,      ///< lambda_max < 0
};

/// "positive definite", "positive semidefinite", "indefinite", "negative definite".
const char* to_string(Definiteness definiteness);

/// Classifies ascending eigenvalues; |lambda| <= zero_tolerance counts as 0.
template <class T>
Definiteness classify(const Vector<T>& ascending_eigenvalues, double zero_tolerance = 0);

struct TrustRegionSubproblemResult {
  double multiplier = 0;     ///< lambda >= 0 with (H + lambda I) p = -g
  double model_value = 0;    ///< g^T p + 1/2 p^T H p
  bool on_boundary = false;  ///< |p| = radius
  bool hard_case = false;    ///< g (nearly) orthogonal to the lowest eigenspace
  int iterations = 0;        ///< Newton / bisection steps on the secular equation
};

/// Nearly exact solution of min g^T p + 1/2 p^T H p, |p|_2 <= radius, given
/// H = V diag(lambda) V^T (ascending). With a_i = v_i^T g and
///   |p(l)|^2 = sum_i a_i^2 / (lambda_i + l)^2        (N&W eq. 4.38),
/// the solution is p(0) if lambda_1 > 0 and |p(0)| <= radius, otherwise
/// p(l) with l > max(0, -lambda_1) solving 1/|p(l)| = 1/radius by safeguarded
/// Newton steps (N&W Alg. 4.3, bracketed by bisection), except in the hard
/// case (a_i = 0 on the lowest eigenspace and |p(-lambda_1)| <= radius,
/// N&W eq. 4.45): p = p(-lambda_1) + tau v_1 with |p| = radius.
/// `relative_tolerance` bounds | |p| - radius | / radius.
template <class T>
TrustRegionSubproblemResult solve_trust_region_subproblem(
    const Eigen::SelfAdjointEigenSolver<Matrix<T>>& eigen, const Vector<T>& g, double radius,
    Vector<T>& p, double relative_tolerance = 1e-10);

extern template DampedCholeskyResult damped_cholesky<float>(const Matrix<float>&,
                                                            Eigen::LLT<Matrix<float>>&,
                                                            const DampingOptions&);
extern template DampedCholeskyResult damped_cholesky<double>(const Matrix<double>&,
                                                             Eigen::LLT<Matrix<double>>&,
                                                             const DampingOptions&);
extern template bool symmetric_eigen<float>(const Matrix<float>&,
                                            Eigen::SelfAdjointEigenSolver<Matrix<float>>&);
extern template bool symmetric_eigen<double>(const Matrix<double>&,
                                             Eigen::SelfAdjointEigenSolver<Matrix<double>>&);
extern template bool top_eigenpairs<float>(const Eigen::Ref<const Matrix<float>>&, Matrix<float>&,
                                           bool, Index, std::uint64_t, Vector<double>&, double&);
extern template bool top_eigenpairs<double>(const Eigen::Ref<const Matrix<double>>&,
                                            Matrix<double>&, bool, Index, std::uint64_t,
                                            Vector<double>&, double&);
extern template Definiteness classify<float>(const Vector<float>&, double);
extern template Definiteness classify<double>(const Vector<double>&, double);
extern template TrustRegionSubproblemResult solve_trust_region_subproblem<float>(
    const Eigen::SelfAdjointEigenSolver<Matrix<float>>&, const Vector<float>&, double,
    Vector<float>&, double);
extern template TrustRegionSubproblemResult solve_trust_region_subproblem<double>(
    const Eigen::SelfAdjointEigenSolver<Matrix<double>>&, const Vector<double>&, double,
    Vector<double>&, double);

}  // namespace hesse::linalg
