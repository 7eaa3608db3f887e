#pragma once
// Rotary position embedding, HF's rotate-half convention: dimension i pairs with i + head_dim/2.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace qwen3::cuda {

// x[rows, heads, head_dim], positions[rows] -> y (may alias x). backward rotates by −angle, the
// transpose of the rotation.
void rope(const __nv_bfloat16* x, const int32_t* positions, int64_t rows, int64_t heads,
          int64_t head_dim, double theta, bool backward, __nv_bfloat16* y, cudaStream_t stream);

}  // namespace qwen3::cuda
