#include "core/cuda/check.h"
#include "core/kernels/cuda/norm_common.cuh"
#include "core/kernels/cuda/qk_norm_rope.h"
#include "core/kernels/cuda/rope_common.cuh"

namespace qwen3::cuda {

namespace {

// One warp per (token, head) row. Lane l owns the rotary pairs (i, i + half) for i = l, l + 32, ...
// in the second pass; the first pass (Σ x²) reads the row in the rmsnorm kernel's lane order, so
// rstd is the same bits rmsnorm_forward gives. Every lane has read the whole row before the
// warp_sum inside row_sum_squares returns, and afterwards writes only its own pairs: y may alias x.
__global__ void qk_norm_rope_forward_kernel(const bf16* x, int64_t x_stride,
                                            const bf16* __restrict__ w,
                                            const int32_t* __restrict__ positions,
                                            const float2* __restrict__ table, int64_t rows,
                                            int64_t heads, int64_t head_dim, float eps, float theta,
                                            bf16* y, float* __restrict__ rstd) {
  const int64_t row = int64_t(blockIdx.x) * kNormWarpsPerBlock + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows * heads) return;
  const int64_t token = row / heads;
  const bf16* xr = x + token * x_stride + (row % heads) * head_dim;
  const float sum_sq =
      row_sum_squares(head_dim, lane, [&](int64_t c) { return __bfloat162float(xr[c]); });
  const float inv = rsqrtf(sum_sq / float(head_dim) + eps);
  if (lane == 0) rstd[row] = inv;
  const int64_t half = head_dim / 2;
  bf16* yr = y + row * head_dim;
  for (int64_t i = lane; i < half; i += kWarpSize) {
    // The normalised value is rounded to bf16 where the unfused pair would store it.
    const float lo =
        __bfloat162float(__float2bfloat16_rn(rmsnorm_output(__bfloat162float(xr[i]), inv, w[i])));
    const float hi = __bfloat162float(
        __float2bfloat16_rn(rmsnorm_output(__bfloat162float(xr[i + half]), inv, w[i + half])));
    float s, c;
    rope_angle(positions, table, token, i, half, theta, &s, &c);
    yr[i] = __float2bfloat16_rn(lo * c - hi * s);
    yr[i + half] = __float2bfloat16_rn(hi * c + lo * s);
  }
}

// The gradient at the norm's output: the transpose of the rotation applied to dy, for pair i.
struct RotatedPair {
  float lo, hi;
};
__device__ inline RotatedPair unrotate(const bf16* dyr, int64_t i, int64_t half,
                                       const int32_t* positions, const float2* table, int64_t token,
                                       float theta) {
  float s, c;
  rope_angle(positions, table, token, i, half, theta, &s, &c);
  const float a = __bfloat162float(dyr[i]), b = __bfloat162float(dyr[i + half]);
  return {a * c + b * s, b * c - a * s};
}

// dx = rstd · (g − x̂ · mean(g · x̂)) with g = Rᵀdy · w and x̂ = x · rstd. One warp per row; each lane
// recomputes its pairs' rotation in the second pass rather than keep them, and writes dx only
// where it read dy, so dx may alias dy.
__global__ void qk_norm_rope_backward_dx_kernel(const bf16* dy, const bf16* __restrict__ x,
                                                int64_t x_stride, const bf16* __restrict__ w,
                                                const float* __restrict__ rstd,
                                                const int32_t* __restrict__ positions,
                                                const float2* __restrict__ table, int64_t rows,
                                                int64_t heads, int64_t head_dim, float theta,
                                                bf16* dx, int64_t dx_stride) {
  const int64_t row = int64_t(blockIdx.x) * kNormWarpsPerBlock + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows * heads) return;
  const int64_t token = row / heads, head = row % heads;
  const bf16* dyr = dy + row * head_dim;
  const bf16* xr = x + token * x_stride + head * head_dim;
  const float inv = rstd[row];
  const int64_t half = head_dim / 2;
  float dot = 0.0f;
  for (int64_t i = lane; i < half; i += kWarpSize) {
    const RotatedPair g = unrotate(dyr, i, half, positions, table, token, theta);
    dot += g.lo * __bfloat162float(w[i]) * (__bfloat162float(xr[i]) * inv) +
           g.hi * __bfloat162float(w[i + half]) * (__bfloat162float(xr[i + half]) * inv);
  }
  const float mean_dot = warp_sum(dot) / float(head_dim);
  bf16* dxr = dx + token * dx_stride + head * head_dim;
  for (int64_t i = lane; i < half; i += kWarpSize) {
    const RotatedPair g = unrotate(dyr, i, half, positions, table, token, theta);
    const float xhat_lo = __bfloat162float(xr[i]) * inv;
    const float xhat_hi = __bfloat162float(xr[i + half]) * inv;
    dxr[i] = __float2bfloat16_rn(inv * (g.lo * __bfloat162float(w[i]) - xhat_lo * mean_dot));
    dxr[i + half] =
        __float2bfloat16_rn(inv * (g.hi * __bfloat162float(w[i + half]) - xhat_hi * mean_dot));
  }
}

