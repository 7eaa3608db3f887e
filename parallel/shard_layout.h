#pragma once
// ZeRO's split of the flat parameter buffer (and of the gradient and optimizer buffers at the
// same offsets) into one contiguous shard per rank.
//
// The flat buffer is padded at its end to a multiple of world_size · kShardAlignElements, so any
// rank count divides it, odd ones included, and every shard starts 256-byte aligned. The padding
// is zero in parameters and gradients, so it never changes the optimizer's result or the norm.
#include <cstdint>

namespace qwen3 {

struct ShardLayout {
  // 64 elements: 256 bytes in fp32, 128 in bf16; vector loads of every shard start aligned.
  static constexpr int64_t kShardAlignElements = 64;

  ShardLayout(int64_t flat_size, int world_size, int rank);

  // The multiple Qwen3Model's flat buffers are rounded up to for `world_size` ranks.
  static int64_t flat_multiple(int world_size) { return world_size * kShardAlignElements; }

  int64_t flat_size = 0;    // elements that hold parameters (with the model's own alignment gaps)
  int64_t padded_size = 0;  // flat_size rounded up to flat_multiple(world_size)
  int64_t shard_size = 0;   // padded_size / world_size
  int world_size = 1;
  int rank = 0;
  int64_t begin() const { return shard_size * rank; }  // this rank's shard: [begin, end)
  int64_t end() const { return begin() + shard_size; }
};

}  // namespace qwen3
