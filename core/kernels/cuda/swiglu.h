#pragma once
// SwiGLU's gate: h = silu(gate) ⊙ up, and its backward.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace qwen3::cuda {

// gate[n], up[n] -> h[n]
void swiglu_forward(const __nv_bfloat16* gate, const __nv_bfloat16* up, int64_t n, __nv_bfloat16* h,
                    cudaStream_t stream);
// dh[n] -> dgate[n], dup[n]
void swiglu_backward(const __nv_bfloat16* dh, const __nv_bfloat16* gate, const __nv_bfloat16* up,
                     int64_t n, __nv_bfloat16* dgate, __nv_bfloat16* dup, cudaStream_t stream);

}  // namespace qwen3::cuda
