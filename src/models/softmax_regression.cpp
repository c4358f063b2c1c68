#include "hesse/models/softmax_regression.hpp"

#include <cmath>
#include <string>

#include "hesse/core/error.hpp"

namespace hesse::models {

void SoftmaxRegressionOptions::validate() const {
  require_penalty("SoftmaxRegressionOptions::l2", l2);
}

template <class T>
SoftmaxRegression<T>::SoftmaxRegression(const data::Dataset<T>& data, SoftmaxRegressionOptions options)
    : design_(data, "SoftmaxRegression"), options_(options), num_classes_(data.num_classes) {
  options_.validate();
  HESSE_REQUIRE(data.num_classes >= 2,
                "SoftmaxRegression: needs a classification data set with num_classes >= 2, got "
                "num_classes = " + std::to_string(data.num_classes));
  HESSE_REQUIRE(data.targets.rows() == 1,
                "SoftmaxRegression: targets must have 1 row of labels, got " +
                    std::to_string(data.targets.rows()));
  for (Index i = 0; i < data.targets.cols(); ++i) {
    const T label = data.targets(0, i);
    HESSE_REQUIRE(label >= T(0) && label < static_cast<T>(num_classes_) && label == std::floor(label),
                  "SoftmaxRegression: label of sample " + std::to_string(i) + " is " +
                      std::to_string(static_cast<double>(label)) + ", expected an integer in [0, " +
                      std::to_string(num_classes_) + ")");
  }
}

template <class T>
T SoftmaxRegression<T>::softmax_in_place() {
  const Vector<T>& y = design_.targets();
  T loss = 0;
  for (Index i = 0; i < logits_.cols(); ++i) {
    auto z = logits_.col(i);
    const T shift = z.maxCoeff();
    const T label_logit = z[static_cast<Index>(y[i])] - shift;
    z.array() = (z.array() - shift).exp();
    const T sum = z.sum();  // >= 1: the maximum contributes exp(0)
    loss += std::log(sum) - label_logit;
    z /= sum;
  }
  return loss;
}

template <class T>
void SoftmaxRegression<T>::back_project(const Matrix<T>& r, const Vector<T>& regularised, Vector<T>& out) {
  const Index k = num_classes_;
  const Index d = design_.num_features();
  const T inv_m = T(1) / static_cast<T>(design_.num_selected());
  out.resize(dimension());
  MatrixMap<T> out_w(out.data(), k, d);
  design_.visit([&](const auto& x) { out_w.noalias() = inv_m * (r * x.transpose()); });
  if (options_.l2 != 0)
    out_w += static_cast<T>(options_.l2) * ConstMatrixMap<T>(regularised.data(), k, d);
  if (options_.fit_intercept) out.segment(k * d, k).noalias() = inv_m * r.rowwise().sum();
}

template <class T>
T SoftmaxRegression<T>::value_and_gradient(const Vector<T>& x, Vector<T>* gradient) {
  require_parameter_size("SoftmaxRegression::value_and_gradient", "x", x.size(), dimension());
  const Index k = num_classes_;
  const Index d = design_.num_features();
  const Index m = design_.num_selected();
  const ConstMatrixMap<T> w(x.data(), k, d);
  logits_.resize(k, m);
  design_.visit([&](const auto& features) { logits_.noalias() = w * features; });
  if (options_.fit_intercept) logits_.colwise() += x.segment(k * d, k);
  const T loss = softmax_in_place();
  const T value = loss / static_cast<T>(m) + static_cast<T>(options_.l2) * T(0.5) * w.squaredNorm();
  if (gradient) {
    // R = P - Y, the derivative of the summed cross-entropy by the logits.
    const Vector<T>& y = design_.targets();
    for (Index i = 0; i < m; ++i) logits_(static_cast<Index>(y[i]), i) -= T(1);
    back_project(logits_, x, *gradient);
  }
  return value;
}

template <class T>
void SoftmaxRegression<T>::hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
  require_parameter_size("SoftmaxRegression::hessian_vector", "x", x.size(), dimension());
  require_parameter_size("SoftmaxRegression::hessian_vector", "v", v.size(), dimension());
  const Index k = num_classes_;
  const Index d = design_.num_features();
  const Index m = design_.num_selected();
  // Z = W X and Zdot = V_W X in one product with X.
  stacked_.resize(2 * k, d);
  stacked_.topRows(k) = ConstMatrixMap<T>(x.data(), k, d);
  stacked_.bottomRows(k) = ConstMatrixMap<T>(v.data(), k, d);
  pair_.resize(2 * k, m);
  design_.visit([&](const auto& features) { pair_.noalias() = stacked_ * features; });
  logits_ = pair_.topRows(k);
  direction_ = pair_.bottomRows(k);
  if (options_.fit_intercept) {
    logits_.colwise() += x.segment(k * d, k);
    direction_.colwise() += v.segment(k * d, k);
  }
  softmax_in_place();
  // The logits' Hessian of sample i is diag(p_i) - p_i p_i^T.
  for (Index i = 0; i < m; ++i) {
    const T mean = logits_.col(i).dot(direction_.col(i));
    direction_.col(i).array() = logits_.col(i).array() * (direction_.col(i).array() - mean);
  }
  back_project(direction_, v, out);
}

