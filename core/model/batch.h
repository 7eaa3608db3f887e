#pragma once
// One micro-batch as the host holds it, and what the loader, the trainer and the model ask of it.
// Its own header so that the loader, which makes batches, need not include the model.
#include <cstdint>
#include <vector>

namespace qwen3 {

// HF's ignore index: labels equal to it contribute no loss.
constexpr int32_t kIgnoreIndex = -100;

// One micro-batch on the host, row-major [batch, seq].
struct Batch {
  int64_t batch = 0;
  int64_t seq = 0;
  std::vector<int32_t> tokens;
  // Labels aligned with tokens, as HF takes them; the model shifts them by one, so position t is
  // scored on labels[t + 1] and the last position on nothing. kIgnoreIndex masks a label.
  std::vector<int32_t> labels;
  // Instead of labels: next-token targets already shifted, so position t is scored on targets[t]
  // (kIgnoreIndex: not scored). The loader gives these, from windows of seq + 1 tokens, so the
  // last position is scored too. Exactly one of labels and targets is set.
  std::vector<int32_t> targets;
  // Optional. Empty means 0 .. seq-1 in every row. Restarting at document starts is the loader's
  // choice.
  std::vector<int32_t> positions;
  // Optional. Empty means plain causal attention; otherwise attention stays within equal ids.
  std::vector<int32_t> doc_ids;
};

// Positions that forward() will score: targets, or labels after HF's shift, not equal to
// kIgnoreIndex. Data-parallel training sums this over ranks before the backward pass to normalise
// the loss by the global token count.
int64_t count_scored_tokens(const Batch& batch);

// Rows [first, first + count) of `batch` as a batch of their own (a micro-batch). Positions and
// document ids are kept only with `keep_documents`; without them the rows are plain causal
// sequences.
Batch batch_rows(const Batch& batch, int64_t first, int64_t count, bool keep_documents);

}  // namespace qwen3
