#pragma once
// The residual add fused with the RMSNorm that follows it (bf16 storage, fp32 statistics).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace qwen3::cuda {

// The residual add fused with the norm that reads it: sum = a + b rounded to bf16 (as the residual
// stream is stored; sum may alias a or b), then y and rstd as rmsnorm_forward gives for sum.
// a, b, sum, y [rows, cols]; w[cols]; rstd[rows]. Its backward is rmsnorm_backward with
// accumulate_dx.
void add_rmsnorm_forward(const __nv_bfloat16* a, const __nv_bfloat16* b, const __nv_bfloat16* w,
                         int64_t rows, int64_t cols, float eps, __nv_bfloat16* sum,
                         __nv_bfloat16* y, float* rstd, cudaStream_t stream);

}  // namespace qwen3::cuda
