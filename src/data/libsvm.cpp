#include "hesse/data/libsvm.hpp"

#include <cmath>
#include <limits>
#include <string_view>
#include <vector>

#include "hesse/core/error.hpp"
#include "io.hpp"

namespace hesse::data {

namespace {

using detail::fail_at_line;
using detail::quote;

// Feature indices above this are surely a corrupt file, and a dense copy or a
// per-feature statistic of that many rows could not be allocated anyway.
constexpr std::int64_t kMaxFeatureIndex = std::numeric_limits<std::int32_t>::max();

// Next whitespace-separated token of `rest`, or an empty view at the end.
std::string_view next_token(std::string_view& rest) {
  constexpr std::string_view kBlank = " \t\v\f\r";
  const auto start = rest.find_first_not_of(kBlank);
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  const auto end = rest.find_first_of(kBlank, start);
  const auto token = rest.substr(start, end == std::string_view::npos ? end : end - start);
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  return token;
}

}  // namespace

template <class T>
Dataset<T> load_libsvm(const std::filesystem::path& path, const LibsvmOptions& options) {
  if (options.num_features < 0)
    throw InvalidArgument("LibsvmOptions::num_features = " + std::to_string(options.num_features) +
                          ": must be 0 (infer) or positive");
  const std::string bytes = detail::read_file_bytes(path);
  const bool classification = options.task == Task::Classification;

  // Compressed sparse columns, built directly since samples arrive in order
  // and indices within a sample ascend.
  std::vector<std::int64_t> column_starts{0};
  std::vector<std::int64_t> row_indices;
  std::vector<T> values;
  std::vector<double> targets;
  std::vector<std::int64_t> labels;
  std::int64_t largest_index = 0;

  detail::LineReader lines(bytes);
  std::string_view line;
  while (lines.next(line)) {
    const std::size_t line_number = lines.line_number();
    if (const auto comment = line.find('#'); comment != std::string_view::npos)
      line = line.substr(0, comment);
    std::string_view rest = line;
    const std::string_view label_token = next_token(rest);
    if (label_token.empty()) continue;

    double label_value = 0;
    if (!detail::parse_number(label_token, label_value) || !std::isfinite(label_value) ||
        std::abs(label_value) > static_cast<double>(std::numeric_limits<T>::max()))
      fail_at_line(path, line_number,
                   "expected a label (a finite number) at the start of the line, found " +
                       quote(label_token));
    if (classification) {
      std::int64_t label = 0;
      if (!detail::is_integer_label(label_value, label))
        fail_at_line(path, line_number,
                     "expected an integer class label, found " + quote(label_token));
      labels.push_back(label);
    } else {
      targets.push_back(label_value);
    }

    std::int64_t previous_index = 0;
    for (auto token = next_token(rest); !token.empty(); token = next_token(rest)) {
      const auto colon = token.find(':');
      if (colon == std::string_view::npos)
        fail_at_line(path, line_number, "expected index:value, found " + quote(token));
      std::int64_t index = 0;
      double value = 0;
      const auto index_text = token.substr(0, colon);
      const auto value_text = token.substr(colon + 1);
      if (index_text == "qid")
        fail_at_line(path, line_number, "query ids (qid:) of ranking data are not supported");
      if (!detail::parse_integer(index_text, index))
        fail_at_line(path, line_number, "expected an integer feature index, found " + quote(token));
      if (index < 1 || index > kMaxFeatureIndex)
        fail_at_line(path, line_number,
                     "feature index " + std::to_string(index) + " is out of range 1.." +
                         std::to_string(kMaxFeatureIndex) + " (indices are 1-based)");
      if (index <= previous_index)
        fail_at_line(path, line_number,
                     "feature index " + std::to_string(index) + " after " +
                         std::to_string(previous_index) +
                         ": indices must be strictly increasing within a line");
      if (options.num_features > 0 && index > options.num_features)
        fail_at_line(path, line_number,
                     "feature index " + std::to_string(index) +
                         " exceeds num_features = " + std::to_string(options.num_features));
      if (!detail::parse_number(value_text, value))
        fail_at_line(
            path, line_number,
            "feature " + std::to_string(index) + ": expected a number, found " + quote(value_text));
      if (!std::isfinite(value) ||
          std::abs(value) > static_cast<double>(std::numeric_limits<T>::max()))
        fail_at_line(path, line_number,
                     "feature " + std::to_string(index) + ": expected a finite number, found " +
                         quote(value_text));
      previous_index = index;
      if (index > largest_index) largest_index = index;
      row_indices.push_back(index - 1);
      values.push_back(static_cast<T>(value));
    }
    column_starts.push_back(static_cast<std::int64_t>(row_indices.size()));
  }

  const Index num_samples = static_cast<Index>(column_starts.size() - 1);
  if (num_samples == 0) detail::fail(path, "empty file: no lines with a sample");

  Dataset<T> out;
  out.name = path.string();
  const Index num_features = options.num_features > 0 ? options.num_features : largest_index;
  out.sparse_features.resize(num_features, num_samples);
  out.sparse_features.reserve(static_cast<Index>(values.size()));
  for (Index j = 0; j < num_samples; ++j) {
    out.sparse_features.startVec(j);
    for (auto k = column_starts[static_cast<std::size_t>(j)];
         k < column_starts[static_cast<std::size_t>(j) + 1]; ++k)
      out.sparse_features.insertBack(row_indices[static_cast<std::size_t>(k)], j) =
          values[static_cast<std::size_t>(k)];
  }
  out.sparse_features.finalize();

  out.targets.resize(1, num_samples);
  if (!classification) {
    for (Index i = 0; i < num_samples; ++i)
      out.targets(0, i) = static_cast<T>(targets[static_cast<std::size_t>(i)]);
    return out;
  }
  const auto encoding = detail::LabelEncoding::from_labels(labels);
  for (Index i = 0; i < num_samples; ++i)
    out.targets(0, i) = static_cast<T>(encoding.index_of(labels[static_cast<std::size_t>(i)]));
  out.num_classes = static_cast<int>(encoding.values.size());
  out.class_names = encoding.names();
  return out;
}

template Dataset<float> load_libsvm<float>(const std::filesystem::path&, const LibsvmOptions&);
template Dataset<double> load_libsvm<double>(const std::filesystem::path&, const LibsvmOptions&);

}  // namespace hesse::data
