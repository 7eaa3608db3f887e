#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/rope.h"
#include "core/kernels/cuda/rope_common.cuh"

namespace qwen3::cuda {

namespace {

// One thread per (row, head, pair).
__global__ void rope_kernel(const bf16* x, const int32_t* __restrict__ positions,
                            const float2* __restrict__ table, int64_t rows, int64_t heads,
                            int64_t half, float theta, float sin_sign, bf16* y) {
  const int64_t total = rows * heads * half;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % half;
    const int64_t row_head = t / half;
    const int64_t row = row_head / heads;
    float s, c;
    rope_angle(positions, table, row, i, half, theta, &s, &c);
    s *= sin_sign;
    const int64_t base = row_head * 2 * half;
    const float a = __bfloat162float(x[base + i]), b = __bfloat162float(x[base + i + half]);
    y[base + i] = __float2bfloat16_rn(a * c - b * s);
    y[base + i + half] = __float2bfloat16_rn(b * c + a * s);
  }
}

// One thread per (row, pair).
__global__ void rope_table_kernel(const int32_t* __restrict__ positions, int64_t rows, int64_t half,
                                  float theta, float2* __restrict__ table) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < rows * half;
       t += int64_t(gridDim.x) * blockDim.x) {
    float s, c;
    rope_sincos(positions[t / half], t % half, half, theta, &s, &c);
    table[t] = float2{s, c};
  }
}

}  // namespace

void rope_table(const int32_t* positions, int64_t rows, int64_t head_dim, double theta,
                float2* table, cudaStream_t stream) {
  const int64_t entries = rows * (head_dim / 2);
  if (entries == 0) return;
  constexpr int kThreads = 256;
  rope_table_kernel<<<grid_for(entries, kThreads, 1 << 20), kThreads, 0, stream>>>(
      positions, rows, head_dim / 2, static_cast<float>(theta), table);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void rope(const bf16* x, const int32_t* positions, int64_t rows, int64_t heads, int64_t head_dim,
          double theta, bool backward, bf16* y, cudaStream_t stream, const float2* table) {
  const int64_t pairs = rows * heads * (head_dim / 2);
  if (pairs == 0) return;
  constexpr int kThreads = 256;
  rope_kernel<<<grid_for(pairs, kThreads, 1 << 20), kThreads, 0, stream>>>(
      x, positions, table, rows, heads, head_dim / 2, static_cast<float>(theta),
      backward ? -1.0f : 1.0f, y);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
