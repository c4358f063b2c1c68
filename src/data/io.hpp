// Internal helpers shared by the loaders: reading a whole file (gzip or not),
// error messages that name the file and the line or byte offset, and strict
// number parsing. Nothing here is public API.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace hesse::data::detail {

/// The whole contents of `path`, decompressed when it is gzip-compressed
/// (zlib reads plain files through unchanged). Raises DataError for a missing,
/// unreadable, empty or corrupt file.
std::string read_file_bytes(const std::filesystem::path& path);

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what);
/// "<path>:<line>: <what>" for text formats (lines count from 1).
[[noreturn]] void fail_at_line(const std::filesystem::path& path, std::size_t line,
                               const std::string& what);
/// "<path>: byte <offset>: <what>" for binary formats (offsets into the
/// decompressed contents).
[[noreturn]] void fail_at_offset(const std::filesystem::path& path, std::uint64_t offset,
                                 const std::string& what);

/// `text` in single quotes for a message: at most 40 characters, control and
/// non-ASCII bytes escaped, so a binary file cannot garble the terminal.
std::string quote(std::string_view text);

/// Parses all of `text` as a decimal number (leading '+' allowed, as LIBSVM
/// labels use it). False when anything but a number is there.
bool parse_number(std::string_view text, double& value);
/// Parses all of `text` as a decimal integer (leading '+' allowed).
bool parse_integer(std::string_view text, std::int64_t& value);

std::string_view trim(std::string_view text);

/// Walks the lines of a text buffer, counting them; '\r' before '\n' is
/// dropped so Windows files read the same.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}
  bool next(std::string_view& line);
  std::size_t line_number() const { return line_number_; }

 private:
  std::string_view text_;
  std::size_t position_ = 0;
  std::size_t line_number_ = 0;
};

/// Maps integer label values seen in a text file to class indices 0..K-1 in
/// sorted order and remembers the original values as class names.
struct LabelEncoding {
  std::vector<std::int64_t> values;  ///< sorted distinct labels; index = class

  static LabelEncoding from_labels(std::vector<std::int64_t> labels);
  int index_of(std::int64_t label) const;
  std::vector<std::string> names() const;
};

/// True (and `label` set) when a classification label read as a double is a
/// whole number small enough for a double to hold exactly (|x| <= 2^53).
bool is_integer_label(double value, std::int64_t& label);

}  // namespace hesse::data::detail
