#include "hesse/models/design_matrix.hpp"

#include <cmath>
#include <sstream>
#include <string>

#include "hesse/core/error.hpp"

namespace hesse::models {

template <class T>
DesignMatrix<T>::DesignMatrix(const data::Dataset<T>& data, const char* model) : data_(&data) {
  const std::string who = model;
  const Index feature_columns = data.is_sparse() ? data.sparse_features.cols() : data.features.cols();
  HESSE_REQUIRE(data.num_features() > 0 && feature_columns > 0,
                who + ": the data set has no features (both features and sparse_features are empty)");
  HESSE_REQUIRE(data.targets.rows() >= 1,
                who + ": the data set has no targets (targets has 0 rows)");
  HESSE_REQUIRE(feature_columns == data.targets.cols(),
                who + ": features have " + std::to_string(feature_columns) +
                    " columns (samples) but targets have " + std::to_string(data.targets.cols()));
  all_targets_ = data.targets.row(0).transpose();
  select_all();
}

template <class T>
void DesignMatrix<T>::select_all() {
  dense_ = &data_->features;
  sparse_ = &data_->sparse_features;
  targets_ = &all_targets_;
}

template <class T>
void DesignMatrix<T>::select_batch(std::span<const Index> indices) {
  const Index n = num_samples();
  HESSE_REQUIRE(!indices.empty(), "select_batch: the batch is empty");
  for (const Index i : indices)
    HESSE_REQUIRE(i >= 0 && i < n, "select_batch: sample index " + std::to_string(i) +
                                       " is outside [0, " + std::to_string(n) + ")");
  const auto m = static_cast<Index>(indices.size());
  batch_targets_.resize(m);
  for (Index k = 0; k < m; ++k) batch_targets_[k] = all_targets_[indices[static_cast<std::size_t>(k)]];
  targets_ = &batch_targets_;

  if (data_->is_sparse()) {
    const SparseMatrix<T>& all = data_->sparse_features;
    Index nonzeros = 0;
    for (const Index i : indices) nonzeros += all.col(i).nonZeros();
    batch_sparse_.resize(all.rows(), m);
    batch_sparse_.reserve(nonzeros);
    // Columns are appended in order, so the low-level insertBack fills the
    // compressed storage directly.
    for (Index k = 0; k < m; ++k) {
      batch_sparse_.startVec(k);
      for (typename SparseMatrix<T>::InnerIterator it(all, indices[static_cast<std::size_t>(k)]); it; ++it)
        batch_sparse_.insertBack(it.row(), k) = it.value();
    }
    batch_sparse_.finalize();
    sparse_ = &batch_sparse_;
  } else {
    const Matrix<T>& all = data_->features;
    batch_dense_.resize(all.rows(), m);
    for (Index k = 0; k < m; ++k) batch_dense_.col(k) = all.col(indices[static_cast<std::size_t>(k)]);
    dense_ = &batch_dense_;
  }
}

template <class T>
void DesignMatrix<T>::weighted_gram(const Vector<T>& weights, Matrix<T>& out) {
  if (data_->is_sparse()) {
    const SparseMatrix<T> scaled = *sparse_ * weights.asDiagonal();
    out = Matrix<T>(scaled * sparse_->transpose());
  } else {
    scaled_.noalias() = *dense_ * weights.asDiagonal();
    out.noalias() = scaled_ * dense_->transpose();
  }
  // The two triangles of the product round differently; mirror the lower one
  // so the result is exactly symmetric.
  out.template triangularView<Eigen::StrictlyUpper>() = out.transpose();
}

template <class T>
void DesignMatrix<T>::linear_predictor(const Vector<T>& theta, bool intercept, Vector<T>& out) const {
  const Index d = num_features();
  visit([&](const auto& x) { out.noalias() = x.transpose() * theta.head(d); });
  if (intercept) out.array() += theta[d];
}

template <class T>
void DesignMatrix<T>::linear_predictor_pair(const Vector<T>& theta, const Vector<T>& v,
                                            bool intercept, Matrix<T>& out) {
  const Index d = num_features();
  stacked_.resize(d, 2);
  stacked_.col(0) = theta.head(d);
  stacked_.col(1) = v.head(d);
  visit([&](const auto& x) { out.noalias() = x.transpose() * stacked_; });
  if (intercept) {
    out.col(0).array() += theta[d];
    out.col(1).array() += v[d];
  }
}

template <class T>
void DesignMatrix<T>::linear_predictor_transpose(const Vector<T>& r, T scale, bool intercept,
                                                 Vector<T>& out) const {
  const Index d = num_features();
  out.resize(d + (intercept ? 1 : 0));
  visit([&](const auto& x) { out.head(d).noalias() = scale * (x * r); });
  if (intercept) out[d] = scale * r.sum();
}

template <class T>
void DesignMatrix<T>::linear_predictor_hessian(const Vector<T>& weights, T scale, bool intercept,
                                               Matrix<T>& out) {
  const Index d = num_features();
  weighted_gram(weights, gram_);
  out.resize(d + (intercept ? 1 : 0), d + (intercept ? 1 : 0));
  out.topLeftCorner(d, d) = scale * gram_;
  if (intercept) {
    // d/dw d/db = X diag(weights) 1 = X weights;  d2/db2 = 1^T weights.
    visit([&](const auto& x) { out.col(d).head(d).noalias() = scale * (x * weights); });
    out.row(d).head(d) = out.col(d).head(d).transpose();
    out(d, d) = scale * weights.sum();
  }
}

void require_parameter_size(const char* call, const char* name, Index size, Index expected) {
  HESSE_REQUIRE(size == expected, std::string(call) + ": " + name + " has " + std::to_string(size) +
                                      " entries, expected dimension() = " + std::to_string(expected));
}

void require_penalty(const char* field, double value) {
  std::ostringstream text;
  text << field << " = " << value << ": must be finite and >= 0";
  HESSE_REQUIRE(std::isfinite(value) && value >= 0, text.str());
}

template class DesignMatrix<float>;
template class DesignMatrix<double>;

}  // namespace hesse::models
