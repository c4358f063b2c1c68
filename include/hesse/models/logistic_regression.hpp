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
// Cost: value, value_and_gradient and hessian_vector each read X once. The
// selected samples are cut into cache-sized slices; per slice z = X_s^T w + b,
// the losses, p - y and p (1 - p), then the slice's gradient term X_s (p - y),
// while the slice is still in cache. Above about 1e6 entries of X (n d, or
// the stored entries of sparse features) the slices are shared by the OpenMP
// threads; each fixed chunk of slices sums into its own partial vector and the
// partials are added in chunk order, so the results do not depend on the
// thread count or on timing (bitwise). Every evaluation keeps p (1 - p) with
// the theta it belongs to: hessian_vector at that theta (what Newton-CG and
// trust-region CG do between gradients) is one pass with no exp; at another
// theta, or after select_batch / select_all, it recomputes them in the same
// single pass.
//
// Small dense sets (n d sizeof(T) <= 256 KB: breast-cancer's 569 x 30) also
// keep a sample-major copy X^T [n, d] (column-major), made once in the
// constructor and used while all samples are selected: z = X^T w is then a
// column-axpy GEMV and X r runs n-long dot products, about 1 us faster per
// evaluation at 569 x 30 than the n short (d-long) dot products of the
// feature-major layout. Mini-batches use the general pass (no copy per batch).
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
  /// Selecting samples drops the cached p (1 - p) (see the top of this file).
  void select_batch(std::span<const Index> indices) {
    curvature_valid_ = false;
    sample_major_selected_ = false;
    design_.select_batch(indices);
  }
  void select_all() {
    curvature_valid_ = false;
    design_.select_all();
    sample_major_selected_ = sample_major_.size() > 0;
  }

 private:
  /// curvature_[i] = p_i (1 - p_i) for the predictors z.
  void compute_curvature(const Eigen::Ref<const Vector<T>>& z);
  /// Marks curvature_ as belonging to theta on the current selection.
  void keep_curvature(const Vector<T>& theta);
  bool has_curvature(const Vector<T>& theta) const;
  /// out += l2 [w; 0].
  void add_ridge(const Vector<T>& w, Vector<T>& out) const;
  /// On samples [begin, begin + size): residual_ holds X^T w on entry; returns
  /// the sum of their losses at z = X^T w + b and leaves p - y in residual_
  /// and p (1 - p) in curvature_.
  T losses_and_residuals(Index begin, Index size, T b);
  /// On samples [begin, begin + size): curvature_ = p (1 - p) at
  /// z = residual_ + b (residual_ holds X^T w).
  void curvatures(Index begin, Index size, T b);

  DesignMatrix<T> design_;
  LogisticRegressionOptions options_;
  Vector<T> scores_;      // z  [m], hessian only
  Vector<T> residual_;    // z, then p - y  [m]
  Vector<T> curvature_;   // p (1 - p)  [m] at curvature_theta_
  Vector<T> projection_;  // X^T v_w + v_b, then p (1 - p) times it  [m]
  Vector<T> curvature_theta_;
  bool curvature_valid_ = false;
  Matrix<T> partials_;  // one column per chunk of slices (sample_slices.hpp)
  Vector<T> total_;     // their sum
  // X^T [n, d] of a small dense set, else empty (see the top of this file);
  // used while all samples are selected.
  Matrix<T> sample_major_;
  bool sample_major_selected_ = false;
};

extern template class LogisticRegression<float>;
extern template class LogisticRegression<double>;

}  // namespace hesse::models
