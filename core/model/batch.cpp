#include "core/model/batch.h"

#include <cstddef>

#include "core/util/error.h"

namespace qwen3 {

Batch batch_rows(const Batch& batch, int64_t first, int64_t count, bool keep_documents) {
  QWEN3_CHECK(first >= 0 && count >= 0 && first + count <= batch.batch,
              "rows [{}, {}) are outside the batch's {} rows", first, first + count, batch.batch);
  Batch out;
  out.batch = count;
  out.seq = batch.seq;
  const auto begin = static_cast<size_t>(first * batch.seq);
  const auto end = static_cast<size_t>((first + count) * batch.seq);
  auto cut = [&](const std::vector<int32_t>& from, std::vector<int32_t>& to) {
    if (!from.empty()) to.assign(from.begin() + begin, from.begin() + end);
  };
  cut(batch.tokens, out.tokens);
  cut(batch.labels, out.labels);
  cut(batch.targets, out.targets);
  if (keep_documents) {
    cut(batch.positions, out.positions);
    cut(batch.doc_ids, out.doc_ids);
  }
  return out;
}

int64_t count_scored_tokens(const Batch& b) {
  int64_t scored = 0;
  if (!b.targets.empty()) {
    for (int32_t t : b.targets)
      scored += t != kIgnoreIndex;
    return scored;
  }
  // HF's shift: position t is scored on labels[t + 1], so a row's first label is never used.
  for (int64_t r = 0; r < b.batch; ++r)
    for (int64_t t = 1; t < b.seq; ++t)
      scored += b.labels[static_cast<size_t>(r * b.seq + t)] != kIgnoreIndex;
  return scored;
}

}  // namespace qwen3
