#include "hesse/models/logistic_regression.hpp"

#include <cmath>
#include <string>

#include "hesse/core/error.hpp"
#include "sample_slices.hpp"

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
  // Small dense sets: a sample-major copy for the full selection (see the
  // header), made once; the threshold is the one-slice size of sample_slices.hpp.
  if (!data.is_sparse() &&
      data.num_samples() * data.num_features() * static_cast<Index>(sizeof(T)) <= detail::kWholeBytes) {
    sample_major_ = data.features.transpose();
    sample_major_selected_ = true;
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
void LogisticRegression<T>::keep_curvature(const Vector<T>& theta) {
  curvature_theta_ = theta;
  curvature_valid_ = true;
}

template <class T>
bool LogisticRegression<T>::has_curvature(const Vector<T>& theta) const {
  return curvature_valid_ && curvature_theta_.size() == theta.size() && curvature_theta_ == theta;
}

template <class T>
T LogisticRegression<T>::losses_and_residuals(Index begin, Index size, T b) {
  // Array expressions: Eigen vectorises exp (with log1p 2.6x faster than a
  // loop of std::exp and std::log1p on 1e5 samples). log1p stays std::log1p
  // per entry: Eigen has no vectorised double log1p, and its AVX-512 float
  // one trips GCC 12's -Wuninitialized inside the intrinsics headers.
  auto za = residual_.segment(begin, size).array();
  auto e = curvature_.segment(begin, size).array();
  const auto ya = design_.targets().segment(begin, size).array();
  za += b;
  e = (-za.abs()).exp();  // shared by the loss, the sigmoid and p (1 - p)
  // log(1 + exp(-s z)) = max(-s z, 0) + log1p(exp(-|z|)), s = 2 y - 1.
  const auto log1p = [](T v) { return std::log1p(v); };
  const T loss = ((-(T(2) * ya - T(1)) * za).max(T(0)) + e.unaryExpr(log1p)).sum();
  for (Index k = 0; k < size; ++k) {  // one division per sample; GCC vectorises it
    const T inv = T(1) / (T(1) + e[k]);
    za[k] = (za[k] >= T(0) ? inv : e[k] * inv) - ya[k];  // p - y
    e[k] = e[k] * inv * inv;  // p (1 - p) without cancellation
  }
  return loss;
}

template <class T>
void LogisticRegression<T>::curvatures(Index begin, Index size, T b) {
  auto c = curvature_.segment(begin, size).array();
  c = (-(residual_.segment(begin, size).array() + b).abs()).exp();
  // p (1 - p) as losses_and_residuals forms it, so a product at a kept theta
  // equals one from scratch bit for bit.
  for (Index k = 0; k < size; ++k) {
    const T inv = T(1) / (T(1) + c[k]);
    c[k] = c[k] * inv * inv;
  }
}

template <class T>
T LogisticRegression<T>::value_and_gradient(const Vector<T>& x, Vector<T>* gradient) {
  require_parameter_size("LogisticRegression::value_and_gradient", "x", x.size(), dimension());
  const Index d = design_.num_features();
  const Index m = design_.num_selected();
  const bool intercept = options_.fit_intercept;
  const T b = intercept ? x[d] : T(0);
  residual_.resize(m);
  curvature_.resize(m);
  // Sums: [X r (d); 1^T r (with an intercept); loss], or [loss] without a
  // gradient (per chunk, then added in total_).
  const Index loss_at = gradient ? d + (intercept ? 1 : 0) : 0;
  if (sample_major_selected_) {
    // Small dense set, all samples: two GEMVs on X^T [n, d].
    if (total_.size() < loss_at + 1) total_.resize(loss_at + 1);
    residual_.noalias() = sample_major_ * x.head(d);
    total_[loss_at] = losses_and_residuals(0, m, b);
    if (gradient) {
      total_.head(d).noalias() = sample_major_.transpose() * residual_;
      if (intercept) total_[d] = residual_.sum();
    }
  } else {
    detail::for_each_slice(design_, loss_at + 1, partials_, total_,
                           [&](Index begin, Index size, const auto& xs, auto& acc) {
      auto z = residual_.segment(begin, size);
      z.noalias() = xs.transpose() * x.head(d);
      acc[loss_at] += losses_and_residuals(begin, size, b);  // z is now p - y
      if (gradient) {
        acc.head(d).noalias() += xs * z;
        if (intercept) acc[d] += z.sum();
      }
    });
  }
  keep_curvature(x);
  const T inv_m = T(1) / static_cast<T>(m);
  const T value = total_[loss_at] * inv_m + static_cast<T>(options_.l2) * T(0.5) * x.head(d).squaredNorm();
  if (gradient) {
    *gradient = total_.head(loss_at) * inv_m;
    add_ridge(x, *gradient);
  }
  return value;
}

template <class T>
void LogisticRegression<T>::hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& out) {
  require_parameter_size("LogisticRegression::hessian_vector", "x", x.size(), dimension());
  require_parameter_size("LogisticRegression::hessian_vector", "v", v.size(), dimension());
  // H v = J^T diag(p (1 - p)) J v / m + l2 [v_w; 0], one pass over X; at a
  // new theta the pass first forms z = J x and p (1 - p) per slice.
  const Index d = design_.num_features();
  const Index m = design_.num_selected();
  const bool intercept = options_.fit_intercept;
  const bool cached = has_curvature(x);
  const T b = intercept ? x[d] : T(0);
  const T v_b = intercept ? v[d] : T(0);
  projection_.resize(m);
  if (!cached) {
    residual_.resize(m);
    curvature_.resize(m);
  }
  const Index size_out = d + (intercept ? 1 : 0);
  if (sample_major_selected_) {
    // Small dense set, all samples: GEMVs on X^T [n, d].
    if (total_.size() < size_out) total_.resize(size_out);
    if (!cached) {
      residual_.noalias() = sample_major_ * x.head(d);
      curvatures(0, m, b);
    }
    projection_.noalias() = sample_major_ * v.head(d);
    projection_.array() = curvature_.array() * (projection_.array() + v_b);
    total_.head(d).noalias() = sample_major_.transpose() * projection_;
    if (intercept) total_[d] = projection_.sum();
  } else {
    detail::for_each_slice(design_, size_out, partials_, total_,
                           [&](Index begin, Index size, const auto& xs, auto& acc) {
      if (!cached) {
        residual_.segment(begin, size).noalias() = xs.transpose() * x.head(d);
        curvatures(begin, size, b);
      }
      auto u = projection_.segment(begin, size);
      u.noalias() = xs.transpose() * v.head(d);
      u.array() = curvature_.segment(begin, size).array() * (u.array() + v_b);
      acc.head(d).noalias() += xs * u;
      if (intercept) acc[d] += u.sum();
    });
  }
  if (!cached) keep_curvature(x);
  out = total_.head(size_out) / static_cast<T>(m);
  add_ridge(v, out);
}

template <class T>
void LogisticRegression<T>::hessian(const Vector<T>& x, Matrix<T>& out) {
  require_parameter_size("LogisticRegression::hessian", "x", x.size(), dimension());
  design_.linear_predictor(x, options_.fit_intercept, scores_);
  compute_curvature(scores_);
  keep_curvature(x);
  design_.linear_predictor_hessian(curvature_, T(1) / static_cast<T>(design_.num_selected()),
                                   options_.fit_intercept, out);
  out.diagonal().head(design_.num_features()).array() += static_cast<T>(options_.l2);
}

template class LogisticRegression<float>;
template class LogisticRegression<double>;

}  // namespace hesse::models