// partials[chunk, c] = Σ over the chunk's (token, head) rows of (Rᵀdy)[c] · x[c] · rstd. Threads
// run along head_dim, so loads are coalesced; grid (column blocks, chunks).
__global__ void qk_norm_rope_dw_partials_kernel(
    const bf16* __restrict__ dy, const bf16* __restrict__ x, int64_t x_stride,
    const float* __restrict__ rstd, const int32_t* __restrict__ positions,
    const float2* __restrict__ table, int64_t norm_rows, int64_t heads, int64_t head_dim,
    float theta, int64_t rows_per_chunk, float* __restrict__ partials) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  if (c >= head_dim) return;
  const int64_t half = head_dim / 2;
  const bool low = c < half;
  const int64_t pair = low ? c : c - half;
  const int64_t begin = chunk * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < norm_rows ? begin + rows_per_chunk : norm_rows;
  float sum = 0.0f;
  for (int64_t r = begin; r < end; ++r) {
    const RotatedPair g =
        unrotate(dy + r * head_dim, pair, half, positions, table, r / heads, theta);
    const bf16* xr = x + (r / heads) * x_stride + (r % heads) * head_dim;
    sum += (low ? g.lo : g.hi) * (__bfloat162float(xr[c]) * rstd[r]);
  }
  partials[chunk * head_dim + c] = sum;
}

}  // namespace

void qk_norm_rope_forward(const bf16* x, int64_t x_stride, const bf16* w, const int32_t* positions,
                          int64_t rows, int64_t heads, int64_t head_dim, float eps, double theta,
                          bf16* y, float* rstd, cudaStream_t stream, const float2* table) {
  const int64_t norm_rows = rows * heads;
  if (norm_rows == 0) return;
  const unsigned blocks = static_cast<unsigned>(ceil_div(norm_rows, kNormWarpsPerBlock));
  qk_norm_rope_forward_kernel<<<blocks, kNormWarpsPerBlock * kWarpSize, 0, stream>>>(
      x, x_stride, w, positions, table, rows, heads, head_dim, eps, static_cast<float>(theta), y,
      rstd);
  QWEN3_CUDA_CHECK_LAUNCH();
}

size_t qk_norm_rope_backward_workspace_bytes(int64_t rows, int64_t heads, int64_t head_dim) {
  const int64_t norm_rows = rows * heads;
  return static_cast<size_t>(ceil_div(norm_rows, norm_chunk_rows(norm_rows)) * head_dim) *
         sizeof(float);
}

namespace {

template <class G>
void qk_norm_rope_backward_into(const bf16* dy, const bf16* x, int64_t x_stride, const bf16* w,
                                const float* rstd, const int32_t* positions, int64_t rows,
                                int64_t heads, int64_t head_dim, double theta, bf16* dx,
                                int64_t dx_stride, G* dw, void* workspace, cudaStream_t stream,
                                const float2* table) {
  const int64_t norm_rows = rows * heads;
  if (norm_rows == 0) return;
  const float theta_f = static_cast<float>(theta);
  // dw's partials read dy before dx overwrites it (dx may alias dy).
  const int64_t per_chunk = norm_chunk_rows(norm_rows), chunks = ceil_div(norm_rows, per_chunk);
  float* partials = static_cast<float*>(workspace);
  const unsigned column_blocks = static_cast<unsigned>(ceil_div(head_dim, kNormColumnThreads));
  const dim3 partial_grid(column_blocks, static_cast<unsigned>(chunks));
  qk_norm_rope_dw_partials_kernel<<<partial_grid, kNormColumnThreads, 0, stream>>>(
      dy, x, x_stride, rstd, positions, table, norm_rows, heads, head_dim, theta_f, per_chunk,
      partials);
  QWEN3_CUDA_CHECK_LAUNCH();
  norm_dw_finish_kernel<G>
      <<<column_blocks, kNormColumnThreads, 0, stream>>>(partials, chunks, head_dim, dw);
  QWEN3_CUDA_CHECK_LAUNCH();
  const unsigned blocks = static_cast<unsigned>(ceil_div(norm_rows, kNormWarpsPerBlock));
  qk_norm_rope_backward_dx_kernel<<<blocks, kNormWarpsPerBlock * kWarpSize, 0, stream>>>(
      dy, x, x_stride, w, rstd, positions, table, rows, heads, head_dim, theta_f, dx, dx_stride);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace

void qk_norm_rope_backward(const bf16* dy, const bf16* x, int64_t x_stride, const bf16* w,
                           const float* rstd, const int32_t* positions, int64_t rows, int64_t heads,
                           int64_t head_dim, double theta, bf16* dx, int64_t dx_stride, bf16* dw,
                           void* workspace, cudaStream_t stream, const float2* table) {
  qk_norm_rope_backward_into(dy, x, x_stride, w, rstd, positions, rows, heads, head_dim, theta, dx,
                             dx_stride, dw, workspace, stream, table);
}

void qk_norm_rope_backward(const bf16* dy, const bf16* x, int64_t x_stride, const bf16* w,
                           const float* rstd, const int32_t* positions, int64_t rows, int64_t heads,
                           int64_t head_dim, double theta, bf16* dx, int64_t dx_stride, float* dw,
                           void* workspace, cudaStream_t stream, const float2* table) {
  qk_norm_rope_backward_into(dy, x, x_stride, w, rstd, positions, rows, heads, head_dim, theta, dx,
                             dx_stride, dw, workspace, stream, table);
}

}  // namespace qwen3::cuda
