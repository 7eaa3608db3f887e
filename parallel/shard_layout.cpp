#include "parallel/shard_layout.h"

#include "core/util/error.h"

namespace qwen3 {

ShardLayout::ShardLayout(int64_t flat_size_, int world_size_, int rank_)
    : flat_size(flat_size_), world_size(world_size_), rank(rank_) {
  QWEN3_CHECK(world_size >= 1, "ZeRO needs at least one rank, got {}", world_size);
  QWEN3_CHECK(rank >= 0 && rank < world_size, "rank {} is outside [0, {})", rank, world_size);
  QWEN3_CHECK(flat_size >= 0, "flat buffer size {} is negative", flat_size);
  const int64_t multiple = flat_multiple(world_size);
  padded_size = (flat_size + multiple - 1) / multiple * multiple;
  shard_size = padded_size / world_size;
}

}  // namespace qwen3
