#include "trainer/stage_report.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

namespace qwen3 {

StageReport::StageReport(const RunConfig& run, size_t stage_index, int world_size,
                         double peak_flops_per_device, std::function<void(const std::string&)> say,
                         MetricsLog* metrics, double& seconds_per_token)
    : run_(run),
      stage_(run.stages[stage_index]),
      stage_index_(stage_index),
      world_(world_size),
      peak_flops_(peak_flops_per_device),
      say_(std::move(say)),
      metrics_(metrics),
      seconds_per_token_(seconds_per_token),
      flops_per_token_(train_flops_per_token(run.model_config, stage_.seq_len)) {
  for (size_t later = stage_index + 1; later < run.stages.size(); ++later)
    tokens_after_ += run.stages[later].steps * run.stages[later].batch_tokens;
}

void StageReport::record(const TrainerState& state, const StepRecord& step) {
  const StepResult& r = step.result;
  if (std::isfinite(r.loss) && std::isfinite(r.grad_norm)) {
    if (first_losses_.size() < kLossWindow) first_losses_.push_back(r.loss);
    last_losses_.push_back(r.loss);
    if (last_losses_.size() > kLossWindow) last_losses_.erase(last_losses_.begin());
  }
  const double spt = step.seconds / double(stage_.batch_tokens);
  // Smoothed over about ten steps; the first step (allocation, page cache) is discarded.
  seconds_per_token_ = seconds_per_token_ == 0 ? (state.stage_step > 1 ? spt : 0)
                                               : 0.9 * seconds_per_token_ + 0.1 * spt;
  if (!metrics_) return;
  const nlohmann::json j = {{"kind", "train"},
                            {"stage", state.stage + 1},
                            {"stage_name", stage_.name},
                            {"step", state.global_step},
                            {"stage_step", state.stage_step},
                            {"loss", r.loss},
                            {"lr", step.lr},
                            {"grad_norm", r.grad_norm},
                            {"clip_coef", r.clip_coef},
                            {"tokens", state.tokens_seen},
                            {"step_tokens", r.tokens},
                            {"tokens_per_s", double(stage_.batch_tokens) / step.seconds},
                            {"step_seconds", step.seconds},
                            {"skipped", r.skipped}};
  metrics_->append(j.dump());
}

void StageReport::progress(const TrainerState& state, const StepRecord& step) const {
  if (state.stage_step % run_.log_interval != 0 && state.stage_step != 1 &&
      state.stage_step != stage_.steps)
    return;
  const StepResult& r = step.result;
  const double tokens_per_s = double(stage_.batch_tokens) / step.seconds;
  const double remaining =
      double((stage_.steps - state.stage_step) * stage_.batch_tokens + tokens_after_);
  const double achieved = flops_per_token_ * tokens_per_s / world_;
  std::string line = fmt::format(
      "[{} {}/{}] step {}/{} | loss {:.4f} | lr {:.3e} | gnorm {:.3f} | {:.0f} tok/s | "
      "{:.2f} TFLOP/s per rank",
      stage_.name, stage_index_ + 1, run_.stages.size(), state.stage_step, stage_.steps, r.loss,
      step.lr, r.grad_norm, tokens_per_s, achieved / 1e12);
  if (peak_flops_ > 0) line += fmt::format(" | MFU {:.1f}%", 100.0 * achieved / peak_flops_);
  line +=
      " | ETA " + format_duration(seconds_per_token_ > 0 ? remaining * seconds_per_token_ : -1.0);
  say_(line);
}

std::string StageReport::loss_summary() const {
  if (first_losses_.empty()) return "";
  const auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v)
      sum += x;
    return sum / double(v.size());
  };
  return fmt::format(
      "; training loss {:.4f} (mean of its first {} steps here) -> {:.4f} "
      "(last {})",
      mean(first_losses_), first_losses_.size(), mean(last_losses_), last_losses_.size());
}

}  // namespace qwen3
