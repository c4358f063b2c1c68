// Test problems with known minimisers, for the convergence tests of every
// solver (in the manner of Ceres' and ensmallen's catalogues). Each problem is
// an objective of tiers 1, 2, 3 and 5 (value, value and gradient, exact
// Hessian-vector product, dense Hessian), all in closed form, and exposes
//
//   standard_start()    the starting point of the literature
//   known_minimizer()   a global minimiser x*
//   known_minimum()     f(x*)
//
// Unless stated otherwise the definitions and starting points are those of
// J. J. More, B. S. Garbow and K. E. Hillstrom, "Testing Unconstrained
// Optimization Software", ACM TOMS 7(1), 1981, pp. 17-41 (MGH below, with the
// problem number). A sum-of-squares problem f = sum_i r_i(x)^2 is written out
// in its residuals r_i; gradients and Hessians follow from
//   grad f = 2 sum_i r_i grad r_i,   H = 2 sum_i (grad r_i grad r_i^T + r_i Hess r_i).
//
// Every problem is a class template on the Scalar (float or double); the
// src/objective/problems.cpp file instantiates both.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include <Eigen/QR>

#include "hesse/core/error.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"

namespace hesse::problems {

namespace detail {

/// Throws InvalidArgument unless a vector passed to `call` has `expected` entries.
inline void require_size(const char* call, const char* name, Index size, Index expected) {
  HESSE_REQUIRE(size == expected, std::string(call) + ": " + name + " has " + std::to_string(size) +
                                      " entries, the problem has dimension " +
                                      std::to_string(expected));
}

}  // namespace detail

/// f(x) = 1/2 x^T A x - b^T x with A = Q diag(lambda) Q^T symmetric positive
/// definite: Q is the orthogonal factor of a Gaussian matrix, the eigenvalues
/// lambda_i = cond^(i / (n - 1)) are log-spaced from 1 to `condition_number`,
/// b is Gaussian. Minimiser A^-1 b = Q diag(1 / lambda) Q^T b, minimum
/// -1/2 b^T A^-1 b. Start: the origin. A, b and x* are formed in double and
/// rounded once to T.
template <class T>
class Quadratic {
 public:
  using Scalar = T;

  explicit Quadratic(Index n, double condition_number = 1e4, std::uint64_t seed = 0) {
    HESSE_REQUIRE(n >= 1, "problems::Quadratic: n = " + std::to_string(n) + ": must be >= 1");
    HESSE_REQUIRE(std::isfinite(condition_number) && condition_number >= 1,
                  "problems::Quadratic: condition_number = " + std::to_string(condition_number) +
                      ": must be finite and >= 1");
    Rng rng(seed);
    Matrix<double> gaussian(n, n);
    for (Index j = 0; j < n; ++j) fill_normal<double>(rng, gaussian.col(j));
    const Matrix<double> q = Eigen::HouseholderQR<Matrix<double>>(gaussian).householderQ();
    Vector<double> eigenvalues(n);
    for (Index i = 0; i < n; ++i)
      eigenvalues[i] = n == 1 ? 1.0 : std::pow(condition_number, double(i) / double(n - 1));
    Vector<double> b(n);
    fill_normal<double>(rng, b);
    const Matrix<double> a = q * eigenvalues.asDiagonal() * q.transpose();
    const Vector<double> minimizer = q * (q.transpose() * b).cwiseQuotient(eigenvalues);
    a_ = (0.5 * (a + a.transpose())).cast<T>();
    b_ = b.cast<T>();
    minimizer_ = minimizer.cast<T>();
    minimum_ = static_cast<T>(-0.5 * b.dot(minimizer));
  }

  Index dimension() const { return b_.size(); }
  const Matrix<T>& matrix() const { return a_; }
  const Vector<T>& rhs() const { return b_; }

  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    detail::require_size("Quadratic::value_and_gradient", "x", x.size(), dimension());
    ax_.noalias() = a_ * x;
    if (g) *g = ax_ - b_;
    return T(0.5) * x.dot(ax_) - b_.dot(x);
  }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    detail::require_size("Quadratic::hessian_vector", "x", x.size(), dimension());
    detail::require_size("Quadratic::hessian_vector", "v", v.size(), dimension());
    out.noalias() = a_ * v;
  }
  void hessian(const Vector<T>& x, Matrix<T>& h) {
    detail::require_size("Quadratic::hessian", "x", x.size(), dimension());
    h = a_;
  }

  Vector<T> standard_start() const { return Vector<T>::Zero(dimension()); }
  Vector<T> known_minimizer() const { return minimizer_; }
  T known_minimum() const { return minimum_; }

 private:
  Matrix<T> a_;
  Vector<T> b_;
  Vector<T> minimizer_;
  T minimum_ = 0;
  Vector<T> ax_;
};

