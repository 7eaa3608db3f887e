// Flash-attention forward in plain SIMT fp32: one block per (batch, query head, query tile), K/V
// streamed through shared memory one key tile at a time, softmax kept online (running max and sum,
// rescaled as the max grows), so memory is O(seq) and the score matrix never exists in full.
#include <cmath>
#include <cstdint>

#include "core/cuda/check.h"
#include "core/kernels/cuda/attention.h"
#include "core/kernels/cuda/attention_common.cuh"
#include "core/kernels/cuda/common.cuh"
#include "core/util/error.h"

namespace qwen3::cuda {
namespace {

// 4 warps per block: enough threads to load a tile quickly, few enough that each warp can own a
// whole group of query rows and reduce over keys with shuffles alone (no block-wide reductions).
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
// One key per lane: a warp computes a row's scores for a whole key tile in one pass, and the
// row's max and sum over the tile are warp shuffles.
constexpr int kKeyTile = kWarpSize;
constexpr float kLn2 = 0.6931471805599453f;

template <int HEAD_DIM>
struct ForwardTile {
  // Query rows per warp. Each lane holds rows × ceil(HEAD_DIM / 32) output accumulators; 16 × 4
  // (head_dim 128) or 8 × 8 (head_dim 256) = 64 floats keeps the kernel well below 255 registers.
  static constexpr int kRowsPerWarp = HEAD_DIM <= 128 ? 16 : 8;
  static constexpr int kQueryTile = kWarps * kRowsPerWarp;
  // Lane l owns output columns l, l + 32, ...; for head_dim 16 lanes 16..31 own none.
  static constexpr int kDimsPerLane = (HEAD_DIM + kWarpSize - 1) / kWarpSize;
  // K rows are padded by 4 floats: lane j reads row j with float4 loads, and a row stride of
  // HEAD_DIM + 4 floats puts the 8 lanes of each quarter-warp phase in distinct banks.
  static constexpr int kKStride = HEAD_DIM + 4;
  // Shared memory, in this order: q[kQueryTile][HEAD_DIM] | k[kKeyTile][kKStride] |
  // v[kKeyTile][HEAD_DIM] (fp32) | query docs[kQueryTile] | key docs[kKeyTile] (int32). Every
  // fp32 array is a multiple of 4 floats, so each starts 16-byte aligned for float4 loads.
  static constexpr int kQFloats = kQueryTile * HEAD_DIM;
  static constexpr int kKFloats = kKeyTile * kKStride;
  static constexpr int kVFloats = kKeyTile * HEAD_DIM;
  static constexpr size_t kSmemBytes =
      (kQFloats + kKFloats + kVFloats) * sizeof(float) + (kQueryTile + kKeyTile) * sizeof(int32_t);
};

struct ForwardArgs {
  const bf16* q;           // [batch, seq, q_heads, head_dim]
  const bf16* k;           // [batch, seq, kv_heads, head_dim]
  const bf16* v;           // [batch, seq, kv_heads, head_dim]
  const int32_t* doc_ids;  // [batch, seq] or nullptr
  bf16* out;               // [batch, seq, q_heads, head_dim]
  float* lse;              // [batch, q_heads, seq]
  int64_t batch, seq, q_heads, kv_heads;
  int64_t q_tiles;    // ceil(seq / kQueryTile)
  float score_scale;  // log2(e) / sqrt(head_dim): scores in log2 units, for exp2f
};

template <int HEAD_DIM>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(const ForwardArgs a) {
  using Tile = ForwardTile<HEAD_DIM>;
  constexpr int kRows = Tile::kRowsPerWarp, kDims = Tile::kDimsPerLane;
  constexpr int kQueryTile = Tile::kQueryTile, kKStride = Tile::kKStride;
  extern __shared__ float4 smem_f4[];
  float* q_s = reinterpret_cast<float*>(smem_f4);                       // [kQueryTile][HEAD_DIM]
  float* k_s = q_s + Tile::kQFloats;                                    // [kKeyTile][kKStride]
  float* v_s = k_s + Tile::kKFloats;                                    // [kKeyTile][HEAD_DIM]
  int32_t* q_doc_s = reinterpret_cast<int32_t*>(v_s + Tile::kVFloats);  // [kQueryTile]
  int32_t* k_doc_s = q_doc_s + kQueryTile;                              // [kKeyTile]

  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  // The last query tiles see the most keys; they get the lowest block ids so they start first and
  // the end of the grid is made of short blocks.
  const int64_t heads = a.batch * a.q_heads;
  const int64_t bh = blockIdx.x % heads;
  const int64_t q_tile = a.q_tiles - 1 - static_cast<int64_t>(blockIdx.x) / heads;
  const int64_t b = bh / a.q_heads, h = bh % a.q_heads;
  const int64_t kv_head = h / (a.q_heads / a.kv_heads);
  const int64_t q0 = q_tile * kQueryTile;
  const int64_t q_end = q0 + kQueryTile < a.seq ? q0 + kQueryTile : a.seq;
  const int64_t q_row_stride = a.q_heads * HEAD_DIM, kv_row_stride = a.kv_heads * HEAD_DIM;
  // Row t of these is at + t * row stride.
  const bf16* q_base = a.q + b * a.seq * q_row_stride + h * HEAD_DIM;
  const bf16* k_base = a.k + b * a.seq * kv_row_stride + kv_head * HEAD_DIM;
  const bf16* v_base = a.v + b * a.seq * kv_row_stride + kv_head * HEAD_DIM;
  const int32_t* docs = a.doc_ids ? a.doc_ids + b * a.seq : nullptr;

  // Rows past the end of the sequence are zeros with doc 0; the visibility test masks them.
  for (int idx = threadIdx.x; idx < kQueryTile * HEAD_DIM; idx += kThreads) {
    const int64_t i = q0 + idx / HEAD_DIM;
    q_s[idx] = i < a.seq ? to_float(q_base[i * q_row_stride + idx % HEAD_DIM]) : 0.f;
  }
  for (int r = threadIdx.x; r < kQueryTile; r += kThreads) {
    const int64_t i = q0 + r;
    q_doc_s[r] = docs != nullptr && i < a.seq ? docs[i] : 0;
  }

  const int row0 = warp * kRows;  // this warp's first row within the tile
  const int64_t warp_first = q0 + row0, warp_last = warp_first + kRows - 1;
  float acc[kRows][kDims] = {};  // unnormalised output, column lane + 32 t
  float row_sum[kRows] = {};     // running Σ exp2(score − row_max)
  float row_max[kRows];          // running max of the visible scores (log2 units), -inf before any
#pragma unroll
  for (int r = 0; r < kRows; ++r)
    row_max[r] = -INFINITY;

  // Key tiles up to the one holding the tile's last query; later ones are causally invisible.
  const int64_t key_tiles = ceil_div(q_end, kKeyTile);
  for (int64_t kt = 0; kt < key_tiles; ++kt) {
    const int64_t k0 = kt * kKeyTile;
    __syncthreads();  // every warp is done with the previous K/V tile
    for (int idx = threadIdx.x; idx < kKeyTile * HEAD_DIM; idx += kThreads) {
      const int j = idx / HEAD_DIM, c = idx % HEAD_DIM;
      const int64_t key = k0 + j;
      const bool in_seq = key < a.seq;
      k_s[j * kKStride + c] = in_seq ? to_float(k_base[key * kv_row_stride + c]) : 0.f;
      v_s[idx] = in_seq ? to_float(v_base[key * kv_row_stride + c]) : 0.f;
    }
    if (threadIdx.x < kKeyTile) {
      const int64_t key = k0 + threadIdx.x;
      k_doc_s[threadIdx.x] = docs != nullptr && key < a.seq ? docs[key] : 0;
    }
    __syncthreads();
    // Warp-uniform: this warp's rows are all past the sequence, or the whole key tile lies in
    // their causal future. The warp still takes part in the next tile's barriers.
    if (warp_first >= a.seq || k0 > warp_last) continue;
    if (docs != nullptr && !warp_shares_a_document<kRows>(q_doc_s + row0, k_doc_s[lane])) continue;

    // Scores of this lane's key against the warp's rows: q rows are read by all lanes at once
    // (broadcast), k row `lane` by this lane alone.
    float s[kRows] = {};
    const float* k_row = k_s + lane * kKStride;
#pragma unroll 2
    for (int c = 0; c < HEAD_DIM; c += 4) {
      const float4 kk = *reinterpret_cast<const float4*>(k_row + c);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float4 qq = *reinterpret_cast<const float4*>(q_s + (row0 + r) * HEAD_DIM + c);
        s[r] = fmaf(qq.x, kk.x, s[r]);
        s[r] = fmaf(qq.y, kk.y, s[r]);
        s[r] = fmaf(qq.z, kk.z, s[r]);
        s[r] = fmaf(qq.w, kk.w, s[r]);
      }
    }

    // Mask, then fold the tile into each row's running max and sum; s becomes the probabilities
    // relative to the new max.
    const int64_t key = k0 + lane;
    const int32_t key_doc = k_doc_s[lane];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t i = warp_first + r;
      const bool visible = key <= i && i < a.seq && key_doc == q_doc_s[row0 + r];
      const float score = visible ? s[r] * a.score_scale : -INFINITY;
      const float new_max = fmaxf(row_max[r], warp_max(score));
      // Until a row has seen a visible key its max is -inf; measuring from 0 instead gives
      // exp2f(-inf) = 0 where -inf − (-inf) would give NaN.
      const float ref = new_max == -INFINITY ? 0.f : new_max;
      const float rescale = exp2f(row_max[r] - ref);
      const float p = exp2f(score - ref);
      row_sum[r] = row_sum[r] * rescale + warp_sum(p);
      row_max[r] = new_max;
      s[r] = p;
#pragma unroll
      for (int t = 0; t < kDims; ++t)
        acc[r][t] *= rescale;
    }

