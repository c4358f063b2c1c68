#include "hesse/data/npy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "io.hpp"

namespace hesse::data {

namespace {

using detail::fail_at_offset;
using detail::quote;

enum class ElementType { Float32, Float64, UInt8, Int8, Int32, Int64 };

struct ElementTypeInfo {
  std::string_view descr;
  ElementType type;
  std::size_t size;
  bool is_integer;
};

constexpr ElementTypeInfo kElementTypes[] = {
    {"<f4", ElementType::Float32, 4, false}, {"<f8", ElementType::Float64, 8, false},
    {"|u1", ElementType::UInt8, 1, true},    {"|i1", ElementType::Int8, 1, true},
    {"<i4", ElementType::Int32, 4, true},    {"<i8", ElementType::Int64, 8, true},
};

// An NPY array whose header has been checked against the size of the file:
// `count` elements of `element` start at `data_offset`.
struct NpyArray {
  ElementTypeInfo element{};
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
  std::uint64_t count = 1;
  std::size_t data_offset = 0;
};

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// Reads the Python dict literal of an NPY header, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (10000, 784), }
// Only what numpy.save writes is accepted: the three keys with string,
// boolean and tuple-of-integers values.
class HeaderParser {
 public:
  HeaderParser(const std::filesystem::path& path, std::string_view text, std::size_t offset)
      : path_(path), text_(text), offset_(offset) {}

  NpyArray parse() {
    NpyArray array;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (!accept('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        const std::string descr = string_literal();
        const auto* found = std::find_if(std::begin(kElementTypes), std::end(kElementTypes),
                                         [&](const auto& info) { return info.descr == descr; });
        if (found == std::end(kElementTypes))
          fail("unsupported element type " + quote(descr) +
               "; expected one of <f4 <f8 |u1 |i1 <i4 <i8 (little-endian)");
        array.element = *found;
        have_descr = true;
      } else if (key == "fortran_order") {
        array.fortran_order = boolean_literal();
        have_order = true;
      } else if (key == "shape") {
        array.shape = integer_tuple();
        have_shape = true;
      } else {
        fail("unexpected key " + quote(key) + " in the header");
      }
      if (!accept(',')) {
        expect('}');
        break;
      }
    }
    if (!have_descr || !have_order || !have_shape)
      fail("the header lacks one of the keys 'descr', 'fortran_order', 'shape'");
    return array;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    fail_at_offset(path_, offset_ + position_, what);
  }
  void skip_blanks() {
    while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\n'))
      ++position_;
  }
  bool accept(char c) {
    skip_blanks();
    if (position_ < text_.size() && text_[position_] == c) {
      ++position_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c))
      fail(std::string("expected '") + c + "' in the header, found " +
           (position_ < text_.size() ? quote(text_.substr(position_, 1)) : "its end"));
  }
  std::string string_literal() {
    skip_blanks();
    if (position_ >= text_.size() || (text_[position_] != '\'' && text_[position_] != '"'))
      fail("expected a quoted string in the header");
    const char quote_char = text_[position_++];
    const auto end = text_.find(quote_char, position_);
    if (end == std::string_view::npos) fail("unterminated string in the header");
    std::string value(text_.substr(position_, end - position_));
    position_ = end + 1;
    return value;
  }
  bool boolean_literal() {
    skip_blanks();
    for (const auto& [word, value] :
         {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(position_, word.size()) == word) {
        position_ += word.size();
        return value;
      }
    }
    fail("expected True or False for 'fortran_order'");
  }
  std::vector<std::uint64_t> integer_tuple() {
    std::vector<std::uint64_t> values;
    expect('(');
    while (!accept(')')) {
      skip_blanks();
      const auto start = position_;
      while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9')
        ++position_;
      std::int64_t value = 0;
      if (!detail::parse_integer(text_.substr(start, position_ - start), value))
        fail("expected a non-negative integer in 'shape'");
      values.push_back(static_cast<std::uint64_t>(value));
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return values;
  }

  const std::filesystem::path& path_;
  std::string_view text_;
  std::size_t offset_;
  std::size_t position_ = 0;
};

NpyArray read_npy_header(const std::filesystem::path& path, const std::string& bytes) {
  constexpr std::string_view kMagic("\x93NUMPY", 6);
  if (bytes.size() < 10 || std::string_view(bytes).substr(0, 6) != kMagic)
    fail_at_offset(path, 0, "expected the NPY magic string \\x93NUMPY");
  const auto byte = [&](std::size_t i) {
    return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i]));
  };
  const std::size_t major = byte(6);
  std::size_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length = byte(8) | byte(9) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail_at_offset(path, bytes.size(), "file ends inside the header");
    header_length = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
    header_start = 12;
  } else {
    fail_at_offset(
        path, 6,
        "unsupported NPY format version " + std::to_string(major) + "; expected 1, 2 or 3");
  }
  if (header_length > bytes.size() - header_start)
    fail_at_offset(path, bytes.size(),
                   "file ends inside the header of " + std::to_string(header_length) + " bytes");

  NpyArray array =
      HeaderParser(path, std::string_view(bytes).substr(header_start, header_length), header_start)
          .parse();
  array.data_offset = header_start + header_length;
  const std::size_t available = bytes.size() - array.data_offset;
  const std::uint64_t max_count = available / array.element.size;
  for (const auto dim : array.shape) {
    // Compare without multiplying past the file's size so no product overflows.
    if (dim != 0 && array.count > max_count / dim)
      array.count = max_count + 1;
    else
      array.count *= dim;
  }
  if (array.count > max_count || array.count * array.element.size != available) {
    const bool short_file = array.count > max_count;
    fail_at_offset(
        path, short_file ? bytes.size() : array.data_offset + array.count * array.element.size,
        "shape " + shape_text(array.shape) + " of " + std::string(array.element.descr) + " needs " +
            (short_file ? "more data than the file's " + std::to_string(available)
                        : std::to_string(array.count * array.element.size)) +
            " bytes after the header" +
            (short_file ? "" : ", but the file has " + std::to_string(available)));
  }
  return array;
}

