#include "io.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <system_error>

#include "hesse/core/error.hpp"

namespace hesse::data::detail {

void fail(const std::filesystem::path& path, const std::string& what) {
  throw DataError(path.string() + ": " + what);
}

void fail_at_line(const std::filesystem::path& path, std::size_t line, const std::string& what) {
  throw DataError(path.string() + ":" + std::to_string(line) + ": " + what);
}

void fail_at_offset(const std::filesystem::path& path, std::uint64_t offset,
                    const std::string& what) {
  throw DataError(path.string() + ": byte " + std::to_string(offset) + ": " + what);
}

namespace {

struct GzFileCloser {
  void operator()(gzFile file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzFileCloser>;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// gzip member header magic (RFC 1952).
bool starts_like_gzip(std::FILE* file) {
  unsigned char magic[2] = {0, 0};
  const bool gzip = std::fread(magic, 1, 2, file) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  std::rewind(file);
  return gzip;
}

// The uncompressed size recorded in a gzip file's last four bytes (modulo
// 2^32, and only of the last member): a hint for sizing the buffer, never
// trusted for bounds, and capped by deflate's largest ratio (1032:1) so that
// a corrupt trailer cannot make us allocate gigabytes up front.
std::size_t gzip_size_hint(std::FILE* file, std::uintmax_t compressed_size) {
  unsigned char trailer[4] = {0, 0, 0, 0};
  std::size_t hint = 0;
  if (std::fseek(file, -4, SEEK_END) == 0 && std::fread(trailer, 1, 4, file) == 4)
    hint = trailer[0] | trailer[1] << 8 | trailer[2] << 16 |
           static_cast<std::size_t>(trailer[3]) << 24;
  std::rewind(file);
  return static_cast<std::size_t>(std::min<std::uintmax_t>(hint, compressed_size * 1032));
}

std::string read_plain(const std::filesystem::path& path, std::FILE* file, std::uintmax_t size) {
  std::string bytes(size, '\0');
  if (std::fread(bytes.data(), 1, bytes.size(), file) != bytes.size())
    fail(path, "cannot read all " + std::to_string(size) + " bytes");
  return bytes;
}

std::string read_gzip(const std::filesystem::path& path, std::size_t size_hint) {
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) fail(path, "cannot open for reading");
  // A large internal buffer inflates a 26 MB fashion-mnist file noticeably
  // faster than zlib's 8 KiB default.
  gzbuffer(file.get(), 1u << 18);
  std::string bytes;
  bytes.resize(std::max<std::size_t>(size_hint + 1, 4096));  // +1: see the end at once
  std::size_t filled = 0;
  constexpr std::size_t kMaxChunk = 1u << 30;  // gzread takes an unsigned count
  while (true) {
    if (filled == bytes.size()) bytes.resize(bytes.size() * 2);
    const auto chunk = static_cast<unsigned>(std::min(bytes.size() - filled, kMaxChunk));
    const int got = gzread(file.get(), bytes.data() + filled, chunk);
    if (got < 0) {
      int code = 0;
      fail_at_offset(path, filled, std::string("cannot decompress: ") + gzerror(file.get(), &code));
    }
    if (got == 0) break;
    filled += static_cast<std::size_t>(got);
  }
  // gzread reports a gzip stream cut short only through gzerror.
  int code = Z_OK;
  const char* message = gzerror(file.get(), &code);
  if (code != Z_OK && code != Z_STREAM_END)
    fail_at_offset(path, filled, std::string("cannot decompress: ") + message);
  bytes.resize(filled);
  return bytes;
}

}  // namespace

std::string read_file_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail(path, "no such file");
  if (std::filesystem::is_directory(status)) fail(path, "is a directory, expected a file");
  const auto file_size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot read: " + ec.message());
  if (file_size == 0) fail(path, "empty file");

  File file(std::fopen(path.c_str(), "rb"));
  if (!file) fail(path, "cannot open for reading");
  std::string bytes = starts_like_gzip(file.get())
                          ? read_gzip(path, gzip_size_hint(file.get(), file_size))
                          : read_plain(path, file.get(), file_size);
  if (bytes.empty()) fail(path, "empty file");
  return bytes;
}

std::string quote(std::string_view text) {
  constexpr std::size_t kMaxShown = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  if (text.size() > kMaxShown) out += "...";
  return out + "'";
}

bool parse_number(std::string_view text, double& value) {
  // from_chars takes no leading '+'; strip one, but never in front of a sign.
  if (text.size() > 1 && text.front() == '+' && text[1] != '-') text.remove_prefix(1);
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

bool parse_integer(std::string_view text, std::int64_t& value) {
  if (text.size() > 1 && text.front() == '+' && text[1] != '-') text.remove_prefix(1);
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kBlank = " \t\r\n\v\f";
  const auto first = text.find_first_not_of(kBlank);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(kBlank);
  return text.substr(first, last - first + 1);
}

bool LineReader::next(std::string_view& line) {
  if (position_ >= text_.size()) return false;
  auto end = text_.find('\n', position_);
  if (end == std::string_view::npos) end = text_.size();
  line = text_.substr(position_, end - position_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  position_ = end + 1;
  ++line_number_;
  return true;
}

LabelEncoding LabelEncoding::from_labels(std::vector<std::int64_t> labels) {
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  return LabelEncoding{std::move(labels)};
}

int LabelEncoding::index_of(std::int64_t label) const {
  const auto it = std::lower_bound(values.begin(), values.end(), label);
  HESSE_ASSERT(it != values.end() && *it == label, "label missing from its own encoding");
  return static_cast<int>(it - values.begin());
}

std::vector<std::string> LabelEncoding::names() const {
  std::vector<std::string> out;
  out.reserve(values.size());
  for (const auto value : values) out.push_back(std::to_string(value));
  return out;
}

bool is_integer_label(double value, std::int64_t& label) {
  // 2^53: beyond it doubles no longer hold every integer, and no data set has
  // that many classes.
  constexpr double kLimit = 9007199254740992.0;
  if (!std::isfinite(value) || std::abs(value) > kLimit || std::floor(value) != value) return false;
  label = static_cast<std::int64_t>(value);
  return true;
}

}  // namespace hesse::data::detail
