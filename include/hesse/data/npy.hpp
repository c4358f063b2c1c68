// NPY, NumPy's array file (numpy.save; format versions 1, 2 and 3):
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
// Element types read: <f4 <f8 |u1 |i1 <i4 <i8 (little-endian), C or Fortran
// order.
#pragma once

#include <filesystem>

#include "hesse/data/dataset.hpp"

namespace hesse::data {

/// Reads features [n, d] (more dimensions are flattened per sample, as for
/// images [n, 28, 28]) and labels from two NPY files, plain or
/// gzip-compressed. Integer 1-D labels [n] are class indices (must be >= 0;
/// num_classes = largest + 1); float labels [n] or [n, t] are regression
/// targets. Raises DataError naming the file and byte offset for a bad magic
/// string or header, an unsupported element type, a data section whose size
/// does not match the shape, NaN or Inf values, negative class labels, or
/// sample counts that differ between the two files.
template <class T>
Dataset<T> load_npy(const std::filesystem::path& features_path,
                    const std::filesystem::path& labels_path);

}  // namespace hesse::data
