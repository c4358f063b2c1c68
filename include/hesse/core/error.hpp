// Errors. Bad configuration, shapes or input files raise an exception whose
// message names what was wrong and where; the CLI prints it on one line and
// exits with code 2. Broken internal invariants are assertions with file and
// line (HESSE_ASSERT), never silent.
#pragma once

#include <stdexcept>
#include <string>

namespace hesse {

/// Invalid argument, option, or shape passed by the caller.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Malformed or unreadable input file. `what()` names the file and the line or
/// byte offset where reading failed, and what was expected there.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void assertion_failed(const char* expression, const char* file, int line,
                                   const std::string& message);

}  // namespace hesse

#define HESSE_ASSERT(condition, message)                                          \
  do {                                                                            \
    if (!(condition)) ::hesse::assertion_failed(#condition, __FILE__, __LINE__, message); \
  } while (false)

/// Throws hesse::InvalidArgument with `message` unless `condition` holds.
#define HESSE_REQUIRE(condition, message)                                   \
  do {                                                                      \
    if (!(condition)) throw ::hesse::InvalidArgument(message);              \
  } while (false)
