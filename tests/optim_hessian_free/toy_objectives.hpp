// Small objectives with known answers for the Hessian-free family's tests,
// written against the virtual StochasticObjective so that each can misbehave
// in one chosen way (a curvature model that is wrong, a concave direction,
// NaN where asked) and so that none allocates after its first call.
#pragma once

#include <cmath>
#include <functional>
#include <limits>
#include <span>
#include <vector>

#include "hesse/core/rng.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::testing {

/// f_S(x) = (1/|S|) sum_{i in S} 1/2 (a_i^T x - b_i)^2 + mu/2 |x|^2 with b = A^T x_star,
/// so x_star is the minimiser of every batch when mu = 0. A: [d, N].
/// Gauss-Newton and Hessian products are both exact: (1/|S|) sum a_i a_i^T v + mu v.
class SampleQuadratic final : public optim::StochasticObjective<double> {
 public:
  SampleQuadratic(Index dimension, Index samples, std::uint64_t seed, double mu = 0)
      : a_(dimension, samples), b_(samples), x_star_(dimension), mu_(mu) {
    Rng rng(seed);
    Vector<double> column(dimension);
    for (Index i = 0; i < samples; ++i) {
      fill_normal<double>(rng, column);
      a_.col(i) = column;
    }
    fill_normal<double>(rng, x_star_);
    b_ = a_.transpose() * x_star_;
    selected_.reserve(static_cast<std::size_t>(samples));
    for (Index i = 0; i < samples; ++i) selected_.push_back(i);
  }

  Index dimension() const override { return a_.rows(); }
  Index num_samples() const override { return a_.cols(); }
  void select_batch(std::span<const Index> indices) override {
    selected_.assign(indices.begin(), indices.end());
  }
  void select_all() override {
    selected_.resize(static_cast<std::size_t>(a_.cols()));
    for (Index i = 0; i < a_.cols(); ++i) selected_[static_cast<std::size_t>(i)] = i;
  }
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) override {
    if (g) *g = mu_ * x;
    double value = 0.5 * mu_ * x.squaredNorm();
    const double scale = 1.0 / static_cast<double>(selected_.size());
    for (const Index i : selected_) {
      const double r = a_.col(i).dot(x) - b_[i];
      value += scale * 0.5 * r * r;
      if (g) g->noalias() += (scale * r) * a_.col(i);
    }
    return value;
  }
  bool has_hessian_vector() const override { return true; }
  void hessian_vector(const Vector<double>&, const Vector<double>& v,
                      Vector<double>& out) override {
    out = mu_ * v;
    const double scale = 1.0 / static_cast<double>(selected_.size());
    for (const Index i : selected_) out.noalias() += (scale * a_.col(i).dot(v)) * a_.col(i);
  }
  bool has_gauss_newton_vector() const override { return true; }
  void gauss_newton_vector(const Vector<double>& x, const Vector<double>& v,
                           Vector<double>& out) override {
    hessian_vector(x, v, out);
  }

  const Vector<double>& minimizer() const { return x_star_; }

 private:
  Matrix<double> a_;
  Vector<double> b_, x_star_;
  double mu_;
  std::vector<Index> selected_;
};

/// An objective given by functions: value_and_gradient(x, g) and a curvature
/// product used for both Hessian and Gauss-Newton calls. `samples` samples,
/// every batch the same function.
class FunctionObjective final : public optim::StochasticObjective<double> {
 public:
  using ValueAndGradient = std::function<double(const Vector<double>&, Vector<double>*)>;
  using Product = std::function<void(const Vector<double>&, const Vector<double>&, Vector<double>&)>;

  FunctionObjective(Index dimension, ValueAndGradient value_and_gradient, Product product,
                    Index samples = 8)
      : dimension_(dimension), samples_(samples), value_and_gradient_(std::move(value_and_gradient)),
        product_(std::move(product)) {}

  Index dimension() const override { return dimension_; }
  Index num_samples() const override { return samples_; }
  void select_batch(std::span<const Index>) override {}
  void select_all() override {}
  double value_and_gradient(const Vector<double>& x, Vector<double>* g) override {
    return value_and_gradient_(x, g);
  }
  bool has_hessian_vector() const override { return true; }
  void hessian_vector(const Vector<double>& x, const Vector<double>& v,
                      Vector<double>& out) override {
    product_(x, v, out);
  }
  bool has_gauss_newton_vector() const override { return true; }
  void gauss_newton_vector(const Vector<double>& x, const Vector<double>& v,
                           Vector<double>& out) override {
    product_(x, v, out);
  }

 private:
  Index dimension_, samples_;
  ValueAndGradient value_and_gradient_;
  Product product_;
};

/// f(x) = 1/2 |x|^2 + c/4 |x|^4 whose curvature product reports only the
/// quadratic part, v: far from 0 the model underestimates the curvature, the
/// model step overshoots and the reduction ratio is small.
inline FunctionObjective underestimated_quartic(Index dimension, double c) {
  return FunctionObjective(
      dimension,
      [c](const Vector<double>& x, Vector<double>* g) {
        const double r2 = x.squaredNorm();
        if (g) *g = (1 + c * r2) * x;
        return 0.5 * r2 + 0.25 * c * r2 * r2;
      },
      [](const Vector<double>&, const Vector<double>& v, Vector<double>& out) { out = v; });
}

/// f(x) = 1/2 x^T diag(h) x - 1^T x with exact products.
inline FunctionObjective diagonal_quadratic(const Vector<double>& h) {
  return FunctionObjective(
      h.size(),
      [h](const Vector<double>& x, Vector<double>* g) {
        if (g) *g = h.cwiseProduct(x) - Vector<double>::Ones(x.size());
        return 0.5 * x.dot(h.cwiseProduct(x)) - x.sum();
      },
      [h](const Vector<double>&, const Vector<double>& v, Vector<double>& out) {
        out = h.cwiseProduct(v);
      });
}

}  // namespace hesse::testing
