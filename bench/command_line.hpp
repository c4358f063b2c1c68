// Command-line parsing shared by the benchmark programs: CLI11 set up the way
// bench/run_* and the docs call them. A bad option prints one line naming it
// ("bench_training: --epochs: needs a positive integer, got '0'") and exits
// with status 2; --help prints the options and exits 0; an option given twice
// keeps its last value. The validators below read numbers as the programs'
// earlier hand-written parsers did and hand CLI11 the canonical decimal text:
// CLI11 itself reads integers in base 0, where "010" would be 8.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

namespace hesse::bench {

/// Sets up `app` (constructed with the program's name): options show their
/// defaults in --help and keep their last value when repeated, and a parse
/// error is one line "NAME: message" and a pointer to --help.
inline void configure(CLI::App& app) {
  app.option_defaults()->always_capture_default()->multi_option_policy(
      CLI::MultiOptionPolicy::TakeLast);
  app.failure_message([](const CLI::App* a, const CLI::Error& e) {
    return a->get_name() + ": " + e.what() + "\nRun with --help for more information.\n";
  });
}

/// Parses argv: prints help and exits 0 on --help, prints the error and exits
/// 2 on a bad option.
inline void parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
}

/// A usage error found after parsing (a bad combination of options, a bad
/// entry inside a value): the same form as CLI11's, status 2.
[[noreturn]] inline void usage_error(const std::string& program, const std::string& message) {
  std::cerr << program << ": " << message << "\nRun with --help for more information.\n";
  std::exit(2);
}

/// Whether the whole of `text` is a number for strtod ("30", "1e-3"); its value in `v`.
inline bool read_number(const std::string& text, double& v) {
  char* end = nullptr;
  v = std::strtod(text.c_str(), &end);
  return end != text.c_str() && *end == '\0';
}

/// A number > 0 and at most `at_most` (then "must be in (0, at_most]").
inline CLI::Validator positive_number(double at_most = std::numeric_limits<double>::infinity()) {
  return CLI::Validator(
      [at_most](std::string& text) -> std::string {
        double v = 0;
        if (!read_number(text, v) || !(v > 0)) return "needs a positive number, got '" + text + "'";
        if (v > at_most) {
          std::ostringstream bound;
          bound << at_most;
          return "must be in (0, " + bound.str() + "]";
        }
        return {};
      },
      "");
}

/// A whole number > 0 read as a number ("300", "1e3", "20.0").
inline CLI::Validator positive_whole_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (!read_number(text, v) || !(v > 0) || v != std::floor(v) || v >= 0x1p63)
          return "needs a positive integer, got '" + text + "'";
        text = std::to_string(static_cast<long long>(v));
        return {};
      },
      "");
}

/// An integer >= `min`, read by strtoll in base 10 over the whole text.
inline CLI::Validator integer(long long min = std::numeric_limits<long long>::min()) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(text.c_str(), &end, 10);
        if (end == text.c_str() || *end != '\0' || errno == ERANGE || v < min) {
          const std::string what = min == 1 ? "a positive integer"
                                   : min == std::numeric_limits<long long>::min()
                                       ? "an integer"
                                       : "an integer >= " + std::to_string(min);
          return "needs " + what + ", got '" + text + "'";
        }
        text = std::to_string(v);
        return {};
      },
      "");
}

/// A seed: an unsigned integer read by strtoull in base 10 over the whole text.
inline CLI::Validator seed() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        if (end == text.c_str() || *end != '\0' || errno == ERANGE)
          return "needs an unsigned integer, got '" + text + "'";
        text = std::to_string(v);
        return {};
      },
      "");
}

}  // namespace hesse::bench
