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

// The same on the fused q/k/v projection: qkv[rows, q_heads + 2 · kv_heads, head_dim], each row
// [q heads | k heads | v heads], q_w, k_w[head_dim] -> q[rows, q_heads, head_dim] and
// k[rows, kv_heads, head_dim] normalised and rotated, v[rows, kv_heads, head_dim] the v heads
// copied out, q_rstd[rows · q_heads], k_rstd[rows · kv_heads].
template <class T>
void qkv_norm_rope_forward(const T* qkv, const T* q_w, const T* k_w, const int32_t* positions,
                           int64_t rows, int64_t q_heads, int64_t kv_heads, int64_t head_dim, T eps,
                           double theta, T* q, T* k, T* v, T* q_rstd, T* k_rstd);

// dq, dk, dv: the gradients at the forward's q, k, v -> d_qkv[rows, q_heads + 2 · kv_heads,
// head_dim] (overwritten), dq_w, dk_w[head_dim] +=.
template <class T>
void qkv_norm_rope_backward(const T* dq, const T* dk, const T* dv, const T* qkv, const T* q_w,
                            const T* k_w, const T* q_rstd, const T* k_rstd,
                            const int32_t* positions, int64_t rows, int64_t q_heads,
                            int64_t kv_heads, int64_t head_dim, double theta, T* d_qkv, T* dq_w,
                            T* dk_w);

}  // namespace qwen3::cpu
