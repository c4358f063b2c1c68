// Shared by the tests of eigen-based code: a symmetric matrix of known spectrum.
#pragma once

#include <Eigen/QR>
#include <cstdint>
#include <random>

#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"

namespace hesse::testing {

/// V diag(values) V^T with V a random orthogonal matrix from `seed` (the QR
/// of a Gaussian matrix); V's columns are the eigenvectors in the order of
/// `values`, returned in `vectors` when it is not null.
inline Matrix<double> with_spectrum(const Vector<double>& values, std::uint64_t seed,
                                    Matrix<double>* vectors = nullptr) {
  const Index n = values.size();
  Rng rng(seed);
  std::normal_distribution<double> draw(0.0, 1.0);
  Matrix<double> A(n, n);
  for (Index j = 0; j < n; ++j)
    for (Index i = 0; i < n; ++i) A(i, j) = draw(rng);
  const Matrix<double> V = Eigen::HouseholderQR<Matrix<double>>(A).householderQ();
  if (vectors) *vectors = V;
  return V * values.asDiagonal() * V.transpose();
}

}  // namespace hesse::testing
