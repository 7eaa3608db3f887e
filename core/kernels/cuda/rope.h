#pragma once
// Rotary position embedding, HF's rotate-half convention: dimension i pairs with i + head_dim/2.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace qwen3::cuda {

// x[rows, heads, head_dim], positions[rows] -> y (may alias x). backward rotates by −angle, the
// transpose of the rotation. `table`: rope_table's for these positions and theta, or null to
// compute the angles here.
void rope(const __nv_bfloat16* x, const int32_t* positions, int64_t rows, int64_t heads,
          int64_t head_dim, double theta, bool backward, __nv_bfloat16* y, cudaStream_t stream,
          const float2* table = nullptr);

// table[rows, head_dim / 2] = (sin, cos) of each token's rotary angles: made once per batch and
// read by the rotations of its forward and backward (rope, qk_norm_rope_*) in place of a powf and
// a sincosf per element, the same bits.
void rope_table(const int32_t* positions, int64_t rows, int64_t head_dim, double theta,
                float2* table, cudaStream_t stream);

}  // namespace qwen3::cuda
