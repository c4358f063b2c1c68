#include "hesse/models/linear_least_squares.hpp"

#include <cmath>
#include <string>

#include "hesse/core/error.hpp"

namespace hesse::models {

void LinearLeastSquaresOptions::validate() const {
  require_penalty("LinearLeastSquaresOptions::l2", l2);
}

template <class T>
LinearLeastSquares<T>::LinearLeastSquares(const data::Dataset<T>& data, LinearLeastSquaresOptions options)
    : design_(data, "LinearLeastSquares"), options_(options) {
  options_.validate();
  HESSE_REQUIRE(data.targets.rows() == 1,
                "LinearLeastSquares: targets must have 1 row (one regression output), got " +
                    std::to_string(data.targets.rows()));
}

template <class T>
T LinearLeastSquares<T>::batch_scale() const {
  return static_cast<T>(design_.num_samples()) / static_cast<T>(design_.num_selected());
}

template <class T>
void LinearLeastSquares<T>::add_ridge(const Vector<T>& w, Vector<T>& out) const {
  if (options_.l2 == 0) return;
  const Index d = design_.num_features();
  out.head(d) += static_cast<T>(options_.l2) * w.head(d);
}

template <class T>
T LinearLeastSquares<T>::value_and_gradient(const Vector<T>& x, Vector<T>* gradient) {
  require_parameter_size("LinearLeastSquares::value_and_gradient", "x", x.size(), dimension());
  const Index d = design_.num_features();
  const T scale = batch_scale();
  design_.linear_predictor(x, options_.fit_intercept, residual_);
  residual_ -= design_.targets();
  const T value = scale * T(0.5) * residual_.squaredNorm() +
                  static_cast<T>(options_.l2) * T(0.5) * x.head(d).squaredNorm();
  if (gradient) {
    design_.linear_predictor_transpose(residual_, scale, options_.fit_intercept, *gradient);
    add_ridge(x, *gradient);
  }
  return value;
}

template <class T>
void LinearLeastSquares<T>::hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
  require_parameter_size("LinearLeastSquares::hessian_vector", "x", x.size(), dimension());
  require_parameter_size("LinearLeastSquares::hessian_vector", "v", v.size(), dimension());
  // H v = s J^T J v + l2 [v_w; 0] with J = [X^T, 1]; H does not depend on x.
  design_.linear_predictor(v, options_.fit_intercept, projection_);
  design_.linear_predictor_transpose(projection_, batch_scale(), options_.fit_intercept, out);
  add_ridge(v, out);
}

template <class T>
void LinearLeastSquares<T>::residuals(const Vector<T>& x, Vector<T>& r) {
  require_parameter_size("LinearLeastSquares::residuals", "x", x.size(), dimension());
  const Index m = design_.num_selected();
  const Index d = design_.num_features();
  design_.linear_predictor(x, options_.fit_intercept, residual_);
  r.resize(num_residuals());
  r.head(m) = std::sqrt(batch_scale()) * (residual_ - design_.targets());
  if (options_.l2 > 0) r.tail(d) = static_cast<T>(std::sqrt(options_.l2)) * x.head(d);
}

template <class T>
void LinearLeastSquares<T>::jacobian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Jv) {
  require_parameter_size("LinearLeastSquares::jacobian_vector", "x", x.size(), dimension());
  require_parameter_size("LinearLeastSquares::jacobian_vector", "v", v.size(), dimension());
  const Index m = design_.num_selected();
  const Index d = design_.num_features();
  design_.linear_predictor(v, options_.fit_intercept, projection_);
  Jv.resize(num_residuals());
  Jv.head(m) = std::sqrt(batch_scale()) * projection_;
  if (options_.l2 > 0) Jv.tail(d) = static_cast<T>(std::sqrt(options_.l2)) * v.head(d);
}

template <class T>
void LinearLeastSquares<T>::jacobian_transpose_vector(const Vector<T>& x, const Vector<T>& u,
                                                      Vector<T>& JTu) {
  require_parameter_size("LinearLeastSquares::jacobian_transpose_vector", "x", x.size(), dimension());
  require_parameter_size("LinearLeastSquares::jacobian_transpose_vector", "u", u.size(), num_residuals());
  const Index m = design_.num_selected();
  const Index d = design_.num_features();
  projection_ = u.head(m);
  design_.linear_predictor_transpose(projection_, std::sqrt(batch_scale()), options_.fit_intercept, JTu);
  if (options_.l2 > 0) JTu.head(d) += static_cast<T>(std::sqrt(options_.l2)) * u.tail(d);
}

template <class T>
void LinearLeastSquares<T>::jacobian(const Vector<T>& x, Matrix<T>& J) {
  require_parameter_size("LinearLeastSquares::jacobian", "x", x.size(), dimension());
  const Index m = design_.num_selected();
  const Index d = design_.num_features();
  J.setZero(num_residuals(), dimension());
  const T root_scale = std::sqrt(batch_scale());
  design_.visit([&](const auto& features) { J.topLeftCorner(m, d) = root_scale * Matrix<T>(features.transpose()); });
  if (options_.fit_intercept) J.col(d).head(m).setConstant(root_scale);
  if (options_.l2 > 0)
    J.bottomLeftCorner(d, d).diagonal().setConstant(static_cast<T>(std::sqrt(options_.l2)));
}

template <class T>
void LinearLeastSquares<T>::hessian(const Vector<T>& x, Matrix<T>& out) {
  require_parameter_size("LinearLeastSquares::hessian", "x", x.size(), dimension());
  ones_.setOnes(design_.num_selected());
  design_.linear_predictor_hessian(ones_, batch_scale(), options_.fit_intercept, out);
  const Index d = design_.num_features();
  out.diagonal().head(d).array() += static_cast<T>(options_.l2);
}

template class LinearLeastSquares<float>;
template class LinearLeastSquares<double>;

}  // namespace hesse::models
