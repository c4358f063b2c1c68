#include "hesse/objective/derivative_check.hpp"

#include <cstdio>
#include <numeric>
#include <sstream>

namespace hesse {

void DerivativeCheckOptions::validate() const {
  auto fail = [](const char* field, const std::string& value, const char* rule) {
    throw InvalidArgument(std::string("DerivativeCheckOptions::") + field + " = " + value +
                          ": " + rule);
  };
  if (!(std::isfinite(step) && step >= 0))
    fail("step", derivative_check_detail::format_number(step),
         "must be finite and >= 0 (0 = automatic)");
  if (!(std::isfinite(tolerance) && tolerance > 0))
    fail("tolerance", derivative_check_detail::format_number(tolerance),
         "must be finite and > 0");
  if (num_directions < 1)
    fail("num_directions", std::to_string(num_directions), "must be >= 1");
  if (max_coordinates < 1)
    fail("max_coordinates", std::to_string(max_coordinates), "must be >= 1");
}

bool DerivativeCheckReport::passed() const {
  return std::all_of(entries.begin(), entries.end(),
                     [](const CheckEntry& entry) { return entry.passed; });
}

double DerivativeCheckReport::worst_error() const {
  double worst = 0;
  for (const CheckEntry& entry : entries) worst = std::max(worst, entry.error);
  return worst;
}

std::string DerivativeCheckReport::report() const {
  std::string out;
  for (const CheckEntry& entry : entries) {
    char line[96];
    std::snprintf(line, sizeof line, "%-22s %s  error %-10s  ", entry.name.c_str(),
                  entry.passed ? "PASS" : "FAIL",
                  derivative_check_detail::format_number(entry.error).c_str());
    out += line;
    out += entry.detail;
    out += '\n';
  }
  return out;
}

namespace derivative_check_detail {

double relative_error(double a, double b, double floor) {
  const double error = std::abs(a - b) / std::max({std::abs(a), std::abs(b), floor});
  return std::isfinite(error) ? error : std::numeric_limits<double>::infinity();
}

CheckEntry make_entry(std::string name, double error, double tolerance, std::string detail) {
  return CheckEntry{std::move(name), error, error <= tolerance, std::move(detail)};
}

CheckEntry size_mismatch(std::string name, const char* what, Index got, Index expected) {
  return CheckEntry{std::move(name), std::numeric_limits<double>::infinity(), false,
                    std::string(what) + " has " + std::to_string(got) + " entries, expected " +
                        std::to_string(expected)};
}

void require_dimension(const char* check, Index x_size, Index dimension) {
  if (x_size != dimension)
    throw InvalidArgument(std::string(check) + ": x has " + std::to_string(x_size) +
                          " entries but the objective's dimension() is " +
                          std::to_string(dimension));
}

std::vector<Index> coordinates_to_check(Index n, Index max_coordinates, Rng& rng) {
  std::vector<Index> all(static_cast<std::size_t>(n));
  std::iota(all.begin(), all.end(), Index{0});
  if (n <= max_coordinates) return all;
  // Partial Fisher-Yates: the first max_coordinates entries are a uniform sample.
  for (Index i = 0; i < max_coordinates; ++i) {
    std::uniform_int_distribution<Index> pick(i, n - 1);
    std::swap(all[static_cast<std::size_t>(i)], all[static_cast<std::size_t>(pick(rng))]);
  }
  all.resize(static_cast<std::size_t>(max_coordinates));
  std::sort(all.begin(), all.end());
  return all;
}

std::string format_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3e", value);
  return buffer;
}

}  // namespace derivative_check_detail
}  // namespace hesse