    // acc[r] += Σ_j p[r][j] · v[j]: lanes over columns, p[r][j] broadcast from lane j.
#pragma unroll 4
    for (int j = 0; j < kKeyTile; ++j) {
      float vv[kDims];
#pragma unroll
      for (int t = 0; t < kDims; ++t) {
        const int c = lane + t * kWarpSize;
        vv[t] = c < HEAD_DIM ? v_s[j * HEAD_DIM + c] : 0.f;
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float p = __shfl_sync(0xffffffffu, s[r], j);
#pragma unroll
        for (int t = 0; t < kDims; ++t)
          acc[r][t] = fmaf(p, vv[t], acc[r][t]);
      }
    }
  }

  // Every row in the sequence saw at least its own key, so row_sum > 0.
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = warp_first + r;
    if (i < a.seq) {
      const float inv_sum = 1.f / row_sum[r];
      bf16* o = a.out + ((b * a.seq + i) * a.q_heads + h) * HEAD_DIM;
#pragma unroll
      for (int t = 0; t < kDims; ++t) {
        const int c = lane + t * kWarpSize;
        if (c < HEAD_DIM) o[c] = from_float<bf16>(acc[r][t] * inv_sum);
      }
      // Σ exp(score) = 2^row_max · row_sum, so its natural log is (row_max + log2 row_sum) · ln 2.
      if (lane == 0)
        a.lse[(b * a.q_heads + h) * a.seq + i] = (row_max[r] + log2f(row_sum[r])) * kLn2;
    }
  }
}

