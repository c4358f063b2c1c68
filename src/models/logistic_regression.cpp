#include "hesse/models/logistic_regression.hpp"

#include <cmath>
#include <string>

#include "hesse/core/error.hpp"

namespace hesse::models {

void LogisticRegressionOptions::validate() const {
  require_penalty("LogisticRegressionOptions::l2", l2);
}

template <class T>
LogisticRegression<T>::LogisticRegression(const data::Dataset<T>& data, LogisticRegressionOptions options)
    : design_(data, "LogisticRegression"), options_(options) {
  options_.validate();
  HESSE_REQUIRE(data.num_classes == 2,
                "LogisticRegression: needs a binary data set (num_classes = 2), got num_classes = " +
                    std::to_string(data.num_classes) + "; use SoftmaxRegression for more classes");
  HESSE_REQUIRE(data.targets.rows() == 1,
                "LogisticRegression: targets must have 1 row of labels, got " +
                    std::to_string(data.targets.rows()));
  for (Index i = 0; i < data.targets.cols(); ++i) {
    const T label = data.targets(0, i);
    HESSE_REQUIRE(label == T(0) || label == T(1),
                  "LogisticRegression: label of sample " + std::to_string(i) + " is " +
                      std::to_string(static_cast<double>(label)) + ", expected 0 or 1");
  }
}

template <class T>
void LogisticRegression<T>::add_ridge(const Vector<T>& w, Vector<T>& out) const {
  if (options_.l2 == 0) return;
  const Index d = design_.num_features();
  out.head(d) += static_cast<T>(options_.l2) * w.head(d);
}

template <class T>
void LogisticRegression<T>::compute_curvature(const Eigen::Ref<const Vector<T>>& z) {
  // p (1 - p) = sigmoid(z) sigmoid(-z) = e / (1 + e)^2 with e = exp(-|z|) <= 1.
  curvature_.resize(z.size());
  for (Index i = 0; i < z.size(); ++i) {
    const T e = std::exp(-std::abs(z[i]));
    curvature_[i] = e / ((T(1) + e) * (T(1) + e));
  }
}

template <class T>
T LogisticRegression<T>::value_and_gradient(const Vector<T>& x, Vector<T>* gradient) {
  require_parameter_size("LogisticRegression::value_and_gradient", "x", x.size(), dimension());
  const Index d = design_.num_features();
  const Index m = design_.num_selected();
  const Vector<T>& y = design_.targets();
  design_.linear_predictor(x, options_.fit_intercept, scores_);
  residual_.resize(m);
  T loss = 0;
  for (Index i = 0; i < m; ++i) {
    const T z = scores_[i];
    const T t = (T(2) * y[i] - T(1)) * z;
    const T e = std::exp(-std::abs(z));  // shared by the loss and the sigmoid
    loss += std::max(-t, T(0)) + std::log1p(e);  // |t| = |z|
    const T p = z >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
    residual_[i] = p - y[i];
  }
  const T value = loss / static_cast<T>(m) +
                  static_cast<T>(options_.l2) * T(0.5) * x.head(d).squaredNorm();
  if (gradient) {
    design_.linear_predictor_transpose(residual_, T(1) / static_cast<T>(m), options_.fit_intercept,
                                       *gradient);
    add_ridge(x, *gradient);
  }
  return value;
}

template <class T>
void LogisticRegression<T>::hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
  require_parameter_size("LogisticRegression::hessian_vector", "x", x.size(), dimension());
  require_parameter_size("LogisticRegression::hessian_vector", "v", v.size(), dimension());
  // H v = J^T diag(p (1 - p)) J v / m + l2 [v_w; 0]; z = J x and J v come
  // from one pass over X.
  design_.linear_predictor_pair(x, v, options_.fit_intercept, pair_);
  compute_curvature(pair_.col(0));
  curvature_.array() *= pair_.col(1).array();
  design_.linear_predictor_transpose(curvature_, T(1) / static_cast<T>(design_.num_selected()),
                                     options_.fit_intercept, out);
  add_ridge(v, out);
}

template <class T>
void LogisticRegression<T>::hessian(const Vector<T>& x, Matrix<T>& out) {
  require_parameter_size("LogisticRegression::hessian", "x", x.size(), dimension());
  design_.linear_predictor(x, options_.fit_intercept, scores_);
  compute_curvature(scores_);
  design_.linear_predictor_hessian(curvature_, T(1) / static_cast<T>(design_.num_selected()),
                                   options_.fit_intercept, out);
  out.diagonal().head(design_.num_features()).array() += static_cast<T>(options_.l2);
}

template class LogisticRegression<float>;
template class LogisticRegression<double>;

}  // namespace hesse::models
