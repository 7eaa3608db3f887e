#pragma once
// The tile pieces the tensor-core attention kernels share (attention_forward.cu,
// attention_backward.cu): shared-memory rows of head_dim bf16 loaded by cp.async, and the warp
// products of 16-row tiles on mma.m16n8k16. Fragment layouts as in warp_matrix.cuh: lane
// l = 4g + t holds rows g and g + 8 of a 16-row tile, columns 2t and 2t + 1 of each 8-column tile.
#include <cstdint>

#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/warp_matrix.cuh"

namespace qwen3::cuda {

// Shared rows of HEAD_DIM bf16 padded by 16 bytes: the 8 row addresses of an ldmatrix then fall in
// distinct banks, and every row stays 16-byte aligned for cp.async.
template <int HEAD_DIM>
constexpr int kPaddedRow = HEAD_DIM + 8;

__device__ inline uint32_t pack_bf16(float low, float high) {
  return uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(low))) |
         uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(high))) << 16;
}

// Rows [row0, row0 + rows) of a tensor whose row t is at base + t · row_stride into shared rows of
// kPaddedRow by 16-byte cp.async; rows past the sequence are zero-filled. Every thread of the
// block takes part; the caller commits the group.
template <int HEAD_DIM>
__device__ void load_rows_async(bf16* shared, const bf16* base, int64_t row_stride, int64_t row0,
                                int rows, int64_t seq) {
  constexpr int kChunksPerRow = HEAD_DIM / 8;  // 16-byte chunks
  for (int idx = threadIdx.x; idx < rows * kChunksPerRow; idx += blockDim.x) {
    const int r = idx / kChunksPerRow, chunk = idx % kChunksPerRow;
    const int64_t t = row0 + r;
    const bool in_seq = t < seq;
    cp_async_16(shared + r * kPaddedRow<HEAD_DIM> + chunk * 8,
                in_seq ? base + t * row_stride + chunk * 8 : base, in_seq ? 16 : 0);
  }
}

// acc (16 × N_ROWS, 8-column tiles) += A · Bᵀ for a 16-row A (a_rows) and N_ROWS rows of B
// (b_rows), both shared [.][kPaddedRow] arrays over all HEAD_DIM columns: B's rows are the
// product's columns, so its fragments need no .trans.
template <int HEAD_DIM, int N_ROWS>
__device__ void rows_times_rows_transposed(const bf16* a_rows, const bf16* b_rows,
                                           float (&acc)[N_ROWS / 8][4]) {
  constexpr int kStride = kPaddedRow<HEAD_DIM>;
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int ks = 0; ks < HEAD_DIM / 16; ++ks) {
    uint32_t af[4];
    // Lanes 0-15 address rows 0-15 at column 16 ks, lanes 16-31 the same rows at 16 ks + 8.
    ldmatrix_x4(af, a_rows + (lane % 16) * kStride + ks * 16 + lane / 16 * 8);
#pragma unroll
    for (int np = 0; np < N_ROWS / 16; ++np) {
      uint32_t bf[4];
      // Matrices: rows 16 np.. and 16 np + 8.. of B, each at columns 16 ks.. and 16 ks + 8..
      ldmatrix_x4(
          bf, b_rows + (np * 16 + lane / 16 * 8 + lane % 8) * kStride + ks * 16 + lane / 8 % 2 * 8);
      const uint32_t b0[2] = {bf[0], bf[1]}, b1[2] = {bf[2], bf[3]};
      mma_m16n8k16_bf16(acc[2 * np], af, b0, acc[2 * np]);
      mma_m16n8k16_bf16(acc[2 * np + 1], af, b1, acc[2 * np + 1]);
    }
  }
}

// acc (16 × HEAD_DIM) += P · B, where P (16 × K_ROWS) is given as the fp32 accumulators of its
// 8-column tiles (rounded to bf16: two adjacent tiles are exactly one A fragment) and B is K_ROWS
// rows of a shared [.][kPaddedRow] array, row-major [k][n], so its fragments come by .trans.
template <int HEAD_DIM, int K_ROWS>
__device__ void accumulate_product(const float (&p)[K_ROWS / 8][4], const bf16* b_rows,
                                   float (&acc)[HEAD_DIM / 8][4]) {
  constexpr int kStride = kPaddedRow<HEAD_DIM>;
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int kp = 0; kp < K_ROWS / 16; ++kp) {
    const uint32_t af[4] = {pack_bf16(p[2 * kp][0], p[2 * kp][1]),
                            pack_bf16(p[2 * kp][2], p[2 * kp][3]),
                            pack_bf16(p[2 * kp + 1][0], p[2 * kp + 1][1]),
                            pack_bf16(p[2 * kp + 1][2], p[2 * kp + 1][3])};
#pragma unroll
    for (int dp = 0; dp < HEAD_DIM / 16; ++dp) {
      uint32_t bf[4];
      // Matrices: rows 16 kp.. and 16 kp + 8.. of B at columns 16 dp.., then the same at 16 dp
      // + 8..
      ldmatrix_x4_trans(
          bf, b_rows + (kp * 16 + lane % 8 + lane / 8 % 2 * 8) * kStride + dp * 16 + lane / 16 * 8);
      const uint32_t b0[2] = {bf[0], bf[1]}, b1[2] = {bf[2], bf[3]};
      mma_m16n8k16_bf16(acc[2 * dp], af, b0, acc[2 * dp]);
      mma_m16n8k16_bf16(acc[2 * dp + 1], af, b1, acc[2 * dp + 1]);
    }
  }
}

// Whether any query in [q_begin, q_end) sees a key in [k_begin, k_end) under causal document
// masking (key <= query, same document): a tile pair for which it is false adds exactly nothing
// and is skipped. `docs` are the row's ids in device memory; `held` the ids of one side already in
// shared memory, of the keys (held[key - k_begin]) when HELD_KEYS, else of the queries
// (held[query - q_begin]). Block-uniform; contains __syncthreads: every thread of the block calls
// it.
template <bool HELD_KEYS>
__device__ bool documents_meet(const int32_t* docs, const int32_t* held, int64_t k_begin,
                               int64_t k_end, int64_t q_begin, int64_t q_end) {
  bool meet = false;
  const int64_t begin = HELD_KEYS ? q_begin : k_begin, end = HELD_KEYS ? q_end : k_end;
  for (int64_t x = begin + threadIdx.x; x < end && !meet; x += blockDim.x) {
    const int32_t doc = docs[x];
    if (HELD_KEYS) {
      for (int64_t key = k_begin; key < k_end && key <= x && !meet; ++key)
        meet = held[key - k_begin] == doc;
    } else {
      for (int64_t query = x > q_begin ? x : q_begin; query < q_end && !meet; ++query)
        meet = held[query - q_begin] == doc;
    }
  }
  return __syncthreads_or(meet);
}

}  // namespace qwen3::cuda
