#include "bulwark/defenses/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/check.h"

namespace bulwark {

ScheduleKind parse_schedule(std::string_view text) {
  if (text == "constant") return ScheduleKind::Constant;
  if (text == "cosine") return ScheduleKind::Cosine;
  if (text == "multistep") return ScheduleKind::MultiStep;
  if (text == "one-cycle") return ScheduleKind::OneCycle;
  throw Error(fmt::format(
      "learning-rate schedule must be constant, cosine, multistep or one-cycle, got '{}'", text));
}

std::string to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::Constant: return "constant";
    case ScheduleKind::Cosine: return "cosine";
    case ScheduleKind::MultiStep: return "multistep";
    case ScheduleKind::OneCycle: return "one-cycle";
  }
  return "unknown";
}

void ScheduleOptions::validate() const {
  BULWARK_CHECK(gamma_ > 0 && gamma_ <= 1, "schedule: gamma must lie in (0, 1], got {}", gamma_);
  BULWARK_CHECK(peak_ > 0 && peak_ < 1, "schedule: peak must lie in (0, 1), got {}", peak_);
  for (const auto m : milestones_) {
    BULWARK_CHECK(m >= 0, "schedule: milestones must be epochs >= 0, got {}", m);
  }
}

double scheduled_learning_rate(const ScheduleOptions& options, double base, int64_t step,
                               int64_t total_steps, int64_t steps_per_epoch) {
  const double progress =
      total_steps > 0 ? static_cast<double>(step) / static_cast<double>(total_steps) : 0.0;
  switch (options.kind()) {
    case ScheduleKind::Constant: return base;
    case ScheduleKind::Cosine: return base * 0.5 * (1 + std::cos(std::numbers::pi * progress));
    case ScheduleKind::MultiStep: {
      const int64_t epoch = steps_per_epoch > 0 ? step / steps_per_epoch : 0;
      const int64_t epochs = steps_per_epoch > 0 ? total_steps / steps_per_epoch : 1;
      auto milestones = options.milestones();
      if (milestones.empty()) milestones = {epochs / 2, epochs * 3 / 4};
      const auto passed = std::count_if(milestones.begin(), milestones.end(),
                                        [&](int64_t m) { return m > 0 && epoch >= m; });
      return base * std::pow(options.gamma(), static_cast<double>(passed));
    }
    case ScheduleKind::OneCycle: {
      // Steps are counted from 1 so that the first step does not take a zero rate.
      const double t = total_steps > 0 ? static_cast<double>(step + 1) /
                                             static_cast<double>(total_steps)
                                       : 1.0;
      return t <= options.peak() ? base * t / options.peak()
                                 : base * std::max(0.0, (1 - t) / (1 - options.peak()));
    }
  }
  return base;
}

}  // namespace bulwark