// Element i of the array as a double (memcpy: the data need not be aligned).
double element_at(const std::string& bytes, const NpyArray& array, std::uint64_t i) {
  const char* at = bytes.data() + array.data_offset + i * array.element.size;
  switch (array.element.type) {
    case ElementType::Float32: {
      float v;
      std::memcpy(&v, at, 4);
      return v;
    }
    case ElementType::Float64: {
      double v;
      std::memcpy(&v, at, 8);
      return v;
    }
    case ElementType::UInt8: {
      std::uint8_t v;
      std::memcpy(&v, at, 1);
      return v;
    }
    case ElementType::Int8: {
      std::int8_t v;
      std::memcpy(&v, at, 1);
      return v;
    }
    case ElementType::Int32: {
      std::int32_t v;
      std::memcpy(&v, at, 4);
      return v;
    }
    case ElementType::Int64: {
      std::int64_t v;
      std::memcpy(&v, at, 8);
      return static_cast<double>(v);
    }
  }
  return 0;
}

// Converts `count` elements of type Source stored from `data` on (memcpy:
// NPY data need not be aligned for Source).
template <class Source, class T>
void convert(const char* data, std::uint64_t count, T* out) {
  for (std::uint64_t k = 0; k < count; ++k) {
    Source value;
    std::memcpy(&value, data + k * sizeof(Source), sizeof(Source));
    out[k] = static_cast<T>(value);
  }
}

