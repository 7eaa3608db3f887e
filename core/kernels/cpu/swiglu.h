#pragma once
// The gated activation of Qwen3's MLP: h = silu(gate) ⊙ up, with silu(x) = x · sigmoid(x).
// The MLP is down(h); its projections are linear ops. gate and up are [rows, cols] with rows
// `stride` elements apart: the model keeps them side by side in one [rows, 2 · cols] buffer (one
// GEMM over the adjacent gate_proj and up_proj weights), gate = that buffer, up = it + cols,
// stride = 2 · cols.
#include <cstdint>

namespace qwen3::cpu {

// gate, up [rows, cols] (rows `stride` apart) -> h[rows, cols] (contiguous)
template <class T>
void swiglu_forward(const T* gate, const T* up, int64_t rows, int64_t cols, int64_t stride, T* h);
// dh[rows, cols] -> dgate, dup [rows, cols] (rows `stride` apart), overwritten; they may be gate
// and up themselves.
template <class T>
void swiglu_backward(const T* dh, const T* gate, const T* up, int64_t rows, int64_t cols,
                     int64_t stride, T* dgate, T* dup);

}  // namespace qwen3::cpu
