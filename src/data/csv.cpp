#include "hesse/data/csv.hpp"

#include <cmath>
#include <limits>
#include <string_view>
#include <vector>

#include "io.hpp"

namespace hesse::data {

namespace {

using detail::fail_at_line;
using detail::quote;

void split_fields(std::string_view line, char delimiter, std::vector<std::string_view>& fields) {
  fields.clear();
  std::size_t start = 0;
  while (true) {
    const auto end = line.find(delimiter, start);
    if (end == std::string_view::npos) {
      fields.push_back(detail::trim(line.substr(start)));
      return;
    }
    fields.push_back(detail::trim(line.substr(start, end - start)));
    start = end + 1;
  }
}

std::string_view unquote(std::string_view field) {
  if (field.size() >= 2 && field.front() == '"' && field.back() == '"')
    return field.substr(1, field.size() - 2);
  return field;
}

bool all_numbers(const std::vector<std::string_view>& fields) {
  double value = 0;
  for (const auto field : fields)
    if (!detail::parse_number(field, value)) return false;
  return true;
}

std::string column_list(const std::vector<std::string_view>& names) {
  std::string out;
  for (const auto name : names) out += (out.empty() ? "" : ", ") + quote(unquote(name));
  return out;
}

// The parsed `n_samples,n_features,class names...` line of scikit-learn's files.
struct SklearnHeader {
  std::int64_t num_samples = 0;
  std::int64_t num_features = 0;
  std::vector<std::string> class_names;
};

SklearnHeader parse_sklearn_header(const std::filesystem::path& path, std::size_t line_number,
                                   const std::vector<std::string_view>& fields) {
  SklearnHeader header;
  if (fields.size() < 2 || !detail::parse_integer(fields[0], header.num_samples) ||
      !detail::parse_integer(fields[1], header.num_features) || header.num_samples <= 0 ||
      header.num_features <= 0)
    fail_at_line(path, line_number,
                 "expected a scikit-learn header 'n_samples,n_features,class names...' with "
                 "positive counts");
  for (std::size_t i = 2; i < fields.size(); ++i) header.class_names.emplace_back(fields[i]);
  return header;
}

}  // namespace

template <class T>
Dataset<T> load_csv(const std::filesystem::path& path, const CsvOptions& options) {
  const std::string bytes = detail::read_file_bytes(path);
  detail::LineReader lines(bytes);
  std::vector<std::string_view> fields;
  std::string_view line;

  // Skip leading blank lines to the first line, which fixes the column count.
  bool have_line = false;
  while ((have_line = lines.next(line)) && detail::trim(line).empty()) {
  }
  if (!have_line) detail::fail(path, "empty file: no lines with data");
  split_fields(line, options.delimiter, fields);

  const std::size_t first_line = lines.line_number();
  std::size_t num_columns = fields.size();
  std::size_t label_column = 0;
  SklearnHeader sklearn;
  bool first_line_is_data = true;
  std::vector<std::string_view> header_names;

  if (options.sklearn_header) {
    sklearn = parse_sklearn_header(path, first_line, fields);
    num_columns = static_cast<std::size_t>(sklearn.num_features) + 1;
    label_column = num_columns - 1;
    first_line_is_data = false;
  } else {
    const bool is_header = options.header == CsvHeader::Yes ||
                           (options.header == CsvHeader::Auto && !all_numbers(fields));
    first_line_is_data = !is_header;
    if (is_header) header_names = fields;
    if (num_columns < 2)
      fail_at_line(path, first_line,
                   "expected at least 2 columns (features and a label) separated by " +
                       quote(std::string_view(&options.delimiter, 1)) + ", found 1");
    if (!options.label_name.empty()) {
      if (!is_header)
        fail_at_line(path, first_line,
                     "label column " + quote(options.label_name) +
                         " requested by name, but the file has no header line");
      std::size_t i = 0;
      while (i < header_names.size() && unquote(header_names[i]) != options.label_name) ++i;
      if (i == header_names.size())
        fail_at_line(path, first_line,
                     "no column named " + quote(options.label_name) +
                         " (columns: " + column_list(header_names) + ")");
      label_column = i;
    } else {
      const auto columns = static_cast<std::int64_t>(num_columns);
      const std::int64_t index =
          options.label_index < 0 ? columns + options.label_index : options.label_index;
      if (index < 0 || index >= columns)
        fail_at_line(path, first_line,
                     "label column index " + std::to_string(options.label_index) +
                         " is out of range for " + std::to_string(num_columns) + " columns");
      label_column = static_cast<std::size_t>(index);
    }
  }

  const std::size_t num_features = num_columns - 1;
  const bool classification = options.task == Task::Classification;
  std::vector<T> features;  // sample after sample: exactly the [d, n] column-major layout
  std::vector<double> targets;
  std::vector<std::int64_t> labels;

  auto read_row = [&](std::size_t line_number) {
    if (fields.size() != num_columns)
      fail_at_line(path, line_number,
                   "expected " + std::to_string(num_columns) + " columns, found " +
                       std::to_string(fields.size()));
    for (std::size_t column = 0; column < num_columns; ++column) {
      double value = 0;
      if (!detail::parse_number(fields[column], value))
        fail_at_line(path, line_number,
                     "column " + std::to_string(column + 1) + ": expected a number, found " +
                         quote(fields[column]));
      if (!std::isfinite(value) ||
          std::abs(value) > static_cast<double>(std::numeric_limits<T>::max()))
        fail_at_line(path, line_number,
                     "column " + std::to_string(column + 1) + ": expected a finite number, found " +
                         quote(fields[column]));
      if (column != label_column) {
        features.push_back(static_cast<T>(value));
        continue;
      }
      if (!classification) {
        targets.push_back(value);
        continue;
      }
      std::int64_t label = 0;
      if (!detail::is_integer_label(value, label))
        fail_at_line(path, line_number,
                     "column " + std::to_string(column + 1) +
                         ": expected an integer class label, found " + quote(fields[column]));
      if (options.sklearn_header && !sklearn.class_names.empty() &&
          (label < 0 || label >= static_cast<std::int64_t>(sklearn.class_names.size())))
        fail_at_line(path, line_number,
                     "column " + std::to_string(column + 1) + ": class label " +
                         std::to_string(label) + " is out of range 0.." +
                         std::to_string(sklearn.class_names.size() - 1) +
                         " for the classes the header names");
      labels.push_back(label);
    }
  };

  if (first_line_is_data) read_row(lines.line_number());
  while (lines.next(line)) {
    if (detail::trim(line).empty()) continue;
    split_fields(line, options.delimiter, fields);
    read_row(lines.line_number());
  }

  const std::size_t num_samples = classification ? labels.size() : targets.size();
  if (num_samples == 0) detail::fail(path, "no data rows after the header");
  if (options.sklearn_header && num_samples != static_cast<std::size_t>(sklearn.num_samples))
    fail_at_line(path, first_line,
                 "the header declares " + std::to_string(sklearn.num_samples) + " samples, found " +
                     std::to_string(num_samples) + " data rows");

  Dataset<T> out;
  out.name = path.string();
  out.features = ConstMatrixMap<T>(features.data(), static_cast<Index>(num_features),
                                   static_cast<Index>(num_samples));
  out.targets.resize(1, static_cast<Index>(num_samples));
  if (!classification) {
    for (std::size_t i = 0; i < num_samples; ++i)
      out.targets(0, static_cast<Index>(i)) = static_cast<T>(targets[i]);
    return out;
  }
  if (options.sklearn_header && !sklearn.class_names.empty()) {
    // Labels are already class indices; the header names them.
    for (std::size_t i = 0; i < num_samples; ++i)
      out.targets(0, static_cast<Index>(i)) = static_cast<T>(labels[i]);
    out.num_classes = static_cast<int>(sklearn.class_names.size());
    out.class_names = sklearn.class_names;
    return out;
  }
  const auto encoding = detail::LabelEncoding::from_labels(labels);
  for (std::size_t i = 0; i < num_samples; ++i)
    out.targets(0, static_cast<Index>(i)) = static_cast<T>(encoding.index_of(labels[i]));
  out.num_classes = static_cast<int>(encoding.values.size());
  out.class_names = encoding.names();
  return out;
}

template Dataset<float> load_csv<float>(const std::filesystem::path&, const CsvOptions&);
template Dataset<double> load_csv<double>(const std::filesystem::path&, const CsvOptions&);

}  // namespace hesse::data
