// Binary L2-regularised logistic regression as an objective of
// theta = [w (d); b (1, with fit_intercept)]:
//
//   L(theta) = 1/m sum_i log(1 + exp(-s_i z_i)) + l2/2 |w|^2,
//   z_i = w^T x_i + b,   s_i = 2 y_i - 1 in {-1, +1},   y_i in {0, 1}
//
// over the m selected samples (all n, or a mini-batch: the batch mean
// estimates the full mean). Each term is evaluated as the softplus
// max(-t, 0) + log1p(exp(-|t|)) of t = s_i z_i, which neither overflows nor
// loses the small losses of well-classified samples. With p = sigmoid(z):
//
//   gradient   [X (p - y) / m + l2 w;  1^T (p - y) / m]
//   Hessian    J^T diag(p (1 - p)) J / m + l2 diag(1, .., 1, 0),   J = [X^T, 1]
//
// The Gauss-Newton matrix equals the Hessian: the logistic loss is the
// canonical link of a linear model, so the term with the model's second
// derivative vanishes (Schraudolph 2002, section 3).
//
// scikit-learn's LogisticRegression(C=C, penalty="l2") minimises
// C sum_i log(1 + exp(-s_i z_i)) + 1/2 |w|^2, which is n C times L with
// l2 = 1 / (n C): the same minimiser. Its intercept is likewise unpenalised
// (solver="lbfgs").
#pragma once

#include <span>

#include "hesse/core/types.hpp"
#include "hesse/data/dataset.hpp"
#include "hesse/models/design_matrix.hpp"

namespace hesse::models {

struct LogisticRegressionOptions {
  /// Ridge penalty l2/2 |w|^2 (the intercept is not penalised). The default
  /// keeps the minimiser finite on separable data while barely biasing it;
  /// l2 = 1/(n C) reproduces scikit-learn's C.
  double l2 = 1e-4;
  bool fit_intercept = true;  ///< add an intercept b as the last parameter

  /// Throws hesse::InvalidArgument naming the field, its value and the rule.
  void validate() const;
};

template <class T>
class LogisticRegression {
 public:
  using Scalar = T;

  /// Keeps a pointer to `data`, which must outlive the objective and stay
  /// unchanged. Throws hesse::InvalidArgument on invalid options or data:
  /// num_classes must be 2, targets one row of labels 0 or 1.
  explicit LogisticRegression(const data::Dataset<T>& data, LogisticRegressionOptions options = {});
  LogisticRegression(const data::Dataset<T>&&, LogisticRegressionOptions = {}) = delete;

  /// d + 1 with an intercept, else d.
  Index dimension() const { return design_.num_features() + (options_.fit_intercept ? 1 : 0); }
  const LogisticRegressionOptions& options() const { return options_; }

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
  /// curvature_[i] = p_i (1 - p_i) for the predictors z.
  void compute_curvature(const Eigen::Ref<const Vector<T>>& z);
  /// out += l2 [w; 0].
  void add_ridge(const Vector<T>& w, Vector<T>& out) const;

  DesignMatrix<T> design_;
  LogisticRegressionOptions options_;
  Vector<T> scores_;     // z  [m]
  Vector<T> residual_;   // p - y  [m]
  Vector<T> curvature_;  // p (1 - p)  [m]
  Matrix<T> pair_;       // [z, X^T v_w + v_b]  [m, 2]
};

extern template class LogisticRegression<float>;
extern template class LogisticRegression<double>;

}  // namespace hesse::models
