// Residual models for the least-squares tests: linear residuals, an
// exponential curve fit, and MGH problems written as residuals (J. J. More,
// B. S. Garbow and K. E. Hillstrom, "Testing Unconstrained Optimization
// Software", ACM TOMS 7(1), 1981, pp. 17-41; problem numbers below). MGH's
// f = sum r_i^2 is twice hesse's f = 1/2 |r|^2.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"

namespace lsq_test {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;

/// Implements jacobian_vector and jacobian_transpose_vector from a dense
/// jacobian() of the derived model (small test problems only).
template <class Derived, class T>
struct DenseProducts {
  Matrix<T> j_;
  void jacobian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    static_cast<Derived*>(this)->jacobian(x, j_);
    out.noalias() = j_ * v;
  }
  void jacobian_transpose_vector(const Vector<T>& x, const Vector<T>& u, Vector<T>& out) {
    static_cast<Derived*>(this)->jacobian(x, j_);
    out.noalias() = j_.transpose() * u;
  }
};

/// r = A x - b with a seeded Gaussian A (m x n) and b.
template <class T>
struct LinearResiduals {
  using Scalar = T;
  Matrix<T> a;
  Vector<T> b;
  LinearResiduals(Index m, Index n, std::uint64_t seed) : a(m, n), b(m) {
    hesse::Rng rng(seed);
    for (Index j = 0; j < n; ++j) hesse::fill_normal<T>(rng, a.col(j));
    hesse::fill_normal<T>(rng, b);
  }
  Index dimension() const { return a.cols(); }
  Index num_residuals() const { return a.rows(); }
  void residuals(const Vector<T>& x, Vector<T>& r) { r.noalias() = a * x - b; }
  void jacobian_vector(const Vector<T>&, const Vector<T>& v, Vector<T>& out) { out.noalias() = a * v; }
  void jacobian_transpose_vector(const Vector<T>&, const Vector<T>& u, Vector<T>& out) {
    out.noalias() = a.transpose() * u;
  }
  void jacobian(const Vector<T>&, Matrix<T>& j) { j = a; }
};

/// The same residuals without jacobian(): matrix-free only.
template <class T>
struct MatrixFreeLinearResiduals {
  using Scalar = T;
  LinearResiduals<T> inner;
  MatrixFreeLinearResiduals(Index m, Index n, std::uint64_t seed) : inner(m, n, seed) {}
  Index dimension() const { return inner.dimension(); }
  Index num_residuals() const { return inner.num_residuals(); }
  void residuals(const Vector<T>& x, Vector<T>& r) { inner.residuals(x, r); }
  void jacobian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    inner.jacobian_vector(x, v, out);
  }
  void jacobian_transpose_vector(const Vector<T>& x, const Vector<T>& u, Vector<T>& out) {
    inner.jacobian_transpose_vector(x, u, out);
  }
};

/// r_i = a exp(b t_i) + c - y_i, x = (a, b, c); J row i = (e_i, a t_i e_i, 1),
/// e_i = exp(b t_i).
template <class T>
struct ExponentialFit {
  using Scalar = T;
  Vector<T> t, y;
  Vector<T> e_;  // exp(b t), scratch

  /// m points t_i evenly in [0, 4], y = a exp(b t) + c + noise N(0, noise^2).
  static ExponentialFit make(Index m, double a, double b, double c, double noise, std::uint64_t seed) {
    ExponentialFit fit;
    fit.t = Vector<T>::LinSpaced(m, T(0), T(4));
    fit.y = (T(a) * (T(b) * fit.t.array()).exp() + T(c)).matrix();
    if (noise > 0) {
      hesse::Rng rng(seed);
      Vector<T> eps(m);
      hesse::fill_normal<T>(rng, eps, T(noise));
      fit.y += eps;
    }
    return fit;
  }
  Index dimension() const { return 3; }
  Index num_residuals() const { return t.size(); }
  void residuals(const Vector<T>& x, Vector<T>& r) {
    r = (x[0] * (x[1] * t.array()).exp() + x[2] - y.array()).matrix();
  }
  void jacobian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    e_ = (x[1] * t.array()).exp().matrix();
    out = (e_.array() * (v[0] + v[1] * x[0] * t.array()) + v[2]).matrix();
  }
  void jacobian_transpose_vector(const Vector<T>& x, const Vector<T>& u, Vector<T>& out) {
    e_ = (x[1] * t.array()).exp().matrix();
    out.resize(3);
    out[0] = e_.dot(u);
    out[1] = x[0] * (e_.array() * t.array() * u.array()).sum();
    out[2] = u.sum();
  }
  void jacobian(const Vector<T>& x, Matrix<T>& j) {
    j.resize(t.size(), 3);
    j.col(0) = (x[1] * t.array()).exp().matrix();
    j.col(1) = (x[0] * t.array() * j.col(0).array()).matrix();
    j.col(2).setOnes();
  }
};

