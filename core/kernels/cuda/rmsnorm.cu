#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/rmsnorm.h"

namespace qwen3::cuda {

namespace {

// One warp per row: rows are short (1,024 for hidden states, 128 for QK-norm), so a warp's 32
// lanes cover a row in a few coalesced passes and the reduction needs only shuffles.
constexpr int kWarpsPerBlock = 8;
// dw partial sums: each chunk of rows gives one fp32 partial row; a chunk holds at least 64 rows
// and there are at most 1,024 chunks, so the final pass over partials stays small.
constexpr int64_t kMinChunkRows = 64, kMaxChunks = 1024;
constexpr int kColumnThreads = 128;

int64_t chunk_rows(int64_t rows) {
  const int64_t by_count = ceil_div(rows, kMaxChunks);
  return by_count > kMinChunkRows ? by_count : kMinChunkRows;
}

__global__ void rmsnorm_forward_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                       int64_t rows, int64_t cols, float eps, bf16* __restrict__ y,
                                       float* __restrict__ rstd) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;
  const bf16* xr = x + row * cols;
  float sum_sq = 0.0f;
  for (int64_t c = lane; c < cols; c += kWarpSize) {
    const float v = __bfloat162float(xr[c]);
    sum_sq += v * v;
  }
  sum_sq = warp_sum(sum_sq);
  const float inv = rsqrtf(sum_sq / float(cols) + eps);
  if (lane == 0) rstd[row] = inv;
  bf16* yr = y + row * cols;
  // As HF's Qwen3RMSNorm: the normalised value is cast to the storage dtype before the weight
  // multiplies it: the two roundings transformers' bf16 model makes.
  for (int64_t c = lane; c < cols; c += kWarpSize) {
    const float normed = __bfloat162float(__float2bfloat16_rn(__bfloat162float(xr[c]) * inv));
    yr[c] = __float2bfloat16_rn(__bfloat162float(w[c]) * normed);
  }
}

// dx = rstd · (g − x̂ · mean(g · x̂)) with x̂ = x · rstd and g = dy · w. One warp per row. Each
// element of dx is written by the lane that read dy and x there, so dx may alias dy.
__global__ void rmsnorm_backward_dx_kernel(const bf16* dy, const bf16* __restrict__ x,
                                           const bf16* __restrict__ w,
                                           const float* __restrict__ rstd, int64_t rows,
                                           int64_t cols, bf16* dx, bool accumulate_dx) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;
  const bf16* dyr = dy + row * cols;
  const bf16* xr = x + row * cols;
  const float inv = rstd[row];
  float dot = 0.0f;
  for (int64_t c = lane; c < cols; c += kWarpSize)
    dot += __bfloat162float(dyr[c]) * __bfloat162float(w[c]) * (__bfloat162float(xr[c]) * inv);
  const float mean_dot = warp_sum(dot) / float(cols);
  bf16* dxr = dx + row * cols;
  for (int64_t c = lane; c < cols; c += kWarpSize) {
    const float xhat = __bfloat162float(xr[c]) * inv;
    float grad = inv * (__bfloat162float(dyr[c]) * __bfloat162float(w[c]) - xhat * mean_dot);
    if (accumulate_dx) grad += __bfloat162float(dxr[c]);
    dxr[c] = __float2bfloat16_rn(grad);
  }
}

// partials[chunk, c] = Σ over the chunk's rows of dy · x · rstd. Threads run along columns, so
// loads are coalesced; grid (column blocks, chunks).
__global__ void rmsnorm_dw_partials_kernel(const bf16* __restrict__ dy, const bf16* __restrict__ x,
                                           const float* __restrict__ rstd, int64_t rows,
                                           int64_t cols, int64_t rows_per_chunk,
                                           float* __restrict__ partials) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  if (c >= cols) return;
  const int64_t begin = chunk * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
  float sum = 0.0f;
  for (int64_t r = begin; r < end; ++r)
    sum += __bfloat162float(dy[r * cols + c]) * (__bfloat162float(x[r * cols + c]) * rstd[r]);
  partials[chunk * cols + c] = sum;
}

// dw[c] += Σ_chunks partials[chunk, c], chunks in order.
__global__ void rmsnorm_dw_finish_kernel(const float* __restrict__ partials, int64_t chunks,
                                         int64_t cols, bf16* __restrict__ dw) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0.0f;
  for (int64_t k = 0; k < chunks; ++k)
    sum += partials[k * cols + c];
  dw[c] = __float2bfloat16_rn(__bfloat162float(dw[c]) + sum);
}

}  // namespace

void rmsnorm_forward(const bf16* x, const bf16* w, int64_t rows, int64_t cols, float eps, bf16* y,
                     float* rstd, cudaStream_t stream) {
  if (rows == 0) return;
  const unsigned blocks = static_cast<unsigned>(ceil_div(rows, kWarpsPerBlock));
  rmsnorm_forward_kernel<<<blocks, kWarpsPerBlock * kWarpSize, 0, stream>>>(x, w, rows, cols, eps,
                                                                            y, rstd);
  QWEN3_CUDA_CHECK_LAUNCH();
}

size_t rmsnorm_backward_workspace_bytes(int64_t rows, int64_t cols) {
  return static_cast<size_t>(ceil_div(rows, chunk_rows(rows)) * cols) * sizeof(float);
}

void rmsnorm_backward(const bf16* dy, const bf16* x, const bf16* w, const float* rstd, int64_t rows,
                      int64_t cols, bf16* dx, bool accumulate_dx, bf16* dw, void* workspace,
                      cudaStream_t stream) {
  if (rows == 0) return;
  // dw's partials read dy before dx overwrites it (dx may alias dy).
  const int64_t per_chunk = chunk_rows(rows), chunks = ceil_div(rows, per_chunk);
  float* partials = static_cast<float*>(workspace);
  const dim3 partial_grid(static_cast<unsigned>(ceil_div(cols, kColumnThreads)),
                          static_cast<unsigned>(chunks));
  rmsnorm_dw_partials_kernel<<<partial_grid, kColumnThreads, 0, stream>>>(dy, x, rstd, rows, cols,
                                                                          per_chunk, partials);
  QWEN3_CUDA_CHECK_LAUNCH();
  rmsnorm_dw_finish_kernel<<<static_cast<unsigned>(ceil_div(cols, kColumnThreads)), kColumnThreads,
                             0, stream>>>(partials, chunks, cols, dw);
  QWEN3_CUDA_CHECK_LAUNCH();
  const unsigned blocks = static_cast<unsigned>(ceil_div(rows, kWarpsPerBlock));
  rmsnorm_backward_dx_kernel<<<blocks, kWarpsPerBlock * kWarpSize, 0, stream>>>(
      dy, x, w, rstd, rows, cols, dx, accumulate_dx);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