/// f(x) = x^2 + 2x + 1 = (x + 1)^2 in one dimension. Minimiser -1, minimum 0;
/// start 2. Newton with unit step reaches the minimiser in one step.
template <class T>
class OneDimensionalSquare {
 public:
  using Scalar = T;

  Index dimension() const { return 1; }
  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    detail::require_size("OneDimensionalSquare::value_and_gradient", "x", x.size(), 1);
    const T t = x[0];
    if (g) g->setConstant(1, T(2) * t + T(2));
    return t * t + T(2) * t + T(1);
  }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    detail::require_size("OneDimensionalSquare::hessian_vector", "x", x.size(), 1);
    detail::require_size("OneDimensionalSquare::hessian_vector", "v", v.size(), 1);
    out = T(2) * v;
  }
  void hessian(const Vector<T>& x, Matrix<T>& h) {
    detail::require_size("OneDimensionalSquare::hessian", "x", x.size(), 1);
    h.setConstant(1, 1, T(2));
  }

  Vector<T> standard_start() const { return Vector<T>::Constant(1, T(2)); }
  Vector<T> known_minimizer() const { return Vector<T>::Constant(1, T(-1)); }
  T known_minimum() const { return T(0); }
};

/// Rosenbrock's function in its chained form (the one SciPy's `rosen` uses):
///   f(x) = sum_{i=1}^{n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2,   n >= 2.
/// For n = 2 it is MGH problem 1; for larger n MGH's problem 21 ("extended
/// Rosenbrock") sums independent pairs instead, while the chained form couples
/// all coordinates. Start (-1.2, 1, -1.2, 1, ...) as in MGH; minimiser
/// (1, ..., 1), minimum 0. The Hessian is tridiagonal, so the product costs O(n).
template <class T>
class Rosenbrock {
 public:
  using Scalar = T;

  explicit Rosenbrock(Index n = 2) : n_(n) {
    HESSE_REQUIRE(n >= 2, "problems::Rosenbrock: n = " + std::to_string(n) + ": must be >= 2");
  }

  Index dimension() const { return n_; }
  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    detail::require_size("Rosenbrock::value_and_gradient", "x", x.size(), n_);
    if (g) g->setZero(n_);
    T f = 0;
    for (Index i = 0; i + 1 < n_; ++i) {
      const T valley = x[i + 1] - x[i] * x[i];
      const T offset = T(1) - x[i];
      f += T(100) * valley * valley + offset * offset;
      if (g) {
        (*g)[i] += T(-400) * x[i] * valley - T(2) * offset;
        (*g)[i + 1] += T(200) * valley;
      }
    }
    return f;
  }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    detail::require_size("Rosenbrock::hessian_vector", "x", x.size(), n_);
    detail::require_size("Rosenbrock::hessian_vector", "v", v.size(), n_);
    out.setZero(n_);
    for (Index i = 0; i + 1 < n_; ++i) {
      // Term i's 2x2 Hessian in (x_i, x_{i+1}):
      //   [1200 x_i^2 - 400 x_{i+1} + 2, -400 x_i; -400 x_i, 200].
      const T diagonal = T(1200) * x[i] * x[i] - T(400) * x[i + 1] + T(2);
      const T coupling = T(-400) * x[i];
      out[i] += diagonal * v[i] + coupling * v[i + 1];
      out[i + 1] += coupling * v[i] + T(200) * v[i + 1];
    }
  }
  void hessian(const Vector<T>& x, Matrix<T>& h) {
    detail::require_size("Rosenbrock::hessian", "x", x.size(), n_);
    h.setZero(n_, n_);
    for (Index i = 0; i + 1 < n_; ++i) {
      h(i, i) += T(1200) * x[i] * x[i] - T(400) * x[i + 1] + T(2);
      h(i, i + 1) += T(-400) * x[i];
      h(i + 1, i) += T(-400) * x[i];
      h(i + 1, i + 1) += T(200);
    }
  }

  Vector<T> standard_start() const {
    Vector<T> x(n_);
    for (Index i = 0; i < n_; ++i) x[i] = i % 2 == 0 ? T(-1.2) : T(1);
    return x;
  }
  Vector<T> known_minimizer() const { return Vector<T>::Ones(n_); }
  T known_minimum() const { return T(0); }

 private:
  Index n_;
};

