#pragma once
// What ZeroAdamW costs each rank, computed: memory for weights, gradients and optimizer state, and
// the bytes it sends per optimizer step. The same arithmetic the implementation performs, so
// bench/bench_zero.cpp can compare it with measured figures and then extend it to rank counts
// and models this machine cannot hold.
#include <cstdint>

namespace qwen3 {

struct ZeroFootprint {
  // Memory per rank, in bytes.
  uint64_t weights = 0;    // the full parameter buffer in the storage dtype (every stage)
  uint64_t gradients = 0;  // the working gradient buffer (full, gradient dtype) plus the
                           // reduced-gradient shards
  uint64_t optimizer = 0;  // fp32 master weights, first and second moments over the rank's range
  // Communication per rank per step, in bytes sent under ring algorithms (CommStats).
  uint64_t ring_bytes_sent = 0;
  // Collective calls per step, the scalar reductions included, with the gradients reduced in one
  // collective; overlap_grad_reduce sends the same bytes as one call per bucket.
  int64_t collectives = 0;
  uint64_t total_memory() const { return weights + gradients + optimizer; }
};

// flat_size: ParamLayout::flat_size(); storage_bytes: the weights' bytes per element, 4 (CPU fp32)
// or 2 (CUDA bf16); grad_bytes: the gradients', 4 (fp32, the default) or the storage's
// (grad_dtype: bf16); micro_batches: per optimizer step (stage 2 reduce-scatters once per
// micro-batch). Gradients are reduced in their dtype, weights all-gathered in theirs.
ZeroFootprint zero_footprint(int64_t flat_size, int storage_bytes, int grad_bytes, int zero_stage,
                             int world_size, int micro_batches);

}  // namespace qwen3
