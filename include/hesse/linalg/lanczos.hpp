// A few Lanczos steps (with full reorthogonalisation) to estimate the smallest
// eigenvalue of a symmetric operator and its Ritz vector -- the "minimum
// eigenvalue oracle" that Royer, O'Neill & Wright (2020, Math. Prog. 180) run
// from a random start to find negative curvature that Krylov spaces of the
// gradient miss (for instance at a point whose gradient is orthogonal to the
// most negative eigenvector). Golub & Van Loan, 4th ed., Alg. 10.1.1.
#pragma once

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cstdint>

#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"

namespace hesse::linalg {

/// Caller-owned storage for `lanczos_smallest`: the Krylov basis (n x k) and
/// the tridiagonal matrix; sized once, reused without allocation.
template <class T>
struct LanczosWorkspace {
  Matrix<T> basis;
  Vector<T> q, w;
  Vector<T> coefficients;
  Eigen::VectorXd alpha, beta;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> tridiagonal;

  void resize(Index n, Index k) {
    if (basis.rows() != n || basis.cols() != k) {
      basis.resize(n, k);
      q.resize(n);
      w.resize(n);
      coefficients.resize(k);
      alpha.resize(k);
      beta.resize(k);
      // `tridiagonal` sizes itself in computeFromTridiagonal. (Assigning a
      // solver built with Eigen 3.4's sized constructor copies its
      // uninitialised status field: undefined behaviour, caught by UBSan.)
    }
  }
};

/// Runs at most `steps` Lanczos steps of A from a N(0, I) start drawn from
/// `seed`, and returns the smallest Ritz value; `vector` receives its unit
/// Ritz vector. Costs `steps` applications of A (fewer if the Krylov space
/// becomes invariant). For steps >= n the result is exact up to rounding.
template <class T, class Operator>
double lanczos_smallest(Operator& A, Index n, Index steps, std::uint64_t seed, Vector<T>& vector,
                        LanczosWorkspace<T>& ws) {
  const Index k = std::max<Index>(1, std::min(steps, n));
  ws.resize(n, k);
  Rng rng(seed);
  Eigen::Ref<Vector<T>> start = ws.w;
  fill_normal<T>(rng, start);
  ws.basis.col(0) = ws.w / ws.w.norm();
  Index m = 0;  // size of the tridiagonal matrix built so far
  for (Index j = 0; j < k; ++j) {
    ws.q = ws.basis.col(j);
    A.apply(ws.q, ws.w);
    ws.alpha[j] = static_cast<double>(ws.basis.col(j).dot(ws.w));
    m = j + 1;
    // Full reorthogonalisation against the basis so far (twice is enough).
    for (int pass = 0; pass < 2; ++pass) {
      ws.coefficients.head(m).noalias() = ws.basis.leftCols(m).transpose() * ws.w;
      ws.w.noalias() -= ws.basis.leftCols(m) * ws.coefficients.head(m);
    }
    if (j + 1 == k) break;
    const double b = static_cast<double>(ws.w.norm());
    if (!(b > 1e-12 * std::max(1.0, std::abs(ws.alpha[j])))) break;  // invariant subspace
    ws.beta[j] = b;
    ws.basis.col(j + 1) = ws.w / static_cast<T>(b);
  }
  ws.tridiagonal.computeFromTridiagonal(ws.alpha.head(m), ws.beta.head(std::max<Index>(0, m - 1)),
                                        Eigen::ComputeEigenvectors);
  vector.noalias() =
      ws.basis.leftCols(m) * ws.tridiagonal.eigenvectors().col(0).template cast<T>();
  vector /= vector.norm();
  return ws.tridiagonal.eigenvalues()[0];
}

}  // namespace hesse::linalg
