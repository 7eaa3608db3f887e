#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace qwen3 {

namespace {

constexpr double kPi = 3.14159265358979323846;

}  // namespace

ScheduleKind parse_schedule_kind(const std::string& text) {
  if (text == "constant") return ScheduleKind::Constant;
  if (text == "cosine") return ScheduleKind::Cosine;
  if (text == "wsd") return ScheduleKind::WarmupStableDecay;
  throw_error(fmt::format("unknown schedule '{}': choose constant, cosine or wsd", text));
}

DecayShape parse_decay_shape(const std::string& text) {
  if (text == "linear") return DecayShape::Linear;
  if (text == "1-sqrt") return DecayShape::OneMinusSqrt;
  throw_error(fmt::format("unknown decay shape '{}': choose linear or 1-sqrt", text));
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::Constant:
      return "constant";
    case ScheduleKind::Cosine:
      return "cosine";
    case ScheduleKind::WarmupStableDecay:
      return "wsd";
  }
  return "?";
}

const char* decay_shape_name(DecayShape shape) {
  return shape == DecayShape::Linear ? "linear" : "1-sqrt";
}

void LrSchedule::validate(const std::string& where) const {
  const std::string at_where = where.empty() ? "" : where + ": ";
  QWEN3_CHECK(lr > 0 && std::isfinite(lr), "{}lr must be positive, got {}", at_where, lr);
  QWEN3_CHECK(min_lr >= 0 && min_lr <= lr, "{}min_lr must lie in [0, lr = {}], got {}", at_where,
              lr, min_lr);
  QWEN3_CHECK(total_steps >= 1, "{}the schedule needs at least one step, got {}", at_where,
              total_steps);
  QWEN3_CHECK(warmup_steps >= 0 && warmup_steps <= total_steps,
              "{}warmup_steps {} must lie in [0, total steps {}]", at_where, warmup_steps,
              total_steps);
  if (kind == ScheduleKind::WarmupStableDecay)
    QWEN3_CHECK(decay_steps >= 1 && decay_steps <= total_steps - warmup_steps,
                "{}decay_steps {} must lie in [1, total steps − warmup = {}]", at_where,
                decay_steps, total_steps - warmup_steps);
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return lr * double(step + 1) / double(warmup_steps);
  switch (kind) {
    case ScheduleKind::Constant:
      return lr;
    case ScheduleKind::Cosine: {
      const int64_t span = std::max<int64_t>(total_steps - warmup_steps, 1);
      const double progress = std::min(1.0, double(step - warmup_steps) / double(span));
      return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(kPi * progress));
    }
    case ScheduleKind::WarmupStableDecay: {
      const int64_t decay_start = total_steps - decay_steps;
      if (step < decay_start) return lr;
      const double progress = std::min(1.0, double(step - decay_start) / double(decay_steps));
      const double fraction =
          decay_shape == DecayShape::Linear ? 1.0 - progress : 1.0 - std::sqrt(progress);
      return min_lr + (lr - min_lr) * fraction;
    }
  }
  return lr;
}

}  // namespace qwen3
