#pragma once
// RMSNorm over the last dimension (bf16 storage, fp32 statistics). QK-norm is the same op on
// [tokens · heads, head_dim].
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace qwen3::cuda {

// x[rows, cols], w[cols] -> y[rows, cols] = w · x · rstd, rstd[rows] = 1/√(mean(x²) + eps)
void rmsnorm_forward(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t rows, int64_t cols,
                     float eps, __nv_bfloat16* y, float* rstd, cudaStream_t stream);

size_t rmsnorm_backward_workspace_bytes(int64_t rows, int64_t cols);
// dx[rows, cols] (= or += with accumulate_dx), dw[cols] += Σ_rows dy · x · rstd, summed per
// chunk of rows and then over chunks in a fixed order (deterministic). dw in bf16 or fp32 (the
// gradient dtype): the sum is fp32 either way, and only a bf16 dw rounds it.
void rmsnorm_backward(const __nv_bfloat16* dy, const __nv_bfloat16* x, const __nv_bfloat16* w,
                      const float* rstd, int64_t rows, int64_t cols, __nv_bfloat16* dx,
                      bool accumulate_dx, __nv_bfloat16* dw, void* workspace, cudaStream_t stream);
void rmsnorm_backward(const __nv_bfloat16* dy, const __nv_bfloat16* x, const __nv_bfloat16* w,
                      const float* rstd, int64_t rows, int64_t cols, __nv_bfloat16* dx,
                      bool accumulate_dx, float* dw, void* workspace, cudaStream_t stream);

}  // namespace qwen3::cuda