/// MGH problem 13, Powell's singular function (n = 4):
///   r = (x1 + 10 x2, sqrt(5) (x3 - x4), (x2 - 2 x3)^2, sqrt(10) (x1 - x4)^2),
///   f = (x1 + 10 x2)^2 + 5 (x3 - x4)^2 + (x2 - 2 x3)^4 + 10 (x1 - x4)^4.
/// Start (3, -1, 0, 1); minimiser 0, minimum 0, where the Hessian is singular
/// (rank 2), so Newton-type methods converge only linearly there.
template <class T>
class PowellSingular {
 public:
  using Scalar = T;

  Index dimension() const { return 4; }
  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    detail::require_size("PowellSingular::value_and_gradient", "x", x.size(), 4);
    const T a = x[0] + T(10) * x[1];
    const T b = x[2] - x[3];
    const T c = x[1] - T(2) * x[2];
    const T d = x[0] - x[3];
    if (g) {
      g->resize(4);
      (*g)[0] = T(2) * a + T(40) * d * d * d;
      (*g)[1] = T(20) * a + T(4) * c * c * c;
      (*g)[2] = T(10) * b - T(8) * c * c * c;
      (*g)[3] = T(-10) * b - T(40) * d * d * d;
    }
    return a * a + T(5) * b * b + c * c * c * c + T(10) * d * d * d * d;
  }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    detail::require_size("PowellSingular::hessian_vector", "v", v.size(), 4);
    hessian(x, h_);
    out.noalias() = h_ * v;
  }
  void hessian(const Vector<T>& x, Matrix<T>& h) {
    detail::require_size("PowellSingular::hessian", "x", x.size(), 4);
    const T c2 = (x[1] - T(2) * x[2]) * (x[1] - T(2) * x[2]);
    const T d2 = (x[0] - x[3]) * (x[0] - x[3]);
    h.resize(4, 4);
    h << T(2) + T(120) * d2, T(20), T(0), T(-120) * d2,
         T(20), T(200) + T(12) * c2, T(-24) * c2, T(0),
         T(0), T(-24) * c2, T(10) + T(48) * c2, T(-10),
         T(-120) * d2, T(0), T(-10), T(10) + T(120) * d2;
  }

  Vector<T> standard_start() const { return (Vector<T>(4) << T(3), T(-1), T(0), T(1)).finished(); }
  Vector<T> known_minimizer() const { return Vector<T>::Zero(4); }
  T known_minimum() const { return T(0); }

 private:
  Matrix<T> h_;
};

/// MGH problem 14, Wood's function (n = 4):
///   f = 100 (x2 - x1^2)^2 + (1 - x1)^2 + 90 (x4 - x3^2)^2 + (1 - x3)^2
///       + 10 (x2 + x4 - 2)^2 + 0.1 (x2 - x4)^2.
/// Start (-3, -1, -3, -1); minimiser (1, 1, 1, 1), minimum 0.
template <class T>
class Wood {
 public:
  using Scalar = T;

