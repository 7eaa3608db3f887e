#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/rope.h"
#include "core/kernels/cuda/rope_common.cuh"

namespace qwen3::cuda {

namespace {

// One thread per (row, head, pair).
__global__ void rope_kernel(const bf16* x, const int32_t* __restrict__ positions, int64_t rows,
                            int64_t heads, int64_t half, float theta, float sin_sign, bf16* y) {
  const int64_t total = rows * heads * half;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % half;
    const int64_t row_head = t / half;
    const int64_t row = row_head / heads;
    float s, c;
    rope_sincos(positions[row], i, half, theta, &s, &c);
    s *= sin_sign;
    const int64_t base = row_head * 2 * half;
    const float a = __bfloat162float(x[base + i]), b = __bfloat162float(x[base + i + half]);
    y[base + i] = __float2bfloat16_rn(a * c - b * s);
    y[base + i + half] = __float2bfloat16_rn(b * c + a * s);
  }
}

}  // namespace

void rope(const bf16* x, const int32_t* positions, int64_t rows, int64_t heads, int64_t head_dim,
          double theta, bool backward, bf16* y, cudaStream_t stream) {
  const int64_t pairs = rows * heads * (head_dim / 2);
  if (pairs == 0) return;
  constexpr int kThreads = 256;
  rope_kernel<<<grid_for(pairs, kThreads, 1 << 20), kThreads, 0, stream>>>(
      x, positions, rows, heads, head_dim / 2, static_cast<float>(theta), backward ? -1.0f : 1.0f,
      y);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
