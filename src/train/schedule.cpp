#include "hesse/train/schedule.hpp"

#include <cmath>
#include <numbers>
#include <sstream>
#include <vector>

#include "hesse/core/error.hpp"

namespace hesse::train {

void Schedule::validate() const {
  HESSE_REQUIRE(warmup_steps >= 0,
                "Schedule.warmup_steps = " + std::to_string(warmup_steps) + ": must be >= 0");
  HESSE_REQUIRE(warmup_start_factor > 0 && warmup_start_factor <= 1,
                "Schedule.warmup_start_factor = " + std::to_string(warmup_start_factor) +
                    ": must be in (0, 1]");
  HESSE_REQUIRE(step_size > 0, "Schedule.step_size = " + std::to_string(step_size) + ": must be positive");
  HESSE_REQUIRE(gamma > 0 && gamma <= 1,
                "Schedule.gamma = " + std::to_string(gamma) + ": must be in (0, 1]");
  HESSE_REQUIRE(total_steps >= 0,
                "Schedule.total_steps = " + std::to_string(total_steps) + ": must be >= 0");
  HESSE_REQUIRE(min_factor >= 0 && min_factor <= 1,
                "Schedule.min_factor = " + std::to_string(min_factor) + ": must be in [0, 1]");
}

double Schedule::factor(Index step) const {
  if (step < warmup_steps) {
    const double t = double(step) / double(warmup_steps);
    return warmup_start_factor + (1 - warmup_start_factor) * t;
  }
  const Index s = step - warmup_steps;
  switch (kind) {
    case ScheduleKind::Constant: return 1.0;
    case ScheduleKind::Step: return std::pow(gamma, double(s / step_size));
    case ScheduleKind::Cosine: {
      if (total_steps <= 0) return 1.0;
      const Index decay = std::max<Index>(1, total_steps - warmup_steps);
      const double t = std::min(1.0, double(s) / double(decay));
      return min_factor + (1 - min_factor) * 0.5 * (1 + std::cos(std::numbers::pi * t));
    }
  }
  return 1.0;
}

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, sep);) parts.push_back(part);
  if (!text.empty() && text.back() == sep) parts.emplace_back();
  return parts;
}

double number(const std::string& text, const std::string& part, const std::string& what) {
  try {
    std::size_t used = 0;
    const double v = std::stod(part, &used);
    if (used == part.size()) return v;
  } catch (const std::exception&) {
  }
  throw InvalidArgument("schedule '" + text + "': " + what + " '" + part + "' is not a number");
}

}  // namespace

Schedule parse_schedule(const std::string& text) {
  Schedule s;
  const auto items = split(text, ',');
  HESSE_REQUIRE(!items.empty() && !items[0].empty(), "schedule: empty text");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto fields = split(items[i], ':');
    const std::string& name = fields.empty() ? items[i] : fields[0];
    if (i > 0) {
      HESSE_REQUIRE(name == "warmup" && fields.size() == 2,
                    "schedule '" + text + "': expected ',warmup:STEPS' after the schedule, got '" +
                        items[i] + "'");
      const double w = number(text, fields[1], "warm-up steps");
      HESSE_REQUIRE(w >= 0 && w == std::floor(w),
                    "schedule '" + text + "': warm-up steps must be a whole number >= 0");
      s.warmup_steps = Index(w);
      continue;
    }
    if (name == "constant" && fields.size() == 1) {
      s.kind = ScheduleKind::Constant;
    } else if (name == "step" && fields.size() == 3) {
      s.kind = ScheduleKind::Step;
      const double size = number(text, fields[1], "step size");
      HESSE_REQUIRE(size >= 1 && size == std::floor(size),
                    "schedule '" + text + "': step size must be a whole number >= 1");
      s.step_size = Index(size);
      s.gamma = number(text, fields[2], "gamma");
    } else if (name == "cosine" && (fields.size() == 1 || fields.size() == 2)) {
      s.kind = ScheduleKind::Cosine;
      if (fields.size() == 2) s.min_factor = number(text, fields[1], "minimum factor");
    } else {
      throw InvalidArgument("schedule '" + text +
                            "': expected constant, step:SIZE:GAMMA, cosine or cosine:MIN, "
                            "optionally followed by ,warmup:STEPS");
    }
  }
  s.validate();
  return s;
}

std::string to_string(const Schedule& s) {
  std::ostringstream out;
  switch (s.kind) {
    case ScheduleKind::Constant: out << "constant"; break;
    case ScheduleKind::Step: out << "step:" << s.step_size << ":" << s.gamma; break;
    case ScheduleKind::Cosine: out << "cosine"; if (s.min_factor > 0) out << ":" << s.min_factor; break;
  }
  if (s.warmup_steps > 0) out << ",warmup:" << s.warmup_steps;
  return out.str();
}

}  // namespace hesse::train
