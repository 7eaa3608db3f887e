#pragma once
// QK-norm fused with rotary embedding: y = rope(rmsnorm(x) · w) per (token, head) row of head_dim
// values, one pass instead of a norm pass and a rotation pass over the queries and keys.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace qwen3::cuda {

// x[rows, heads, head_dim] with its rows x_stride elements apart (heads · head_dim when packed
// alone, the fused projection's width when x is its q or k columns), w[head_dim],
// positions[rows] -> y[rows, heads, head_dim] packed (may alias a packed x), rstd[rows · heads].
// `table`: rope_table's for these positions and theta (rope.h), or null to compute the angles
// here. The arithmetic is rmsnorm_forward's followed by rope's, the normalised value rounded to
// bf16 where that pair stores it.
void qk_norm_rope_forward(const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w,
                          const int32_t* positions, int64_t rows, int64_t heads, int64_t head_dim,
                          float eps, double theta, __nv_bfloat16* y, float* rstd,
                          cudaStream_t stream, const float2* table = nullptr);

size_t qk_norm_rope_backward_workspace_bytes(int64_t rows, int64_t heads, int64_t head_dim);
// dy[rows, heads, head_dim] packed, x as in the forward -> dx[rows, heads, head_dim] with its rows
// dx_stride elements apart (overwritten; may alias dy when both are packed), dw[head_dim] += Σ
// over rows and heads, summed per chunk and then over chunks in a fixed order (deterministic).
// The rotated gradient stays in fp32 between the rotation and the norm. dw in bf16 or fp32 (the
// gradient dtype).
void qk_norm_rope_backward(const __nv_bfloat16* dy, const __nv_bfloat16* x, int64_t x_stride,
                           const __nv_bfloat16* w, const float* rstd, const int32_t* positions,
                           int64_t rows, int64_t heads, int64_t head_dim, double theta,
                           __nv_bfloat16* dx, int64_t dx_stride, __nv_bfloat16* dw, void* workspace,
                           cudaStream_t stream, const float2* table = nullptr);
void qk_norm_rope_backward(const __nv_bfloat16* dy, const __nv_bfloat16* x, int64_t x_stride,
                           const __nv_bfloat16* w, const float* rstd, const int32_t* positions,
                           int64_t rows, int64_t heads, int64_t head_dim, double theta,
                           __nv_bfloat16* dx, int64_t dx_stride, float* dw, void* workspace,
                           cudaStream_t stream, const float2* table = nullptr);

}  // namespace qwen3::cuda
