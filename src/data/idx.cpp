#include "hesse/data/idx.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "io.hpp"

namespace hesse::data {

namespace {

using detail::fail_at_offset;

constexpr std::uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension

std::uint32_t read_big_endian_u32(const std::string& bytes, std::size_t offset) {
  const auto byte = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[offset + i]));
  };
  return byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
}

std::string hex32(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

// An IDX file's dimensions and where its data begins, validated against the
// file's size so that reading the data afterwards stays in bounds.
struct IdxArray {
  std::vector<std::uint64_t> dims;
  std::size_t data_offset = 0;
};

IdxArray read_idx_header(const std::filesystem::path& path, const std::string& bytes,
                         std::uint32_t expected_magic, const char* what) {
  if (bytes.size() < 4)
    fail_at_offset(path, bytes.size(),
                   std::string("file ends inside the magic number; expected ") + what);
  const auto magic = read_big_endian_u32(bytes, 0);
  if (magic != expected_magic)
    fail_at_offset(path, 0,
                   "expected magic number " + hex32(expected_magic) + " (" + what + "), found " +
                       hex32(magic));
  IdxArray array;
  const std::size_t num_dims = expected_magic & 0xff;
  array.data_offset = 4 + 4 * num_dims;
  if (bytes.size() < array.data_offset)
    fail_at_offset(
        path, bytes.size(),
        "file ends inside the header; expected " + std::to_string(num_dims) + " dimensions");
  const std::size_t available = bytes.size() - array.data_offset;
  std::uint64_t expected = 1;
  for (std::size_t i = 0; i < num_dims; ++i) {
    const std::uint64_t dim = read_big_endian_u32(bytes, 4 + 4 * i);
    array.dims.push_back(dim);
    // Compare without multiplying past `available` so that no product overflows.
    if (dim != 0 && expected > available / dim)
      expected = available + 1;
    else
      expected *= dim;
  }
  if (expected != available) {
    std::string shape;
    for (const auto dim : array.dims) shape += (shape.empty() ? "" : " x ") + std::to_string(dim);
    const bool short_file = expected > available;
    fail_at_offset(
        path, short_file ? bytes.size() : array.data_offset + expected,
        "the header declares " + shape + " bytes of data, but the file " +
            (short_file ? "ends after " + std::to_string(available) + " data bytes"
                        : "has " + std::to_string(available - expected) + " bytes more"));
  }
  return array;
}

}  // namespace

template <class T>
Dataset<T> load_idx(const std::filesystem::path& images_path,
                    const std::filesystem::path& labels_path) {
  const std::string image_bytes = detail::read_file_bytes(images_path);
  const IdxArray images = read_idx_header(images_path, image_bytes, kImagesMagic, "IDX images");
  const std::string label_bytes = detail::read_file_bytes(labels_path);
  const IdxArray labels = read_idx_header(labels_path, label_bytes, kLabelsMagic, "IDX labels");

  const std::uint64_t num_samples = images.dims[0];
  if (labels.dims[0] != num_samples)
    detail::fail(labels_path, std::to_string(labels.dims[0]) + " labels, but " +
                                  images_path.string() + " has " + std::to_string(num_samples) +
                                  " images");
  if (num_samples == 0) detail::fail(images_path, "no images");
  const auto pixels = static_cast<Index>(images.dims[1] * images.dims[2]);
  const auto n = static_cast<Index>(num_samples);

  Dataset<T> out;
  out.name = images_path.string();
  // Image i is `pixels` contiguous bytes: exactly column i of [pixels, n].
  const auto* pixel_data =
      reinterpret_cast<const std::uint8_t*>(image_bytes.data() + images.data_offset);
  out.features = Eigen::Map<const Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic>>(
                     pixel_data, pixels, n)
                     .template cast<T>() *
                 (T(1) / T(255));

  const auto* label_data =
      reinterpret_cast<const std::uint8_t*>(label_bytes.data() + labels.data_offset);
  out.targets.resize(1, n);
  int largest = 0;
  for (Index i = 0; i < n; ++i) {
    out.targets(0, i) = static_cast<T>(label_data[i]);
    largest = std::max<int>(largest, label_data[i]);
  }
  out.num_classes = largest + 1;
  for (int k = 0; k < out.num_classes; ++k) out.class_names.push_back(std::to_string(k));
  return out;
}

template Dataset<float> load_idx<float>(const std::filesystem::path&, const std::filesystem::path&);
template Dataset<double> load_idx<double>(const std::filesystem::path&,
                                          const std::filesystem::path&);

}  // namespace hesse::data
