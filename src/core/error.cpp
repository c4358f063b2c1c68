#include "hesse/core/error.hpp"

#include <cstdio>
#include <cstdlib>

namespace hesse {

void assertion_failed(const char* expression, const char* file, int line,
                      const std::string& message) {
  std::fprintf(stderr, "hesse: internal error at %s:%d: %s (%s)\n", file, line, message.c_str(),
               expression);
  std::abort();
}

}  // namespace hesse
