// LIBSVM / SVMlight sparse text: one sample per line,
//
//   <label> <index>:<value> <index>:<value> ...   # optional comment
//
// with 1-based, strictly increasing feature indices; absent features are 0.
#pragma once

#include <filesystem>

#include "hesse/data/dataset.hpp"

namespace hesse::data {

struct LibsvmOptions {
  /// Number of features d; 0 takes the largest index in the file. Set it when
  /// a test file may lack the last features of its training file.
  Index num_features = 0;
  /// Classification: integer labels (+1/-1, 1/2/3, ...) become classes
  /// 0..K-1 in sorted order (-1 -> 0, +1 -> 1). Regression: kept as they are.
  Task task = Task::Classification;
};

/// Reads a LIBSVM file, plain or gzip-compressed, into `sparse_features`
/// (use Dataset::to_dense() for dense features). Raises DataError naming the
/// file and line for a missing or empty file, a malformed `index:value` pair,
/// an index that is 0, repeated, decreasing or above `num_features`, a value
/// that is not a finite number, or a non-integer classification label.
template <class T>
Dataset<T> load_libsvm(const std::filesystem::path& path, const LibsvmOptions& options = {});

}  // namespace hesse::data
