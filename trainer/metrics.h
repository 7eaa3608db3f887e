#pragma once
// What a run reports: one JSON object per step (and per evaluation) in <output_dir>/metrics.jsonl,
// for tools and plots (launch/qwen3-plot-metrics), and a progress line for people.
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/model/config.h"

namespace qwen3 {

// Rank 0's metrics file. Opening it for a run that resumes at `resume_step` drops the lines of
// steps after it (logged by the interrupted attempt, which the resumed run repeats) and a torn
// last line, so the file holds each step once.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Appends one line (a JSON object's text, without the newline) and flushes it.
  void append(const std::string& json_object);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Training FLOPs per token of a forward and backward pass at `seq_len`: 6 per weight of every
// matrix multiply (the LM head included, the embedding lookup not), plus attention's score and
// value products over the whole T x T square, 12 · layers · heads · head_dim · seq_len: the PaLM
// paper's MFU accounting (6N + 12LHQT), which torchtitan also uses, so MFU figures compare with
// theirs. Causal masking halves the attention work actually done; the formula does not.
double train_flops_per_token(const ModelConfig& config, int64_t seq_len);

// "1h02m", "3m05s", "42s"; "?" for a negative or non-finite time.
std::string format_duration(double seconds);

}  // namespace qwen3
