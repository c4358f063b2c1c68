// Linear least squares as an objective of theta = [w (d); b (1, with fit_intercept)]:
//
//   L(theta) = 1/2 sum_i (w^T x_i + b - y_i)^2 + l2/2 |w|^2
//
// Regression targets: y_i is row 0 of the data set's targets. The data term
// is a sum over samples; on a mini-batch B it is multiplied by n/|B|, an
// unbiased estimate of the full sum. With X [d, m] the selected samples,
// r = X^T w + b 1 - y and s = n/m:
//
//   gradient   [s X r + l2 w;  s 1^T r]
//   Hessian    s [X X^T, X 1; 1^T X^T, m] + l2 diag(1, .., 1, 0)   (independent of theta)
//
// The Gauss-Newton matrix of a linear model equals its Hessian exactly.
#pragma once

#include <span>

#include "hesse/core/types.hpp"
#include "hesse/data/dataset.hpp"
#include "hesse/models/design_matrix.hpp"

namespace hesse::models {

struct LinearLeastSquaresOptions {
  double l2 = 0;               ///< ridge penalty l2/2 |w|^2 (the intercept is not penalised)
  bool fit_intercept = false;  ///< add an intercept b as the last parameter

  /// Throws hesse::InvalidArgument naming the field, its value and the rule.
  void validate() const;
};

template <class T>
class LinearLeastSquares {
 public:
  using Scalar = T;

  /// Keeps a pointer to `data`, which must outlive the objective and stay
  /// unchanged. Throws hesse::InvalidArgument on invalid options or data
  /// (no features, targets not one row, sizes that disagree).
  explicit LinearLeastSquares(const data::Dataset<T>& data, LinearLeastSquaresOptions options = {});
  LinearLeastSquares(const data::Dataset<T>&&, LinearLeastSquaresOptions = {}) = delete;

  /// d + 1 with an intercept, else d.
  Index dimension() const { return design_.num_features() + (options_.fit_intercept ? 1 : 0); }
  const LinearLeastSquaresOptions& options() const { return options_; }

  T value(const Vector<T>& x) { return value_and_gradient(x, nullptr); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* gradient);
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out);
  /// Equals hessian_vector: for a linear model G = H.
  void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
    hessian_vector(x, v, out);
  }
  void hessian(const Vector<T>& x, Matrix<T>& out);

  Index num_samples() const { return design_.num_samples(); }
  void select_batch(std::span<const Index> indices) { design_.select_batch(indices); }
  void select_all() { design_.select_all(); }

  // The same objective as residuals, L = 1/2 |r|^2, for Gauss-Newton and
  // Levenberg-Marquardt (hesse/objective/residual.hpp):
  //   r = [sqrt(s) (X^T w + b - y); sqrt(l2) w]    (the ridge rows only when l2 > 0)
  // with s the batch scale n / m.
  Index num_residuals() const {
    return design_.num_selected() + (options_.l2 > 0 ? design_.num_features() : 0);
  }
  void residuals(const Vector<T>& x, Vector<T>& r);
  void jacobian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Jv);
  void jacobian_transpose_vector(const Vector<T>& x, const Vector<T>& u, Vector<T>& JTu);
  void jacobian(const Vector<T>& x, Matrix<T>& J);

 private:
  /// n / m, the factor that turns the batch sum into an estimate of the full sum.
  T batch_scale() const;
  /// out += l2 [w; 0]: the ridge term's contribution to a gradient or product.
  void add_ridge(const Vector<T>& w, Vector<T>& out) const;

  DesignMatrix<T> design_;
  LinearLeastSquaresOptions options_;
  Vector<T> residual_;    // r = X^T w + b - y  [m]
  Vector<T> projection_;  // X^T v_w + v_b      [m]
  Vector<T> ones_;        // [m], the Hessian's weights
};

extern template class LinearLeastSquares<float>;
extern template class LinearLeastSquares<double>;

}  // namespace hesse::models
