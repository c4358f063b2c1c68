// A data set: features and targets, one sample per column.
//
//   features         [d, n] dense (empty when the set is sparse)
//   sparse_features  [d, n] sparse, column-major (empty when the set is dense)
//   targets          [t, n]: for classification t = 1 and each entry is the
//                    class index 0..num_classes-1 stored as a number; for
//                    regression t is the number of outputs.
#pragma once

#include <string>
#include <vector>

#include "hesse/core/types.hpp"

namespace hesse::data {

template <class T>
struct Dataset {
  Matrix<T> features;
  SparseMatrix<T> sparse_features;
  Matrix<T> targets;
  int num_classes = 0;  ///< 0 for regression targets
  std::string name;     ///< where the set came from (file path or built-in name)

  bool is_sparse() const { return features.size() == 0 && sparse_features.cols() > 0; }
  Index num_samples() const { return targets.cols(); }
  Index num_features() const { return is_sparse() ? sparse_features.rows() : features.rows(); }
  bool is_classification() const { return num_classes > 0; }

  /// Class label of sample i (classification sets only).
  int label(Index i) const { return static_cast<int>(targets(0, i)); }

  template <class U>
  Dataset<U> cast() const {
    Dataset<U> out;
    out.features = features.template cast<U>();
    out.sparse_features = sparse_features.template cast<U>();
    out.targets = targets.template cast<U>();
    out.num_classes = num_classes;
    out.name = name;
    return out;
  }
};

}  // namespace hesse::data
