// Multinomial (softmax) regression with K = num_classes classes as an
// objective of theta = [vec(W) (K d); b (K, with fit_intercept)], where W is
// [K, d] flattened column-major (W(k, j) is theta[k + K j]):
//
//   L(theta) = 1/m sum_i (logsumexp(z_i) - z_i[y_i]) + l2/2 |W|_F^2,
//   z_i = W x_i + b  [K],   y_i in {0, .., K-1}
//
// over the m selected samples (all n, or a mini-batch: the batch mean
// estimates the full mean); logsumexp subtracts the column maximum first.
// With Z = W X + b 1^T [K, m], P = softmax(Z) columnwise and Y the one-hot
// labels:
//
//   gradient         W: (P - Y) X^T / m + l2 W,       b: (P - Y) 1 / m
//   Hessian-vector   Zdot = V_W X + v_b 1^T,  Rdot_i = p_i o zdot_i - p_i (p_i . zdot_i),
//                    W: Rdot X^T / m + l2 V_W,         b: Rdot 1 / m
//
// The Gauss-Newton matrix equals the Hessian: softmax cross-entropy is the
// canonical link of a linear model (Schraudolph 2002, section 3). Without
// l2 the Hessian is singular along theta -> theta + (c 1^T, c) for c in R^d+1
// (adding the same vector to every class changes nothing).
#pragma once

#include <span>

#include "hesse/core/types.hpp"
#include "hesse/data/dataset.hpp"
#include "hesse/models/design_matrix.hpp"

namespace hesse::models {

struct SoftmaxRegressionOptions {
  double l2 = 1e-4;           ///< ridge penalty l2/2 |W|_F^2 (the intercepts are not penalised)
  bool fit_intercept = true;  ///< add intercepts b [K] after vec(W)

  /// Throws hesse::InvalidArgument naming the field, its value and the rule.
  void validate() const;
};

template <class T>
class SoftmaxRegression {
 public:
  using Scalar = T;

  /// Keeps a pointer to `data`, which must outlive the objective and stay
  /// unchanged. Throws hesse::InvalidArgument on invalid options or data:
  /// num_classes >= 2, targets one row of integer labels in [0, num_classes).
  explicit SoftmaxRegression(const data::Dataset<T>& data, SoftmaxRegressionOptions options = {});
  SoftmaxRegression(const data::Dataset<T>&&, SoftmaxRegressionOptions = {}) = delete;

  /// K d + K with intercepts, else K d.
  Index dimension() const { return num_classes_ * (design_.num_features() + (options_.fit_intercept ? 1 : 0)); }
  Index num_classes() const { return num_classes_; }
  const SoftmaxRegressionOptions& options() const { return options_; }

  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* gradient);
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out);
  /// Equals hessian_vector (see the top of this file).
  void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    hessian_vector(x, v, out);
  }
  void hessian(const Vector<T>& x, Matrix<T>& out);

  Index num_samples() const { return design_.num_samples(); }
  void select_batch(std::span<const Index> indices) { design_.select_batch(indices); }
  void select_all() { design_.select_all(); }

 private:
  /// probabilities_ = softmax of logits_ (columnwise, in place); returns the
  /// summed cross-entropy of the selected labels.
  T softmax_in_place();
  /// out (size dimension()) = [vec(R X^T) / m + l2 vec(W_reg); R 1 / m] for R [K, m].
  void back_project(const Matrix<T>& r, const Vector<T>& regularised, Vector<T>& out);

  DesignMatrix<T> design_;
  SoftmaxRegressionOptions options_;
  Index num_classes_;
  Matrix<T> logits_;     // Z, then P in place  [K, m]
  Matrix<T> stacked_;    // [W; V_W]  [2K, d]
  Matrix<T> pair_;       // [Z; Zdot]  [2K, m]
  Matrix<T> direction_;  // Rdot  [K, m]
  Vector<T> weights_;    // A_i(k, l) / m over the samples  [m]
  Matrix<T> block_;      // X diag(weights_) X^T  [d, d]
};

extern template class SoftmaxRegression<float>;
extern template class SoftmaxRegression<double>;

}  // namespace hesse::models
