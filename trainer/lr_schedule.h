#pragma once
// Learning-rate schedules, as functions of the optimizer step (0-based: the step about to be
// taken). Every schedule starts with a linear warmup, lr · (step + 1) / warmup_steps, so the first
// update is small but not zero.
//
//   constant  after warmup, lr
//   cosine    after warmup, from lr down to min_lr along half a cosine, reached at total_steps
//             (Loshchilov & Hutter's SGDR shape, the GPT-3 / LLaMA recipe)
//   wsd       warmup-stable-decay: lr until the last decay_steps, then down to min_lr, linearly or
//             as 1 − √progress (Hägele et al. 2024 find the latter better); a run can be extended
//             from any stable-phase checkpoint, which is why continued pre-training uses it
// Past total_steps every schedule holds its final value.
#include <cstdint>
#include <string>

namespace qwen3 {

enum class ScheduleKind { Constant, Cosine, WarmupStableDecay };
enum class DecayShape { Linear, OneMinusSqrt };

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::Cosine;
  double lr = 3e-4;
  double min_lr = 3e-5;  // a tenth of the peak, as in the LLaMA and Chinchilla recipes
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  int64_t decay_steps = 0;  // wsd only: the length of the final decay
  DecayShape decay_shape = DecayShape::OneMinusSqrt;

  // Throws, naming the field, for an impossible schedule. `where` prefixes messages (a YAML key).
  void validate(const std::string& where) const;
  double at(int64_t step) const;
};

// "constant", "cosine", "wsd" / "linear", "1-sqrt"; throws listing the choices otherwise.
ScheduleKind parse_schedule_kind(const std::string& text);
DecayShape parse_decay_shape(const std::string& text);
// The names those parse: what run files and logs say.
const char* schedule_kind_name(ScheduleKind kind);
const char* decay_shape_name(DecayShape shape);

}  // namespace qwen3
