#pragma once
// What a stage tells its user as it runs: one metrics.jsonl line per step; a progress line on its
// first and last step and every log_interval steps (loss, learning rate, gradient norm,
// throughput, MFU where the device's peak is known, ETA over the rest of the run); and the
// closing line's losses at the stage's start and end. Rank 0 writes; the others keep quiet.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "trainer/checkpoint.h"
#include "trainer/metrics.h"
#include "trainer/run_config.h"
#include "trainer/train_step.h"

namespace qwen3 {

// One finished step: what the optimizer step returned and how long the whole step took.
struct StepRecord {
  StepResult result;
  double lr = 0.0;
  double seconds = 0.0;
};

class StageReport {
 public:
  // `say` prints a line on rank 0; `metrics` is null on the other ranks. `seconds_per_token` is
  // the run's smoothed step time, kept across stages for the ETA.
  StageReport(const RunConfig& run, size_t stage_index, int world_size,
              double peak_flops_per_device, std::function<void(const std::string&)> say,
              MetricsLog* metrics, double& seconds_per_token);

  // The step's metrics line, and its loss into the stage's first and last windows. `state`: after
  // the step.
  void record(const TrainerState& state, const StepRecord& step);
  // The progress line, when this step is one that gets one.
  void progress(const TrainerState& state, const StepRecord& step) const;
  // "; training loss A (mean of its first N steps here) -> B (last M)", or "" before any step.
  std::string loss_summary() const;

 private:
  // The stage's first and most recent finite losses (of this process's steps).
  static constexpr size_t kLossWindow = 10;

  const RunConfig& run_;
  const StageConfig& stage_;
  size_t stage_index_;
  int world_;
  double peak_flops_;
  std::function<void(const std::string&)> say_;
  MetricsLog* metrics_;
  double& seconds_per_token_;
  int64_t tokens_after_ = 0;  // tokens of the stages after this one, for the ETA
  double flops_per_token_;
  std::vector<double> first_losses_, last_losses_;
};

}  // namespace qwen3
