#include "hesse/linesearch/line_search.hpp"

#include <cmath>
#include <sstream>

#include "hesse/core/error.hpp"

namespace hesse::linesearch {

const char* to_string(LineSearchKind kind) {
  switch (kind) {
    case LineSearchKind::Armijo: return "armijo";
    case LineSearchKind::StrongWolfe: return "strong-wolfe";
  }
  return "unknown";
}

LineSearchKind parse_line_search(const std::string& name) {
  if (name == "armijo") return LineSearchKind::Armijo;
  if (name == "strong-wolfe") return LineSearchKind::StrongWolfe;
  throw InvalidArgument("unknown line search '" + name + "': expected one of armijo, strong-wolfe");
}

void LineSearchOptions::validate(const std::string& owner) const {
  auto require = [&](bool ok, const char* field, double value, const char* rule) {
    if (!ok) {
      std::ostringstream message;
      message << owner << "." << field << " = " << value << ": " << rule;
      throw InvalidArgument(message.str());
    }
  };
  require(kind == LineSearchKind::Armijo || kind == LineSearchKind::StrongWolfe, "kind",
          static_cast<double>(kind), "must be Armijo or StrongWolfe");
  require(sufficient_decrease > 0 && sufficient_decrease < 1, "sufficient_decrease",
          sufficient_decrease, "must be in (0, 1)");
  if (kind == LineSearchKind::StrongWolfe)
    require(curvature > sufficient_decrease && curvature < 1, "curvature", curvature,
            "must be in (sufficient_decrease, 1) for the strong Wolfe conditions");
  require(max_trials >= 1, "max_trials", max_trials, "must be >= 1");
  require(std::isfinite(min_step) && min_step > 0, "min_step", min_step, "must be finite and > 0");
  require(std::isfinite(max_step) && max_step > min_step, "max_step", max_step,
          "must be finite and > min_step");
}

}  // namespace hesse::linesearch
