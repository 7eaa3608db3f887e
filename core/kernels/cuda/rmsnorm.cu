#include "core/cuda/check.h"
#include "core/kernels/cuda/norm_common.cuh"
#include "core/kernels/cuda/rmsnorm.h"

namespace qwen3::cuda {

namespace {

__global__ void rmsnorm_forward_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                       int64_t rows, int64_t cols, float eps, bf16* __restrict__ y,
                                       float* __restrict__ rstd) {
  const int64_t row = int64_t(blockIdx.x) * kNormWarpsPerBlock + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;
  const bf16* xr = x + row * cols;
  const float sum_sq =
      row_sum_squares(cols, lane, [&](int64_t c) { return __bfloat162float(xr[c]); });
  const float inv = rsqrtf(sum_sq / float(cols) + eps);
  if (lane == 0) rstd[row] = inv;
  bf16* yr = y + row * cols;
  for (int64_t c = lane; c < cols; c += kWarpSize)
    yr[c] = __float2bfloat16_rn(rmsnorm_output(__bfloat162float(xr[c]), inv, w[c]));
}

// dx = rstd · (g − x̂ · mean(g · x̂)) with x̂ = x · rstd and g = dy · w. One warp per row. Each
// element of dx is written by the lane that read dy and x there, so dx may alias dy.
__global__ void rmsnorm_backward_dx_kernel(const bf16* dy, const bf16* __restrict__ x,
                                           const bf16* __restrict__ w,
                                           const float* __restrict__ rstd, int64_t rows,
                                           int64_t cols, bf16* dx, bool accumulate_dx) {
  const int64_t row = int64_t(blockIdx.x) * kNormWarpsPerBlock + threadIdx.x / kWarpSize;
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

}  // namespace

void rmsnorm_forward(const bf16* x, const bf16* w, int64_t rows, int64_t cols, float eps, bf16* y,
                     float* rstd, cudaStream_t stream) {
  if (rows == 0) return;
  const unsigned blocks = static_cast<unsigned>(ceil_div(rows, kNormWarpsPerBlock));
  rmsnorm_forward_kernel<<<blocks, kNormWarpsPerBlock * kWarpSize, 0, stream>>>(x, w, rows, cols,
                                                                                eps, y, rstd);
  QWEN3_CUDA_CHECK_LAUNCH();
}

size_t rmsnorm_backward_workspace_bytes(int64_t rows, int64_t cols) {
  return static_cast<size_t>(ceil_div(rows, norm_chunk_rows(rows)) * cols) * sizeof(float);
}

namespace {

template <class G>
void rmsnorm_backward_into(const bf16* dy, const bf16* x, const bf16* w, const float* rstd,
                           int64_t rows, int64_t cols, bf16* dx, bool accumulate_dx, G* dw,
                           void* workspace, cudaStream_t stream) {
  if (rows == 0) return;
  // dw's partials read dy before dx overwrites it (dx may alias dy).
  const int64_t per_chunk = norm_chunk_rows(rows), chunks = ceil_div(rows, per_chunk);
  float* partials = static_cast<float*>(workspace);
  const dim3 partial_grid(static_cast<unsigned>(ceil_div(cols, kNormColumnThreads)),
                          static_cast<unsigned>(chunks));
  rmsnorm_dw_partials_kernel<<<partial_grid, kNormColumnThreads, 0, stream>>>(
      dy, x, rstd, rows, cols, per_chunk, partials);
  QWEN3_CUDA_CHECK_LAUNCH();
  norm_dw_finish_kernel<G><<<static_cast<unsigned>(ceil_div(cols, kNormColumnThreads)),
                             kNormColumnThreads, 0, stream>>>(partials, chunks, cols, dw);
  QWEN3_CUDA_CHECK_LAUNCH();
  const unsigned blocks = static_cast<unsigned>(ceil_div(rows, kNormWarpsPerBlock));
  rmsnorm_backward_dx_kernel<<<blocks, kNormWarpsPerBlock * kWarpSize, 0, stream>>>(
      dy, x, w, rstd, rows, cols, dx, accumulate_dx);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rmsnorm_backward(const bf16* dy, const bf16* x, const bf16* w, const float* rstd, int64_t rows,
                      int64_t cols, bf16* dx, bool accumulate_dx, bf16* dw, void* workspace,
                      cudaStream_t stream) {
  rmsnorm_backward_into(dy, x, w, rstd, rows, cols, dx, accumulate_dx, dw, workspace, stream);
}

void rmsnorm_backward(const bf16* dy, const bf16* x, const bf16* w, const float* rstd, int64_t rows,
                      int64_t cols, bf16* dx, bool accumulate_dx, float* dw, void* workspace,
                      cudaStream_t stream) {
  rmsnorm_backward_into(dy, x, w, rstd, rows, cols, dx, accumulate_dx, dw, workspace, stream);
}

}  // namespace qwen3::cuda
