// Delimited text: one sample per line, one column holds the label.
//
//   sepal_length,sepal_width,species      (optional header)
//   5.1,3.5,0
//
// scikit-learn's bundled files (sklearn/datasets/data/*.csv) use a variant
// whose first line is `n_samples,n_features,class names...`; set
// `sklearn_header` to read it.
#pragma once

#include <filesystem>
#include <string>

#include "hesse/data/dataset.hpp"

namespace hesse::data {

enum class CsvHeader {
  Auto,  ///< the first line is a header when one of its fields is not a number
  Yes,
  No,
};

struct CsvOptions {
  char delimiter = ',';
  CsvHeader header = CsvHeader::Auto;
  /// Label column by header name; when empty, `label_index` is used.
  std::string label_name;
  /// Label column by position, 0-based; negative counts from the end (-1 = last).
  int label_index = -1;
  /// Classification: labels must be integers; the distinct values become
  /// classes 0..K-1 in sorted order and `class_names` keeps the values.
  /// Regression: the label column is a real-valued target.
  Task task = Task::Classification;
  /// First line is `n_samples,n_features[,class names...]`, the label is the
  /// last column and already a class index 0..K-1 (scikit-learn's format).
  bool sklearn_header = false;
};

/// Reads a CSV file, plain or gzip-compressed, into dense features.
/// Raises DataError naming the file and line for a missing or empty file,
/// ragged rows, a field that is not a finite number, a non-integer label in a
/// classification file, or a label column that does not exist.
template <class T>
Dataset<T> load_csv(const std::filesystem::path& path, const CsvOptions& options = {});

}  // namespace hesse::data
