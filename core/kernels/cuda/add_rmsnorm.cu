#include "core/cuda/check.h"
#include "core/kernels/cuda/norm_common.cuh"
#include "core/kernels/cuda/add_rmsnorm.h"

namespace qwen3::cuda {

namespace {

// One warp per row. The first pass writes the bf16 sum and squares the rounded value, so rstd and
// y are exactly what rmsnorm_forward computes from the stored sum: the backward, which reads the
// stored sum, sees the statistics of the values it is given. The second pass reads the sum back
// (each lane its own elements, just written, so from cache) instead of a + b: sum may alias a or b.
__global__ void add_rmsnorm_forward_kernel(const bf16* a, const bf16* b, const bf16* __restrict__ w,
                                           int64_t rows, int64_t cols, float eps, bf16* sum,
                                           bf16* __restrict__ y, float* __restrict__ rstd) {
  const int64_t row = int64_t(blockIdx.x) * kNormWarpsPerBlock + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;
  const bf16* ar = a + row * cols;
  const bf16* br = b + row * cols;
  bf16* sr = sum + row * cols;
  const float sum_sq = row_sum_squares(cols, lane, [&](int64_t c) {
    const bf16 s = __float2bfloat16_rn(__bfloat162float(ar[c]) + __bfloat162float(br[c]));
    sr[c] = s;
    return __bfloat162float(s);
  });
  const float inv = rsqrtf(sum_sq / float(cols) + eps);
  if (lane == 0) rstd[row] = inv;
  bf16* yr = y + row * cols;
  for (int64_t c = lane; c < cols; c += kWarpSize)
    yr[c] = __float2bfloat16_rn(rmsnorm_output(__bfloat162float(sr[c]), inv, w[c]));
}

}  // namespace

void add_rmsnorm_forward(const bf16* a, const bf16* b, const bf16* w, int64_t rows, int64_t cols,
                         float eps, bf16* sum, bf16* y, float* rstd, cudaStream_t stream) {
  if (rows == 0) return;
  const unsigned blocks = static_cast<unsigned>(ceil_div(rows, kNormWarpsPerBlock));
  add_rmsnorm_forward_kernel<<<blocks, kNormWarpsPerBlock * kWarpSize, 0, stream>>>(
      a, b, w, rows, cols, eps, sum, y, rstd);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