template <class T>
void SoftmaxRegression<T>::hessian(const Vector<T>& x, Matrix<T>& out) {
  require_parameter_size("SoftmaxRegression::hessian", "x", x.size(), dimension());
  const Index k = num_classes_;
  const Index d = design_.num_features();
  const Index m = design_.num_selected();
  const Index n = dimension();
  const ConstMatrixMap<T> w(x.data(), k, d);
  logits_.resize(k, m);
  design_.visit([&](const auto& features) { logits_.noalias() = w * features; });
  if (options_.fit_intercept) logits_.colwise() += x.segment(k * d, k);
  softmax_in_place();

  // Entry (k, j), (l, j') of the W-W part is sum_i A_i(k, l) x_ij x_ij' / m
  // with A_i = diag(p_i) - p_i p_i^T: block (k, l) is X diag(A(k, l, :)/m) X^T,
  // scattered with stride K because vec(W) is column-major.
  using Strided = Eigen::Map<Matrix<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
  auto strided = [&](Index row, Index col, Index rows, Index cols, Index row_step, Index col_step) {
    return Strided(out.data() + row + col * n, rows, cols,
                   Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(col_step * n, row_step));
  };
  out.setZero(n, n);
  Vector<T> bias_column;
  for (Index a = 0; a < k; ++a) {
    for (Index b = a; b < k; ++b) {
      weights_ = -(logits_.row(a).array() * logits_.row(b).array()).transpose() / static_cast<T>(m);
      if (a == b) weights_ += logits_.row(a).transpose() / static_cast<T>(m);
      design_.weighted_gram(weights_, block_);
      strided(a, b, d, d, k, k) = block_;
      if (a != b) strided(b, a, d, d, k, k) = block_;
      if (!options_.fit_intercept) continue;
      // Bias rows: d2L / db_a dW(b, j') = (X weights)_j', and likewise with a, b swapped.
      design_.visit([&](const auto& features) { bias_column.noalias() = features * weights_; });
      const Index bias = k * d;
      strided(bias + a, b, 1, d, 1, k) = bias_column.transpose();
      strided(b, bias + a, d, 1, k, 1) = bias_column;
      strided(bias + b, a, 1, d, 1, k) = bias_column.transpose();
      strided(a, bias + b, d, 1, k, 1) = bias_column;
      out(bias + a, bias + b) = out(bias + b, bias + a) = weights_.sum();
    }
  }
  out.diagonal().head(k * d).array() += static_cast<T>(options_.l2);
}

template class SoftmaxRegression<float>;
template class SoftmaxRegression<double>;

}  // namespace hesse::models
