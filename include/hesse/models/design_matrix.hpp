// The design matrix of a classical model: the feature columns of a Dataset's
// selected samples (all of them, or a mini-batch), dense or sparse, with
// their targets. The models in hesse/models/ write their products once as
// generic Eigen code and run it on whichever storage the data set has via
// visit().
//
//   features  X [d, m]   one selected sample per column (m = num_selected())
//   targets   y [m]      row 0 of the data set's targets for those samples
//
// With every sample selected X is the data set's own matrix (no copy); a
// mini-batch copies its columns once in select_batch(), so the products that
// follow read contiguous memory.
#pragma once

#include <span>
#include <vector>

#include "hesse/core/types.hpp"
#include "hesse/data/dataset.hpp"

namespace hesse::models {

template <class T>
class DesignMatrix {
 public:
  /// Keeps a pointer to `data`, which must outlive this object and stay
  /// unchanged while it is in use. Throws hesse::InvalidArgument when the data
  /// set has no features or the feature and target columns disagree; `model`
  /// names the caller in the message.
  DesignMatrix(const data::Dataset<T>& data, const char* model);

  Index num_features() const { return data_->num_features(); }
  Index num_samples() const { return data_->num_samples(); }
  Index num_selected() const { return targets_->size(); }
  bool is_sparse() const { return data_->is_sparse(); }
  const data::Dataset<T>& data() const { return *data_; }

  /// Restricts X and y to the samples `indices` (each in [0, num_samples()),
  /// repeats allowed, at least one); throws hesse::InvalidArgument otherwise.
  void select_batch(std::span<const Index> indices);
  void select_all();

  /// Targets of the selected samples.
  const Vector<T>& targets() const { return *targets_; }

  /// Calls fn(X) with X the selected features as `const Matrix<T>&` or
  /// `const SparseMatrix<T>&`.
  template <class Fn>
  decltype(auto) visit(Fn&& fn) const {
    if (data_->is_sparse()) return fn(*sparse_);
    return fn(*dense_);
  }

  /// out = X diag(weights) X^T  [d, d], weights [m]. Reuses a workspace for
  /// dense features; sparse features allocate the sparse product.
  void weighted_gram(const Vector<T>& weights, Matrix<T>& out);

  // Products of the linear predictor z = X^T w + b 1 of a parameter vector
  // theta = [w (d); b (1, only when `intercept`)].

  /// out = z = X^T w + b 1  [m]: one matrix-vector product.
  void linear_predictor(const Vector<T>& theta, bool intercept, Vector<T>& out) const;
  /// The predictors of theta and of a direction v in one pass over X:
  /// out = [X^T w_theta + b_theta 1, X^T w_v + b_v 1]  [m, 2].
  void linear_predictor_pair(const Vector<T>& theta, const Vector<T>& v, bool intercept,
                             Matrix<T>& out);
  /// The transpose of the predictor map, scaled: out = scale [X r; 1^T r]  [d (+1)].
  void linear_predictor_transpose(const Vector<T>& r, T scale, bool intercept, Vector<T>& out) const;
  /// out = scale J^T diag(weights) J with J = [X^T, 1] (or X^T): the Hessian
  /// of scale sum_i l_i(z_i) when l_i'' = weights_i  [d (+1), d (+1)].
  void linear_predictor_hessian(const Vector<T>& weights, T scale, bool intercept, Matrix<T>& out);

 private:
  const data::Dataset<T>* data_;
  Vector<T> all_targets_;
  // The selected samples: the data set's own matrix or batch_* below.
  const Matrix<T>* dense_ = nullptr;
  const SparseMatrix<T>* sparse_ = nullptr;
  const Vector<T>* targets_ = nullptr;
  Matrix<T> batch_dense_;
  SparseMatrix<T> batch_sparse_;
  Vector<T> batch_targets_;
  Matrix<T> scaled_;     // X diag(weights), dense weighted_gram only
  Matrix<T> stacked_;    // [w_theta, w_v]  [d, 2], linear_predictor_pair only
  Matrix<T> gram_;       // X diag(weights) X^T, linear_predictor_hessian only
};

/// Throws hesse::InvalidArgument "<call>: <name> has <size> entries, expected
/// dimension() = <expected>" unless size == expected.
void require_parameter_size(const char* call, const char* name, Index size, Index expected);

/// Throws hesse::InvalidArgument "<field> = <value>: must be finite and >= 0"
/// unless the penalty `value` is; `field` is the qualified option name.
void require_penalty(const char* field, double value);

extern template class DesignMatrix<float>;
extern template class DesignMatrix<double>;

}  // namespace hesse::models
