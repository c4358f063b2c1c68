// Helpers shared by the data tests: scratch files in a private temporary
// directory, fixture paths, and a check that a call raises DataError whose
// message names the file and the place.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>

#include "hesse/core/error.hpp"

namespace hesse::data::testing {

/// A fresh directory removed with its contents at the end of the test. The
/// process id keeps tests that ctest runs in parallel apart.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("hesse-data-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// Writes `contents` to `name` inside the directory and returns its path.
  std::filesystem::path write(const std::string& name, std::string_view contents) const {
    const auto file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    return file;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(HESSE_TEST_FIXTURES_DIR) / "data" / name;
}

inline std::string read_binary(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs `load` and checks that it throws DataError whose message contains
/// every one of `parts` (file name, "line:" or "byte N", what was expected).
template <class F>
void expect_data_error(F&& load, std::initializer_list<std::string> parts) {
  try {
    load();
    ADD_FAILURE() << "expected hesse::DataError, nothing was thrown";
  } catch (const hesse::DataError& e) {
    const std::string message = e.what();
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos)
          << "message lacks \"" << part << "\": " << message;
  }
}

}  // namespace hesse::data::testing
