#pragma once
// SwiGLU's gate: h = silu(gate) ⊙ up, and its backward. gate and up are [rows, cols] with rows
// `stride` elements apart: the model keeps them side by side in one [rows, 2 · cols] buffer, the
// output of one GEMM over the adjacent gate_proj and up_proj weights (gate = the buffer,
// up = it + cols, stride = 2 · cols).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace qwen3::cuda {

// gate, up [rows, cols] (rows `stride` apart) -> h[rows, cols]
void swiglu_forward(const __nv_bfloat16* gate, const __nv_bfloat16* up, int64_t rows, int64_t cols,
                    int64_t stride, __nv_bfloat16* h, cudaStream_t stream);
// dh[rows, cols] -> dgate, dup [rows, cols] (rows `stride` apart); they may be gate and up.
void swiglu_backward(const __nv_bfloat16* dh, const __nv_bfloat16* gate, const __nv_bfloat16* up,
                     int64_t rows, int64_t cols, int64_t stride, __nv_bfloat16* dgate,
                     __nv_bfloat16* dup, cudaStream_t stream);

}  // namespace qwen3::cuda