  Index dimension() const { return 4; }
  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    detail::require_size("Wood::value_and_gradient", "x", x.size(), 4);
    const T valley1 = x[1] - x[0] * x[0];
    const T valley2 = x[3] - x[2] * x[2];
    const T sum = x[1] + x[3] - T(2);
    const T difference = x[1] - x[3];
    if (g) {
      g->resize(4);
      (*g)[0] = T(-400) * x[0] * valley1 - T(2) * (T(1) - x[0]);
      (*g)[1] = T(200) * valley1 + T(20) * sum + T(0.2) * difference;
      (*g)[2] = T(-360) * x[2] * valley2 - T(2) * (T(1) - x[2]);
      (*g)[3] = T(180) * valley2 + T(20) * sum - T(0.2) * difference;
    }
    return T(100) * valley1 * valley1 + (T(1) - x[0]) * (T(1) - x[0]) + T(90) * valley2 * valley2 +
           (T(1) - x[2]) * (T(1) - x[2]) + T(10) * sum * sum + T(0.1) * difference * difference;
  }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    detail::require_size("Wood::hessian_vector", "v", v.size(), 4);
    hessian(x, h_);
    out.noalias() = h_ * v;
  }
  void hessian(const Vector<T>& x, Matrix<T>& h) {
    detail::require_size("Wood::hessian", "x", x.size(), 4);
    h.resize(4, 4);
    h << T(1200) * x[0] * x[0] - T(400) * x[1] + T(2), T(-400) * x[0], T(0), T(0),
         T(-400) * x[0], T(220.2), T(0), T(19.8),
         T(0), T(0), T(1080) * x[2] * x[2] - T(360) * x[3] + T(2), T(-360) * x[2],
         T(0), T(19.8), T(-360) * x[2], T(200.2);
  }

  Vector<T> standard_start() const { return (Vector<T>(4) << T(-3), T(-1), T(-3), T(-1)).finished(); }
  Vector<T> known_minimizer() const { return Vector<T>::Ones(4); }
  T known_minimum() const { return T(0); }

 private:
  Matrix<T> h_;
};

/// MGH problem 5, Beale's function (n = 2):
///   r_i = y_i - x1 (1 - x2^i),  i = 1, 2, 3,  y = (1.5, 2.25, 2.625).
/// Start (1, 1); minimiser (3, 0.5), minimum 0.
template <class T>
class Beale {
 public:
  using Scalar = T;

  Index dimension() const { return 2; }
  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    detail::require_size("Beale::value_and_gradient", "x", x.size(), 2);
    if (g) g->setZero(2);
    T f = 0;
    T power = 1;  // x2^(i-1)
    for (int i = 1; i <= 3; ++i) {
      const T residual = kTargets[i - 1] - x[0] * (T(1) - power * x[1]);
      // grad r_i = (-(1 - x2^i), i x1 x2^(i-1))
      if (g) {
        (*g)[0] += T(2) * residual * (power * x[1] - T(1));
        (*g)[1] += T(2) * residual * T(i) * x[0] * power;
      }
      f += residual * residual;
      power *= x[1];
    }
    return f;
  }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    detail::require_size("Beale::hessian_vector", "v", v.size(), 2);
    hessian(x, h_);
    out.noalias() = h_ * v;
  }
  void hessian(const Vector<T>& x, Matrix<T>& h) {
    detail::require_size("Beale::hessian", "x", x.size(), 2);
    h.setZero(2, 2);
    T power = 1;           // x2^(i-1)
    T previous_power = 0;  // x2^(i-2), 0 for i = 1 where the term vanishes
    for (int i = 1; i <= 3; ++i) {
      const T residual = kTargets[i - 1] - x[0] * (T(1) - power * x[1]);
      const T d0 = power * x[1] - T(1);
      const T d1 = T(i) * x[0] * power;
      // Hess r_i = [0, i x2^(i-1); i x2^(i-1), i (i-1) x1 x2^(i-2)]
      const T cross = T(i) * power;
      const T curvature = T(i) * T(i - 1) * x[0] * previous_power;
      h(0, 0) += T(2) * d0 * d0;
      h(0, 1) += T(2) * (d0 * d1 + residual * cross);
      h(1, 1) += T(2) * (d1 * d1 + residual * curvature);
      previous_power = power;
      power *= x[1];
    }
    h(1, 0) = h(0, 1);
  }

  Vector<T> standard_start() const { return Vector<T>::Ones(2); }
  Vector<T> known_minimizer() const { return (Vector<T>(2) << T(3), T(0.5)).finished(); }
  T known_minimum() const { return T(0); }

 private:
  static constexpr T kTargets[3] = {T(1.5), T(2.25), T(2.625)};
  Matrix<T> h_;
};

/// MGH problem 4, Brown's badly scaled function (n = 2):
///   r = (x1 - 1e6, x2 - 2e-6, x1 x2 - 2).
/// Start (1, 1); minimiser (1e6, 2e-6), minimum 0. The two coordinates of the
/// minimiser differ by twelve orders of magnitude.
template <class T>
class BrownBadlyScaled {
 public:
  using Scalar = T;

