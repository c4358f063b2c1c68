// Learning-rate schedules: the factor the base learning rate is multiplied
// by at each step, as torch.optim.lr_scheduler's StepLR, CosineAnnealingLR
// and LinearLR warm-up.
#pragma once

#include <string>

#include "hesse/core/types.hpp"

namespace hesse::train {

enum class ScheduleKind {
  Constant,  ///< factor 1
  Step,      ///< gamma^(floor(step / step_size))
  Cosine,    ///< min_factor + (1 - min_factor) (1 + cos(pi step / total_steps)) / 2
};

struct Schedule {
  ScheduleKind kind = ScheduleKind::Constant;
  Index warmup_steps = 0;     ///< linear warm-up from warmup_start_factor to 1 first
  double warmup_start_factor = 0.01;
  Index step_size = 1000;     ///< Step: steps between decays
  double gamma = 0.1;         ///< Step: decay factor
  Index total_steps = 0;      ///< Cosine: length of the decay (0: fit() sets it to the run's steps)
  double min_factor = 0.0;    ///< Cosine: final factor

  void validate() const;
  /// The factor at step `step` (0-based). Warm-up comes first; the decay
  /// counts its steps from the end of the warm-up.
  double factor(Index step) const;
};

/// Parses "constant", "step:SIZE:GAMMA", "cosine" or "cosine:MIN", each
/// optionally followed by ",warmup:STEPS" (e.g. "cosine,warmup:500");
/// throws InvalidArgument naming the bad part.
Schedule parse_schedule(const std::string& text);
std::string to_string(const Schedule& schedule);

}  // namespace hesse::train
