#pragma once
// Qwen3's query/key preparation as one op: the per-head RMSNorm over head_dim (QK-norm, one
// weight shared by all heads), then rotary embedding of the normalised head.
//   y = rope(rmsnorm(x) · w)
#include <cstdint>

namespace qwen3::cpu {

// x[rows, heads, head_dim], w[head_dim], positions[rows] -> y[rows, heads, head_dim],
// rstd[rows · heads]
template <class T>
void qk_norm_rope_forward(const T* x, const T* w, const int32_t* positions, int64_t rows,
                          int64_t heads, int64_t head_dim, T eps, double theta, T* y, T* rstd);

// dx[rows, heads, head_dim] = ∂L/∂x (overwritten; may alias dy), dw[head_dim] += ∂L/∂w.
template <class T>
void qk_norm_rope_backward(const T* dy, const T* x, const T* w, const T* rstd,
                           const int32_t* positions, int64_t rows, int64_t heads, int64_t head_dim,
                           double theta, T* dx, T* dw);

}  // namespace qwen3::cpu
