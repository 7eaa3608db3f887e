#pragma once
// What the attention forward and backward launchers share: the score scaling (both must see the
// same scores, bit for bit), the argument checks, and the dispatch over the supported head_dims.
// Their device-side pieces are in attention_tiles.cuh.
#include <cmath>
#include <type_traits>

#include "core/kernels/cuda/attention.h"
#include "core/util/error.h"

namespace qwen3::cuda {

constexpr float kLog2e = 1.4426950408889634f;

// 1/sqrt(head_dim) in log2 units: the kernels take exp2f of scaled scores.
inline float attention_score_scale_log2(int64_t head_dim) {
  return 1.f / std::sqrt(static_cast<float>(head_dim)) * kLog2e;
}

// `op` names the caller in the messages.
inline void check_attention_dims(const char* op, const AttentionDims& d) {
  QWEN3_CHECK(d.batch > 0 && d.seq > 0 && d.q_heads > 0 && d.kv_heads > 0 && d.head_dim > 0,
              "{}: sizes must be positive (batch {}, seq {}, q_heads {}, kv_heads {}, head_dim {})",
              op, d.batch, d.seq, d.q_heads, d.kv_heads, d.head_dim);
  QWEN3_CHECK(d.q_heads % d.kv_heads == 0, "{}: q_heads {} is not a multiple of kv_heads {}", op,
              d.q_heads, d.kv_heads);
  QWEN3_CHECK(d.head_dim == 16 || d.head_dim == 32 || d.head_dim == 64 || d.head_dim == 128 ||
                  d.head_dim == 256,
              "{}: head_dim {} is not supported (supported: 16, 32, 64, 128, 256)", op, d.head_dim);
}

// Calls launch(std::integral_constant<int, HEAD_DIM>{}) for a head_dim check_attention_dims
// accepted.
template <class Launch>
void dispatch_head_dim(int64_t head_dim, Launch&& launch) {
  switch (head_dim) {
    case 16:
      return launch(std::integral_constant<int, 16>{});
    case 32:
      return launch(std::integral_constant<int, 32>{});
    case 64:
      return launch(std::integral_constant<int, 64>{});
    case 128:
      return launch(std::integral_constant<int, 128>{});
    default:  // 256, the only other value the check allows
      return launch(std::integral_constant<int, 256>{});
  }
}

}  // namespace qwen3::cuda
