#pragma once
// Pieces the RMSNorm kernels share (rmsnorm.cu, add_rmsnorm.cu, qk_norm_rope.cu): the row layout
// of the warp-per-row kernels and the deterministic two-pass sum of the weight gradient.
#include "core/kernels/cuda/common.cuh"

namespace qwen3::cuda {

// One warp per row: rows are short (1,024 for hidden states, 128 for QK-norm), so a warp's 32
// lanes cover a row in a few coalesced passes and the reduction needs only shuffles.
constexpr int kNormWarpsPerBlock = 8;

// dw partial sums: each chunk of rows gives one fp32 partial row; a chunk holds at least 64 rows
// and there are at most 1,024 chunks, so the final pass over partials stays small.
constexpr int64_t kNormMinChunkRows = 64, kNormMaxChunks = 1024;
constexpr int kNormColumnThreads = 128;

inline int64_t norm_chunk_rows(int64_t rows) {
  const int64_t by_count = ceil_div(rows, kNormMaxChunks);
  return by_count > kNormMinChunkRows ? by_count : kNormMinChunkRows;
}

// Σ x² of a row, each lane taking columns lane, lane + 32, ...; the fixed lane order and butterfly
// make the sum, and so rstd, the same in every kernel that normalises the same row.
template <class Load>
__device__ inline float row_sum_squares(int64_t cols, int lane, Load load) {
  float sum_sq = 0.0f;
  for (int64_t c = lane; c < cols; c += kWarpSize) {
    const float v = load(c);
    sum_sq += v * v;
  }
  return warp_sum(sum_sq);
}

// HF's Qwen3RMSNorm output for one element: the normalised value is cast to the storage dtype
// before the weight multiplies it, the two roundings transformers' bf16 model makes.
__device__ inline float rmsnorm_output(float x, float inv, bf16 w) {
  const float normed = __bfloat162float(__float2bfloat16_rn(x * inv));
  return __bfloat162float(w) * normed;
}

// dw[c] += Σ_chunks partials[chunk, c], chunks in order, into a gradient of type G: fp32 keeps
// every contribution, bf16 rounds the running sum once per call. Static: each kernel file has its
// own.
template <class G>
static __global__ void norm_dw_finish_kernel(const float* __restrict__ partials, int64_t chunks,
                                             int64_t cols, G* __restrict__ dw) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0.0f;
  for (int64_t k = 0; k < chunks; ++k)
    sum += partials[k * cols + c];
  dw[c] = from_float<G>(to_float(dw[c]) + sum);
}

}  // namespace qwen3::cuda
