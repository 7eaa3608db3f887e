#include "parallel/zero_footprint.h"

#include "core/util/error.h"
#include "parallel/shard_layout.h"

namespace qwen3 {

ZeroFootprint zero_footprint(int64_t flat_size, int storage_bytes, int grad_bytes, int zero_stage,
                             int world_size, int micro_batches) {
  QWEN3_CHECK(zero_stage >= 0 && zero_stage <= 2, "zero_stage must be 0, 1 or 2, got {}",
              zero_stage);
  QWEN3_CHECK(micro_batches >= 1, "micro_batches must be at least 1, got {}", micro_batches);
  QWEN3_CHECK((storage_bytes == 2 || storage_bytes == 4) && (grad_bytes == 2 || grad_bytes == 4),
              "storage and gradient elements are 2 or 4 bytes, got {} and {}", storage_bytes,
              grad_bytes);
  const ShardLayout shard(flat_size, world_size, 0);
  const uint64_t padded = static_cast<uint64_t>(shard.padded_size);
  const uint64_t per_shard = static_cast<uint64_t>(shard.shard_size);
  const uint64_t s = static_cast<uint64_t>(storage_bytes), g = static_cast<uint64_t>(grad_bytes);
  const double n = world_size;
  ZeroFootprint f;
  f.weights = padded * s;
  f.gradients = padded * g;
  if (zero_stage >= 1) f.gradients += per_shard * g;  // the reduce-scatter's output
  if (zero_stage == 2) f.gradients += per_shard * 4;  // the fp32 accumulator across micro-batches
  f.optimizer = 12 * (zero_stage == 0 ? padded : per_shard);

  // Per call, as Communicator::count rounds it.
  auto ring = [&](uint64_t payload, double fraction) {
    f.collectives += 1;
    f.ring_bytes_sent += static_cast<uint64_t>(double(payload) * fraction + 0.5);
  };
  const double all_reduce = 2.0 * (n - 1) / n, gather_or_scatter = (n - 1) / n;
  // Every step: the scored-token count before the backward passes, the squared norm and the
  // loss sum after; 8 bytes each.
  for (int i = 0; i < 3; ++i)
    ring(8, all_reduce);
  if (zero_stage == 0) ring(padded * g, all_reduce);
  if (zero_stage == 1) ring(padded * g, gather_or_scatter);
  if (zero_stage == 2)
    for (int m = 0; m < micro_batches; ++m)
      ring(padded * g, gather_or_scatter);
  if (zero_stage >= 1) ring(padded * s, gather_or_scatter);  // all-gather of the new weights
  return f;
}

}  // namespace qwen3