/// MGH 1: r = (10 (x2 - x1^2), 1 - x1); start (-1.2, 1); minimiser (1, 1), f = 0.
struct RosenbrockResiduals : DenseProducts<RosenbrockResiduals, double> {
  using Scalar = double;
  Index dimension() const { return 2; }
  Index num_residuals() const { return 2; }
  void residuals(const Vector<double>& x, Vector<double>& r) {
    r.resize(2);
    r << 10 * (x[1] - x[0] * x[0]), 1 - x[0];
  }
  void jacobian(const Vector<double>& x, Matrix<double>& j) {
    j.resize(2, 2);
    j << -20 * x[0], 10, -1, 0;
  }
};

/// MGH 13: r = (x1 + 10 x2, sqrt5 (x3 - x4), (x2 - 2 x3)^2, sqrt10 (x1 - x4)^2);
/// start (3, -1, 0, 1); minimiser 0, f = 0, with J singular there.
struct PowellSingularResiduals : DenseProducts<PowellSingularResiduals, double> {
  using Scalar = double;
  Index dimension() const { return 4; }
  Index num_residuals() const { return 4; }
  void residuals(const Vector<double>& x, Vector<double>& r) {
    r.resize(4);
    r << x[0] + 10 * x[1], std::sqrt(5.0) * (x[2] - x[3]), std::pow(x[1] - 2 * x[2], 2),
        std::sqrt(10.0) * std::pow(x[0] - x[3], 2);
  }
  void jacobian(const Vector<double>& x, Matrix<double>& j) {
    j.setZero(4, 4);
    j(0, 0) = 1;
    j(0, 1) = 10;
    j(1, 2) = std::sqrt(5.0);
    j(1, 3) = -std::sqrt(5.0);
    j(2, 1) = 2 * (x[1] - 2 * x[2]);
    j(2, 2) = -4 * (x[1] - 2 * x[2]);
    j(3, 0) = 2 * std::sqrt(10.0) * (x[0] - x[3]);
    j(3, 3) = -2 * std::sqrt(10.0) * (x[0] - x[3]);
  }
};

/// MGH 4: r = (x1 - 1e6, x2 - 2e-6, x1 x2 - 2); start (1, 1); minimiser (1e6, 2e-6), f = 0.
struct BrownBadlyScaledResiduals : DenseProducts<BrownBadlyScaledResiduals, double> {
  using Scalar = double;
  Index dimension() const { return 2; }
  Index num_residuals() const { return 3; }
  void residuals(const Vector<double>& x, Vector<double>& r) {
    r.resize(3);
    r << x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2;
  }
  void jacobian(const Vector<double>& x, Matrix<double>& j) {
    j.resize(3, 2);
    j << 1, 0, 0, 1, x[1], x[0];
  }
};

