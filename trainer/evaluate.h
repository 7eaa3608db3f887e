#pragma once
// Evaluation: the mean next-token loss of a model over one full pass of an EvalLoader, forward
// only, summed over ranks. Besides the total, the loss is broken down by position within the
// window, in buckets of a fixed width, to show how well the model uses long context.
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/qwen3_model.h"
#include "dataloader/eval_loader.h"
#include "parallel/communicator.h"

namespace qwen3 {

struct EvalResult {
  std::string name;                     // the source; evaluate() leaves it to the caller
  int64_t samples = 0;                  // windows evaluated (padding rows excluded)
  int64_t tokens = 0;                   // scored tokens
  double loss_sum = 0.0;                // nats, summed over scored tokens
  int64_t bucket_width = 0;             // positions per bucket (0: no buckets)
  std::vector<double> bucket_loss_sum;  // [num buckets] by position within the window
  std::vector<int64_t> bucket_tokens;   // [num buckets]

  double loss() const;        // mean over scored tokens; 0 when none were scored
  double perplexity() const;  // exp(loss())
  // Mean loss of bucket b; 0 when it scored nothing.
  double bucket_loss(size_t b) const;
};

// One full pass of `loader` (restarted first, so a pass abandoned earlier does not matter), forward
// only. This rank's rows of each batch go through the model in micro-batches of at most
// `micro_batch` rows; padding rows are not run. Every sum is reduced over ranks with `host_comm`,
// so every rank returns the totals. `bucket_width` > 0 splits positions 0 .. seq_len-1 of the
// window into buckets [b·w, (b+1)·w); 0 keeps only the totals. `document_attention` keeps the
// loader's per-document positions and attention mask, as a stage with document_attention trains;
// otherwise each window is one causal sequence.
EvalResult evaluate(Qwen3Model& model, EvalLoader& loader, Communicator& host_comm,
                    int64_t micro_batch, int64_t bucket_width, bool document_attention);

}  // namespace qwen3