// Copies an [n, d] array into a [d, n] column-major matrix and checks that
// every value is finite in T (a double too large for float becomes Inf here
// and is reported too).
template <class T>
Matrix<T> read_samples(const std::filesystem::path& path, const std::string& bytes,
                       const NpyArray& array, Index n, Index d) {
  // C order stores [n, d] row after row, which is [d, n] column-major.
  Matrix<T> values(array.fortran_order ? n : d, array.fortran_order ? d : n);
  const char* data = bytes.data() + array.data_offset;
  switch (array.element.type) {
    case ElementType::Float32:
      convert<float>(data, array.count, values.data());
      break;
    case ElementType::Float64:
      convert<double>(data, array.count, values.data());
      break;
    case ElementType::UInt8:
      convert<std::uint8_t>(data, array.count, values.data());
      break;
    case ElementType::Int8:
      convert<std::int8_t>(data, array.count, values.data());
      break;
    case ElementType::Int32:
      convert<std::int32_t>(data, array.count, values.data());
      break;
    case ElementType::Int64:
      convert<std::int64_t>(data, array.count, values.data());
      break;
  }
  if (!values.allFinite()) {
    const T* first = values.data();
    while (std::isfinite(*first)) ++first;
    const auto k = static_cast<Index>(first - values.data());
    // Element k of the file is [i, j] of the [n, d] array.
    const Index i = array.fortran_order ? k % n : k / d;
    const Index j = array.fortran_order ? k / n : k % d;
    fail_at_offset(path, array.data_offset + static_cast<std::uint64_t>(k) * array.element.size,
                   "expected a finite number at [" + std::to_string(i) + ", " + std::to_string(j) +
                       "], found " +
                       std::to_string(element_at(bytes, array, static_cast<std::uint64_t>(k))));
  }
  if (array.fortran_order) return values.transpose();
  return values;
}

}  // namespace

template <class T>
Dataset<T> load_npy(const std::filesystem::path& features_path,
                    const std::filesystem::path& labels_path) {
  const std::string feature_bytes = detail::read_file_bytes(features_path);
  const NpyArray features = read_npy_header(features_path, feature_bytes);
  const std::string label_bytes = detail::read_file_bytes(labels_path);
  const NpyArray labels = read_npy_header(labels_path, label_bytes);

  if (features.shape.size() < 2)
    detail::fail(features_path, "expected features of shape [n, d] or [n, ...], found shape " +
                                    shape_text(features.shape));
  if (features.fortran_order && features.shape.size() > 2)
    detail::fail(features_path, "Fortran order is read for 2-D features only, found shape " +
                                    shape_text(features.shape));
  if (labels.shape.empty() || labels.shape.size() > 2)
    detail::fail(labels_path,
                 "expected labels of shape [n] or [n, t], found " + shape_text(labels.shape));
  const std::uint64_t num_samples = features.shape[0];
  if (labels.shape[0] != num_samples)
    detail::fail(labels_path, shape_text(labels.shape) + " labels, but " + features_path.string() +
                                  " has " + std::to_string(num_samples) + " samples " +
                                  shape_text(features.shape));
  if (num_samples == 0)
    detail::fail(features_path, "no samples (shape " + shape_text(features.shape) + ")");

  const auto n = static_cast<Index>(num_samples);
  Dataset<T> out;
  out.name = features_path.string();
  out.features = read_samples<T>(features_path, feature_bytes, features, n,
                                 static_cast<Index>(features.count / num_samples));

  const bool classification = labels.element.is_integer && labels.shape.size() == 1;
  if (!classification) {
    out.targets = read_samples<T>(labels_path, label_bytes, labels, n,
                                  static_cast<Index>(labels.count / num_samples));
    return out;
  }
  // Class indices beyond this are a corrupt file, not a data set.
  constexpr double kMaxClasses = 1 << 20;
  out.targets.resize(1, n);
  double largest = 0;
  for (Index i = 0; i < n; ++i) {
    const double label = element_at(label_bytes, labels, static_cast<std::uint64_t>(i));
    if (label < 0 || label >= kMaxClasses)
      fail_at_offset(labels_path,
                     labels.data_offset + static_cast<std::size_t>(i) * labels.element.size,
                     "class label " + std::to_string(static_cast<std::int64_t>(label)) +
                         " of sample " + std::to_string(i) + " is out of range 0.." +
                         std::to_string(static_cast<std::int64_t>(kMaxClasses) - 1));
    out.targets(0, i) = static_cast<T>(label);
    largest = std::max(largest, label);
  }
  out.num_classes = static_cast<int>(largest) + 1;
  for (int k = 0; k < out.num_classes; ++k) out.class_names.push_back(std::to_string(k));
  return out;
}

template Dataset<float> load_npy<float>(const std::filesystem::path&, const std::filesystem::path&);
template Dataset<double> load_npy<double>(const std::filesystem::path&,
                                          const std::filesystem::path&);

}  // namespace hesse::data
