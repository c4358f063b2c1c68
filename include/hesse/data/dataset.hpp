// A data set: features and targets, one sample per column.
//
//   features         [d, n] dense (empty when the set is sparse)
//   sparse_features  [d, n] sparse, column-major (empty when the set is dense)
//   targets          [t, n]: for classification t = 1 and each entry is the
//                    class index 0..num_classes-1 stored as a number; for
//                    regression t is the number of outputs.
//   class_names      [num_classes] the label each class index stands for in
//                    the source file ("-1", "+1" -> "-1", "1"; or the names
//                    a file lists); empty for regression.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "hesse/core/types.hpp"

namespace hesse::data {

/// What the label column of a file means.
enum class Task {
  Classification,  ///< integer labels, mapped to class indices 0..K-1
  Regression,      ///< real-valued targets, kept as they are
};

template <class T>
struct Dataset {
  Matrix<T> features;
  SparseMatrix<T> sparse_features;
  Matrix<T> targets;
  int num_classes = 0;                   ///< 0 for regression targets
  std::string name;                      ///< where the set came from (file path or built-in name)
  std::vector<std::string> class_names;  ///< original label of each class index

  bool is_sparse() const { return features.size() == 0 && sparse_features.cols() > 0; }
  Index num_samples() const { return targets.cols(); }
  Index num_features() const { return is_sparse() ? sparse_features.rows() : features.rows(); }
  bool is_classification() const { return num_classes > 0; }

  /// Class label of sample i (classification sets only).
  int label(Index i) const { return static_cast<int>(targets(0, i)); }

  /// The same set with dense features (a copy; dense sets are returned as is).
  Dataset to_dense() const {
    Dataset out = *this;
    if (is_sparse()) {
      out.features = Matrix<T>(sparse_features);
      out.sparse_features = SparseMatrix<T>();
    }
    return out;
  }

  template <class U>
  Dataset<U> cast() const {
    Dataset<U> out;
    out.features = features.template cast<U>();
    out.sparse_features = sparse_features.template cast<U>();
    out.targets = targets.template cast<U>();
    out.num_classes = num_classes;
    out.name = name;
    out.class_names = class_names;
    return out;
  }
};

/// A data set split in two: fit on `train`, report on `test`.
template <class T>
struct TrainTest {
  Dataset<T> train;
  Dataset<T> test;
};

}  // namespace hesse::data