template <int HEAD_DIM>
void launch_forward(ForwardArgs a, cudaStream_t stream) {
  using Tile = ForwardTile<HEAD_DIM>;
  a.q_tiles = ceil_div(a.seq, Tile::kQueryTile);
  const int64_t blocks = a.q_tiles * a.batch * a.q_heads;
  QWEN3_CHECK(blocks <= INT32_MAX,
              "attention_forward: {} blocks (query tiles × heads × batch) exceed the grid limit",
              blocks);
  // Over the 48 KB static limit for head_dim >= 64: opt in to the dynamic size (A100 allows up
  // to 163 KB per block, H100 227 KB; the largest here is under 100 KB).
  QWEN3_CUDA_CHECK(cudaFuncSetAttribute(attention_forward_kernel<HEAD_DIM>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(Tile::kSmemBytes)));
  attention_forward_kernel<HEAD_DIM>
      <<<static_cast<unsigned>(blocks), kThreads, Tile::kSmemBytes, stream>>>(a);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention_forward(const AttentionDims& d, const bf16* q, const bf16* k, const bf16* v,
                       const int32_t* doc_ids, bf16* out, float* lse, cudaStream_t stream) {
  check_attention_dims("attention_forward", d);
  QWEN3_CHECK(q && k && v && out && lse, "attention_forward: null q, k, v, out or lse");
  // The same expression as in the backward, so both see the same scores.
  const float score_scale = attention_score_scale_log2(d.head_dim);
  const ForwardArgs a{q,       k,     v,         doc_ids,    out, lse,
                      d.batch, d.seq, d.q_heads, d.kv_heads, 0,   score_scale};
  dispatch_head_dim(d.head_dim,
                    [&](auto head_dim) { launch_forward<decltype(head_dim)::value>(a, stream); });
}

}  // namespace qwen3::cuda
