// Files that are either completely written or not changed at all.
#pragma once

#include <string>
#include <string_view>

namespace hesse {

/// Writes `bytes` to `path` atomically: into a temporary file in the same
/// directory, flushed to disk (fsync), then renamed over `path`. A crash
/// leaves the old file (or none) intact, never a torn one. Throws DataError
/// naming the path and the system's reason.
void write_file_atomically(const std::string& path, std::string_view bytes);

/// The whole file; throws DataError naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace hesse
