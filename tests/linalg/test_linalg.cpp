// Tests of the matrix-free CG solvers, the Lanczos probe and the dense
// helpers (damped Cholesky, eigendecomposition, trust-region subproblem).
#include <gtest/gtest.h>

#include <cmath>

#include "hesse/core/rng.hpp"
#include "hesse/linalg/cg.hpp"
#include "hesse/linalg/dense.hpp"
#include "hesse/linalg/lanczos.hpp"

namespace {

using hesse::Index;
using hesse::linalg::CgOptions;
using hesse::linalg::CgStatus;
using hesse::linalg::CgWorkspace;
using Vec = hesse::Vector<double>;
using Mat = hesse::Matrix<double>;

// A dense matrix as an operator; counts applications.
struct DenseOperator {
  const Mat& A;
  int applications = 0;
  void apply(const Vec& v, Vec& out) {
    ++applications;
    out.noalias() = A * v;
  }
};

// Q diag(spectrum) Q^T with a seeded random orthogonal Q.
Mat with_spectrum(const Vec& spectrum, std::uint64_t seed) {
  hesse::Rng rng(seed);
  Mat G(spectrum.size(), spectrum.size());
  for (Index j = 0; j < G.cols(); ++j) {
    Vec column(G.rows());
    hesse::fill_normal<double>(rng, column);
    G.col(j) = column;
  }
  Eigen::HouseholderQR<Mat> qr(G);
  Mat Q = qr.householderQ();
  return Q * spectrum.asDiagonal() * Q.transpose();
}

Vec log_spaced(Index n, double condition) {
  Vec s(n);
  for (Index i = 0; i < n; ++i) s[i] = std::pow(condition, double(i) / double(n - 1));
  return s;
}

TEST(ConjugateGradient, SolvesSpdSystemWithinNIterations) {
  const Index n = 50;
  const Mat A = with_spectrum(log_spaced(n, 1e2), 1);
  Vec b = Vec::LinSpaced(n, -1, 1);
  DenseOperator op{A};
  hesse::linalg::IdentityPreconditioner M;
  CgWorkspace<double> ws;
  Vec x;
  const auto result = hesse::linalg::conjugate_gradient(op, M, b, x, CgOptions{.relative_tolerance = 1e-10,
                                                                              .max_iterations = 2 * n},
                                                        ws);
  EXPECT_EQ(result.status, CgStatus::Converged);
  EXPECT_LE(result.iterations, 2 * n);
  EXPECT_LE((A * x - b).norm(), 1e-8 * b.norm());
  EXPECT_EQ(op.applications, result.iterations);
}

TEST(ConjugateGradient, JacobiPreconditionerHelpsBadlyScaledDiagonal) {
  const Index n = 200;
  Vec d = log_spaced(n, 1e6);
  Mat A = d.asDiagonal();
  A(0, 1) = A(1, 0) = 0.1;  // not quite diagonal
  Vec b = Vec::Ones(n);
  DenseOperator op{A};
  hesse::linalg::IdentityPreconditioner identity;
  hesse::linalg::DiagonalPreconditioner<double> jacobi{A.diagonal().cwiseInverse()};
  CgWorkspace<double> ws;
  Vec x;
  const CgOptions options{.relative_tolerance = 1e-10, .max_iterations = 10 * n};
  const auto plain = hesse::linalg::conjugate_gradient(op, identity, b, x, options, ws);
  const auto preconditioned = hesse::linalg::conjugate_gradient(op, jacobi, b, x, options, ws);
  EXPECT_EQ(preconditioned.status, CgStatus::Converged);
  EXPECT_LT(preconditioned.iterations, plain.iterations);
  EXPECT_LE(preconditioned.iterations, 10);
  EXPECT_LE((A * x - b).norm(), 1e-8 * b.norm());
}

TEST(ConjugateGradient, StopsAtNegativeCurvature) {
  Mat A = Vec((Vec(3) << 2, 1, -1).finished()).asDiagonal();
  Vec b = Vec::Ones(3);
  DenseOperator op{A};
  hesse::linalg::IdentityPreconditioner M;
  CgWorkspace<double> ws;
  Vec x;
  const auto result = hesse::linalg::conjugate_gradient(op, M, b, x, CgOptions{}, ws);
  EXPECT_EQ(result.status, CgStatus::NegativeCurvature);
  EXPECT_LE(ws.d.dot(A * ws.d), 0.0);
  EXPECT_LE(result.curvature, 0.0);
  // An indefinite matrix with negative curvature along b itself: stop at once.
  Mat B = -Mat::Identity(3, 3);
  DenseOperator op_b{B};
  const auto first = hesse::linalg::conjugate_gradient(op_b, M, b, x, CgOptions{}, ws);
  EXPECT_EQ(first.status, CgStatus::NegativeCurvature);
  EXPECT_EQ(first.iterations, 1);
  EXPECT_EQ(x.norm(), 0.0);
  EXPECT_DOUBLE_EQ(first.curvature, -1.0);
}

TEST(ConjugateGradient, ReportsBreakdownOnNaN) {
  Mat A = Mat::Identity(2, 2);
  A(0, 0) = std::nan("");
  DenseOperator op{A};
  hesse::linalg::IdentityPreconditioner M;
  CgWorkspace<double> ws;
  Vec x;
  const auto result = hesse::linalg::conjugate_gradient(op, M, Vec(Vec::Ones(2)), x, CgOptions{}, ws);
  EXPECT_EQ(result.status, CgStatus::Breakdown);
}

TEST(SteihaugCg, InteriorSolutionIsTheNewtonStep) {
  const Index n = 20;
  const Mat A = with_spectrum(log_spaced(n, 10), 2);
  const Vec g = Vec::LinSpaced(n, 1, 2);
  DenseOperator op{A};
  CgWorkspace<double> ws;
  Vec p;
  const Vec newton = -A.ldlt().solve(g);
  const auto result = hesse::linalg::steihaug_cg(op, g, 10 * newton.norm(), p,
                                                 CgOptions{.relative_tolerance = 1e-12}, ws);
  EXPECT_EQ(result.status, CgStatus::Converged);
  EXPECT_LE((p - newton).norm(), 1e-9 * newton.norm());
  EXPECT_NEAR(result.model_value, g.dot(p) + 0.5 * p.dot(A * p), 1e-10);
}

TEST(SteihaugCg, StopsOnTheBoundary) {
  const Index n = 20;
  const Mat A = with_spectrum(log_spaced(n, 100), 3);
  const Vec g = Vec::Ones(n);
  DenseOperator op{A};
  CgWorkspace<double> ws;
  Vec p;
  const double radius = 0.1 * A.ldlt().solve(g).norm();
  const auto result = hesse::linalg::steihaug_cg(op, g, radius, p, CgOptions{}, ws);
  EXPECT_EQ(result.status, CgStatus::TrustRegionBoundary);
  EXPECT_NEAR(p.norm(), radius, 1e-12 * radius);
  EXPECT_LT(result.model_value, 0.0);
  EXPECT_NEAR(result.model_value, g.dot(p) + 0.5 * p.dot(A * p), 1e-10);
}

TEST(SteihaugCg, FollowsNegativeCurvatureToTheBoundary) {
  Mat A = Vec((Vec(2) << -1, 1).finished()).asDiagonal();
  const Vec g = (Vec(2) << 0.5, 0.5).finished();
  DenseOperator op{A};
  CgWorkspace<double> ws;
  Vec p;
  const auto result = hesse::linalg::steihaug_cg(op, g, 2.0, p, CgOptions{}, ws);
  // d_0 = -g has curvature 0 here: non-positive, so go to the boundary along -g.
  EXPECT_EQ(result.status, CgStatus::NegativeCurvature);
  EXPECT_NEAR(p.norm(), 2.0, 1e-12);
  EXPECT_LT(g.dot(p), 0.0);
  EXPECT_NEAR(result.model_value, g.dot(p) + 0.5 * p.dot(A * p), 1e-12);
}

TEST(Lanczos, FindsTheSmallestEigenvalue) {
  const Index n = 30;
  Vec spectrum = log_spaced(n, 100);
  spectrum[7] = -3;
  const Mat A = with_spectrum(spectrum, 4);
  DenseOperator op{A};
  hesse::linalg::LanczosWorkspace<double> ws;
  Vec v(n);
  const double lowest = hesse::linalg::lanczos_smallest(op, n, n, 7, v, ws);
  EXPECT_NEAR(lowest, -3, 1e-9);
  EXPECT_NEAR(v.dot(A * v), -3, 1e-8);
  EXPECT_NEAR(v.norm(), 1, 1e-12);
  // Fewer steps than n already see the negative eigenvalue (a gap of 4 in a
  // spread of 103: Kaniel-Paige bound ~ 103 (5.5 / T_19(1.08))^2 < 0.01).
  const double estimate = hesse::linalg::lanczos_smallest(op, n, 20, 7, v, ws);
  EXPECT_NEAR(estimate, -3, 0.05);
  EXPECT_EQ(op.applications, n + 20);
}

TEST(DampedCholesky, FactorisesPositiveDefiniteWithoutShift) {
  const Mat A = with_spectrum(log_spaced(5, 10), 5);
  Eigen::LLT<Mat> llt;
  const auto result = hesse::linalg::damped_cholesky(A, llt);
  EXPECT_TRUE(result.success);
  EXPECT_EQ(result.shift, 0.0);
  EXPECT_EQ(result.attempts, 1);
}

TEST(DampedCholesky, ShiftsAnIndefiniteMatrixUntilPositiveDefinite) {
  Mat A = Vec((Vec(3) << -2, 1, 4).finished()).asDiagonal();
  Eigen::LLT<Mat> llt;
  const auto result = hesse::linalg::damped_cholesky(A, llt);
  ASSERT_TRUE(result.success);
  // tau_1 = 1e-3 * 4 + 2 = 2.004 already works.
  EXPECT_NEAR(result.shift, 2.004, 1e-12);
  EXPECT_EQ(result.attempts, 2);
  const Mat shifted = A + result.shift * Mat::Identity(3, 3);
  EXPECT_LE((llt.reconstructedMatrix() - shifted).norm(), 1e-12);
  // Off-diagonal mass needs more shifts: eigenvalues of [[1, 3], [3, 1]] are -2, 4.
  Mat B(2, 2);
  B << 1, 3, 3, 1;
  const auto grown = hesse::linalg::damped_cholesky(B, llt);
  ASSERT_TRUE(grown.success);
  EXPECT_GT(grown.shift, 2.0);
  EXPECT_GT(grown.attempts, 2);
}

TEST(DampedCholesky, FailsOnNaN) {
  Mat A = Mat::Identity(2, 2);
  A(1, 1) = std::nan("");
  Eigen::LLT<Mat> llt;
  EXPECT_FALSE(hesse::linalg::damped_cholesky(A, llt).success);
}

TEST(SymmetricEigen, ClassifiesTheSign) {
  using hesse::linalg::Definiteness;
  Eigen::SelfAdjointEigenSolver<Mat> eigen;
  auto sign_of = [&](Vec spectrum) {
    EXPECT_TRUE(hesse::linalg::symmetric_eigen(with_spectrum(spectrum, 6), eigen));
    return hesse::linalg::classify<double>(eigen.eigenvalues(), 1e-12);
  };
  EXPECT_EQ(sign_of((Vec(3) << 1, 2, 3).finished()), Definiteness::PositiveDefinite);
  EXPECT_EQ(sign_of((Vec(3) << 0, 2, 3).finished()), Definiteness::PositiveSemidefinite);
  EXPECT_EQ(sign_of((Vec(3) << -1, 2, 3).finished()), Definiteness::Indefinite);
  EXPECT_EQ(sign_of((Vec(3) << -1, -2, -3).finished()), Definiteness::NegativeDefinite);
  EXPECT_STREQ(hesse::linalg::to_string(Definiteness::Indefinite), "indefinite");
  Mat bad = Mat::Identity(2, 2);
  bad(0, 1) = bad(1, 0) = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(hesse::linalg::symmetric_eigen(bad, eigen));
}

// Checks the optimality conditions of the trust-region subproblem (N&W Thm 4.1):
// (H + l I) p = -g, l (radius - |p|) = 0, H + l I positive semidefinite.
void expect_optimal(const Mat& H, const Vec& g, double radius, const Vec& p,
                    const hesse::linalg::TrustRegionSubproblemResult& r) {
  const double l = r.multiplier;
  EXPECT_LE(((H + l * Mat::Identity(H.rows(), H.cols())) * p + g).norm(), 1e-8 * (1 + g.norm()));
  EXPECT_LE(p.norm(), radius * (1 + 1e-9));
  if (l > 0) {
    EXPECT_NEAR(p.norm(), radius, 1e-8 * radius);
  }
  Eigen::SelfAdjointEigenSolver<Mat> shifted(H + l * Mat::Identity(H.rows(), H.cols()));
  EXPECT_GE(shifted.eigenvalues().minCoeff(), -1e-9);
  EXPECT_NEAR(r.model_value, g.dot(p) + 0.5 * p.dot(H * p), 1e-10);
}

TEST(TrustRegionSubproblem, InteriorBoundaryAndIndefinite) {
  Eigen::SelfAdjointEigenSolver<Mat> eigen;
  Vec p;
  const Mat spd = with_spectrum(log_spaced(6, 100), 8);
  const Vec g = Vec::LinSpaced(6, -1, 2);
  eigen.compute(spd);
  const double newton_norm = spd.ldlt().solve(g).norm();
  auto interior = hesse::linalg::solve_trust_region_subproblem(eigen, g, 2 * newton_norm, p);
  EXPECT_FALSE(interior.on_boundary);
  EXPECT_EQ(interior.multiplier, 0.0);
  expect_optimal(spd, g, 2 * newton_norm, p, interior);
  auto boundary = hesse::linalg::solve_trust_region_subproblem(eigen, g, 0.3 * newton_norm, p);
  EXPECT_TRUE(boundary.on_boundary);
  expect_optimal(spd, g, 0.3 * newton_norm, p, boundary);

  Vec spectrum = log_spaced(6, 100);
  spectrum[2] = -5;
  const Mat indefinite = with_spectrum(spectrum, 9);
  eigen.compute(indefinite);
  auto r = hesse::linalg::solve_trust_region_subproblem(eigen, g, 1.5, p);
  EXPECT_FALSE(r.hard_case);
  EXPECT_GT(r.multiplier, 5.0);
  expect_optimal(indefinite, g, 1.5, p, r);
}

TEST(TrustRegionSubproblem, HardCase) {
  // g orthogonal to the eigenvector of the lowest eigenvalue -2.
  Mat H = Vec((Vec(3) << -2, 1, 3).finished()).asDiagonal();
  const Vec g = (Vec(3) << 0, 1, 1).finished();
  Eigen::SelfAdjointEigenSolver<Mat> eigen(H);
  Vec p;
  // |p(2)| = |(0, -1/3, -1/5)| = 0.389 < radius: hard case.
  auto r = hesse::linalg::solve_trust_region_subproblem(eigen, g, 1.0, p);
  EXPECT_TRUE(r.hard_case);
  EXPECT_DOUBLE_EQ(r.multiplier, 2.0);
  EXPECT_NEAR(std::abs(p[0]), std::sqrt(1.0 - 1.0 / 9 - 1.0 / 25), 1e-12);
  expect_optimal(H, g, 1.0, p, r);
  // Small radius: not the hard case, the secular equation has a root above 2.
  auto small = hesse::linalg::solve_trust_region_subproblem(eigen, g, 0.2, p);
  EXPECT_FALSE(small.hard_case);
  expect_optimal(H, g, 0.2, p, small);
  // Zero gradient at a saddle: move along the negative eigenvector.
  auto saddle = hesse::linalg::solve_trust_region_subproblem(eigen, Vec(Vec::Zero(3)), 0.5, p);
  EXPECT_TRUE(saddle.hard_case);
  EXPECT_NEAR(std::abs(p[0]), 0.5, 1e-14);
}

TEST(TrustRegionSubproblem, Float) {
  using MatF = hesse::Matrix<float>;
  using VecF = hesse::Vector<float>;
  MatF H = VecF((VecF(2) << -1, 1).finished()).asDiagonal();
  VecF g = (VecF(2) << 0, 0.5f).finished();
  Eigen::SelfAdjointEigenSolver<MatF> eigen(H);
  VecF p;
  auto r = hesse::linalg::solve_trust_region_subproblem(eigen, g, 1.0, p);
  EXPECT_TRUE(r.hard_case);
  EXPECT_NEAR(p.norm(), 1.0f, 1e-6f);
}

}  // namespace
