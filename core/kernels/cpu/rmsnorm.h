#pragma once
// RMSNorm as Hugging Face's Qwen3RMSNorm computes it: normalise in fp32, cast back to the storage
// dtype, then multiply by the weight. On this fp32 backend the cast is the identity.
// The same op serves the per-head QK-norm: rows = tokens * heads, cols = head_dim.
#include <cstdint>

namespace qwen3::cpu {

// x[rows, cols], w[cols] -> y[rows, cols], rstd[rows] = 1 / sqrt(mean(x²) + eps)
template <class T>
void rmsnorm_forward(const T* x, const T* w, int64_t rows, int64_t cols, T eps, T* y, T* rstd);

// dx[rows, cols] = ∂L/∂x (added to dx when accumulate_dx), dw[cols] += ∂L/∂w.
template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, int64_t rows,
                      int64_t cols, T* dx, bool accumulate_dx, T* dw);

}  // namespace qwen3::cpu