  Index dimension() const { return 2; }
  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    detail::require_size("BrownBadlyScaled::value_and_gradient", "x", x.size(), 2);
    const T r1 = x[0] - T(1e6);
    const T r2 = x[1] - T(2e-6);
    const T r3 = x[0] * x[1] - T(2);
    if (g) {
      g->resize(2);
      (*g)[0] = T(2) * r1 + T(2) * r3 * x[1];
      (*g)[1] = T(2) * r2 + T(2) * r3 * x[0];
    }
    return r1 * r1 + r2 * r2 + r3 * r3;
  }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    detail::require_size("BrownBadlyScaled::hessian_vector", "v", v.size(), 2);
    hessian(x, h_);
    out.noalias() = h_ * v;
  }
  void hessian(const Vector<T>& x, Matrix<T>& h) {
    detail::require_size("BrownBadlyScaled::hessian", "x", x.size(), 2);
    const T cross = T(4) * x[0] * x[1] - T(4);  // 2 r3 + 2 x1 x2
    h.resize(2, 2);
    h << T(2) + T(2) * x[1] * x[1], cross, cross, T(2) + T(2) * x[0] * x[0];
  }

  Vector<T> standard_start() const { return Vector<T>::Ones(2); }
  Vector<T> known_minimizer() const { return (Vector<T>(2) << T(1e6), T(2e-6)).finished(); }
  T known_minimum() const { return T(0); }

 private:
  Matrix<T> h_;
};

/// A strict saddle (not from MGH): f(x, y) = x^4/4 - x^2/2 + y^2/2, with
/// gradient (x^3 - x, y) and Hessian diag(3x^2 - 1, 1). The origin is a
/// strict saddle (eigenvalues -1 and 1); the minimisers are (+-1, 0), minimum
/// -1/4. From the start (0, 0.5), on the saddle's stable manifold x = 0, the
/// pure Newton step is (0, -y): it lands on the saddle in one step and stays,
/// while a method that uses the negative curvature along x leaves the line
/// and reaches a minimiser. known_minimizer() returns (1, 0); by symmetry
/// (-1, 0) is an equally good answer.
template <class T>
class StrictSaddle {
 public:
  using Scalar = T;

  Index dimension() const { return 2; }
  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) {
    detail::require_size("StrictSaddle::value_and_gradient", "x", x.size(), 2);
    const T s = x[0] * x[0];
    if (g) {
      g->resize(2);
      (*g)[0] = x[0] * (s - T(1));
      (*g)[1] = x[1];
    }
    return T(0.25) * s * s - T(0.5) * s + T(0.5) * x[1] * x[1];
  }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    detail::require_size("StrictSaddle::hessian_vector", "x", x.size(), 2);
    detail::require_size("StrictSaddle::hessian_vector", "v", v.size(), 2);
    out.resize(2);
    out[0] = (T(3) * x[0] * x[0] - T(1)) * v[0];
    out[1] = v[1];
  }
  void hessian(const Vector<T>& x, Matrix<T>& h) {
    detail::require_size("StrictSaddle::hessian", "x", x.size(), 2);
    h.setZero(2, 2);
    h(0, 0) = T(3) * x[0] * x[0] - T(1);
    h(1, 1) = T(1);
  }

  Vector<T> standard_start() const { return (Vector<T>(2) << T(0), T(0.5)).finished(); }
  /// The saddle point (0, 0), where the gradient vanishes too.
  Vector<T> saddle_point() const { return Vector<T>::Zero(2); }
  Vector<T> known_minimizer() const { return (Vector<T>(2) << T(1), T(0)).finished(); }
  T known_minimum() const { return T(-0.25); }
};

extern template class Quadratic<float>;
extern template class Quadratic<double>;
extern template class OneDimensionalSquare<float>;
extern template class OneDimensionalSquare<double>;
extern template class Rosenbrock<float>;
extern template class Rosenbrock<double>;
extern template class PowellSingular<float>;
extern template class PowellSingular<double>;
extern template class Wood<float>;
extern template class Wood<double>;
extern template class Beale<float>;
extern template class Beale<double>;
extern template class BrownBadlyScaled<float>;
extern template class BrownBadlyScaled<double>;
extern template class StrictSaddle<float>;
extern template class StrictSaddle<double>;

}  // namespace hesse::problems
