// IDX, the binary format of MNIST and Fashion-MNIST
// (http://yann.lecun.com/exdb/mnist/): a big-endian header, then unsigned
// bytes.
//
//   images: magic 0x00000803, n, rows, cols, then n*rows*cols pixels
//   labels: magic 0x00000801, n, then n labels
#pragma once

#include <filesystem>

#include "hesse/data/dataset.hpp"

namespace hesse::data {

/// Reads an images file and its labels file, plain or gzip-compressed.
/// Features are [rows*cols, n] with pixels scaled to [0, 1]; targets are the
/// class indices, num_classes = largest label + 1. Raises DataError naming the
/// file and byte offset for a wrong magic number, a file shorter or longer
/// than its header declares, or image and label counts that differ.
template <class T>
Dataset<T> load_idx(const std::filesystem::path& images_path,
                    const std::filesystem::path& labels_path);

}  // namespace hesse::data