/// MGH 2: r1 = -13 + x1 + ((5 - x2) x2 - 2) x2, r2 = -29 + x1 + ((x2 + 1) x2 - 14) x2;
/// start (0.5, -2). Global minimiser (5, 4) with f = 0; a local minimiser
/// near (11.41, -0.8968) with MGH f = 48.9842... (hesse f = 24.4921...).
struct FreudensteinRothResiduals : DenseProducts<FreudensteinRothResiduals, double> {
  using Scalar = double;
  Index dimension() const { return 2; }
  Index num_residuals() const { return 2; }
  void residuals(const Vector<double>& x, Vector<double>& r) {
    r.resize(2);
    r << -13 + x[0] + ((5 - x[1]) * x[1] - 2) * x[1], -29 + x[0] + ((x[1] + 1) * x[1] - 14) * x[1];
  }
  void jacobian(const Vector<double>& x, Matrix<double>& j) {
    j.resize(2, 2);
    j << 1, 10 * x[1] - 3 * x[1] * x[1] - 2, 1, 3 * x[1] * x[1] + 2 * x[1] - 14;
  }
};

/// MGH 8 (Bard): r_i = y_i - (x1 + u_i / (v_i x2 + w_i x3)), u_i = i, v_i = 16 - i,
/// w_i = min(u_i, v_i), i = 1..15; start (1, 1, 1); MGH f = 8.21487...e-3 at
/// about (0.0824, 1.133, 2.344).
struct BardResiduals : DenseProducts<BardResiduals, double> {
  using Scalar = double;
  static constexpr double kY[15] = {0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39,
                                    0.37, 0.58, 0.73, 0.96, 1.34, 2.10, 4.39};
  Index dimension() const { return 3; }
  Index num_residuals() const { return 15; }
  void residuals(const Vector<double>& x, Vector<double>& r) {
    r.resize(15);
    for (int i = 0; i < 15; ++i) {
      const double u = i + 1, v = 15 - i, w = std::min(u, v);
      r[i] = kY[i] - (x[0] + u / (v * x[1] + w * x[2]));
    }
  }
  void jacobian(const Vector<double>& x, Matrix<double>& j) {
    j.resize(15, 3);
    for (int i = 0; i < 15; ++i) {
      const double u = i + 1, v = 15 - i, w = std::min(u, v);
      const double d = v * x[1] + w * x[2];
      j(i, 0) = -1;
      j(i, 1) = u * v / (d * d);
      j(i, 2) = u * w / (d * d);
    }
  }
};

/// MGH 10 (Meyer): r_i = x1 exp(x2 / (t_i + x3)) - y_i, t_i = 45 + 5 i, i = 1..16;
/// start (0.02, 4000, 250); MGH f = 87.9458... at about (0.0056096, 6181.35, 345.224).
struct MeyerResiduals : DenseProducts<MeyerResiduals, double> {
  using Scalar = double;
  static constexpr double kY[16] = {34780, 28610, 23650, 19630, 16370, 13720, 11540, 9744,
                                    8261,  7030,  6005,  5147,  4427,  3820,  3307,  2872};
  Index dimension() const { return 3; }
  Index num_residuals() const { return 16; }
  void residuals(const Vector<double>& x, Vector<double>& r) {
    r.resize(16);
    for (int i = 0; i < 16; ++i) {
      const double t = 45 + 5 * (i + 1);
      r[i] = x[0] * std::exp(x[1] / (t + x[2])) - kY[i];
    }
  }
  void jacobian(const Vector<double>& x, Matrix<double>& j) {
    j.resize(16, 3);
    for (int i = 0; i < 16; ++i) {
      const double t = 45 + 5 * (i + 1);
      const double e = std::exp(x[1] / (t + x[2]));
      j(i, 0) = e;
      j(i, 1) = x[0] * e / (t + x[2]);
      j(i, 2) = -x[0] * e * x[1] / ((t + x[2]) * (t + x[2]));
    }
  }
};

/// r_i = log(x_i) - 1 (NaN for x_i < 0): minimiser x = e. From a start where
/// the first Gauss-Newton step lands at negative x, a solver must shorten or
/// reject the step.
struct LogResiduals : DenseProducts<LogResiduals, double> {
  using Scalar = double;
  Index n = 2;
  Index dimension() const { return n; }
  Index num_residuals() const { return n; }
  void residuals(const Vector<double>& x, Vector<double>& r) {
    r = (x.array().log() - 1.0).matrix();
  }
  void jacobian(const Vector<double>& x, Matrix<double>& j) {
    j = x.cwiseInverse().asDiagonal();
  }
};

}  // namespace lsq_test
