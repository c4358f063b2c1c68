// Shared by the tests of bad input: what an InvalidArgument said.
#pragma once

#include <string>

#include "hesse/core/error.hpp"

namespace hesse::testing {

/// The InvalidArgument message of `make`, or "" when it did not throw one.
template <class Make>
std::string invalid_argument_message(Make make) {
  try {
    make();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

}  // namespace hesse::testing
