// Flash-attention backward in plain SIMT fp32, deterministic (no atomics, fixed summation order):
//   1. row_dot_kernel: D_i = Σ_d dout_i,d · out_i,d into the workspace, laid out like lse.
//   2. dkv_kernel: one block per (batch, KV head, key tile); loops over the group's query heads and
//      the query tiles at or after the key tile, accumulates dK and dV in registers, writes once.
//   3. dq_kernel: one block per (batch, query head, query tile); loops over the key tiles up to the
//      diagonal, accumulates dQ in registers, writes once.
// Both 2 and 3 recompute P = exp(S − lse), dP = dO·Vᵀ and dS = P ⊙ (dP − D), with the same
// expressions summed in the same order, so the two kernels agree on P and dS.
#include <cmath>
#include <cstdint>

#include "core/cuda/check.h"
#include "core/kernels/cuda/attention.h"
#include "core/kernels/cuda/attention_common.cuh"
#include "core/kernels/cuda/common.cuh"
#include "core/util/error.h"

namespace qwen3::cuda {
namespace {

// 4 warps per block: each warp owns a group of rows (keys in dkv, queries in dq) and reduces over
// the other side with shuffles alone, so the only barriers are around the tile loads.
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
// At least 2 blocks per SM (shared memory allows 2 on A100 at head_dim 128). Saying so also lets
// ptxas use up to 255 registers; without it, it capped dkv_kernel<128> on sm_80 at 168 and spilled.
constexpr int kMinBlocks = 2;
// The streamed tile has one row per lane (queries in dkv, keys in dq): each lane computes the
// scores of its row against the warp's rows in one pass.
constexpr int kStreamTile = kWarpSize;
// Grid-stride launch for the row-dot kernel: 8 warps (rows) per block.
constexpr int kRowDotThreads = 256;

template <int HEAD_DIM>
struct BackwardTile {
  // Rows a warp owns. Each lane accumulates (dkv) 2 × rows × ceil(HEAD_DIM / 32) or (dq) rows ×
  // ceil(HEAD_DIM / 32) floats; 8 rows (head_dim <= 128) or 4 (256) keep that at 64 or fewer.
  static constexpr int kRowsPerWarp = HEAD_DIM <= 128 ? 8 : 4;
  static constexpr int kOwnedTile = kWarps * kRowsPerWarp;
  static constexpr int kDimsPerLane = (HEAD_DIM + kWarpSize - 1) / kWarpSize;
  // Streamed rows are padded by 4 floats: lane j reads row j with float4 loads, and a stride of
  // HEAD_DIM + 4 floats puts the 8 lanes of each quarter-warp phase in distinct banks.
  static constexpr int kStride = HEAD_DIM + 4;
  // Shared memory, in this order: owned[kOwnedTile][HEAD_DIM] × 2 (k, v in dkv; q, dout in dq) |
  // streamed[kStreamTile][kStride] × 2 (q, dout in dkv; k, v in dq) (fp32) | owned docs | streamed
  // docs (int32) | lse and D of the query rows (fp32; the streamed tile in dkv, the owned one in
  // dq; room is left for both). Every fp32 array before the ints is a multiple of 4 floats, so
  // each starts 16-byte aligned for float4 loads.
  static constexpr int kOwnedFloats = kOwnedTile * HEAD_DIM;
  static constexpr int kStreamFloats = kStreamTile * kStride;
  static constexpr size_t kSmemBytes = (2 * kOwnedFloats + 2 * kStreamFloats) * sizeof(float) +
                                       (kOwnedTile + kStreamTile) * sizeof(int32_t) +
                                       2 * (kOwnedTile + kStreamTile) * sizeof(float);
};

struct BackwardArgs {
  const bf16* dout;        // [batch, seq, q_heads, head_dim]
  const bf16* q;           // [batch, seq, q_heads, head_dim]
  const bf16* k;           // [batch, seq, kv_heads, head_dim]
  const bf16* v;           // [batch, seq, kv_heads, head_dim]
  const float* lse;        // [batch, q_heads, seq]
  const float* row_dot;    // [batch, q_heads, seq], D of each query row
  const int32_t* doc_ids;  // [batch, seq] or nullptr
  bf16* dq;                // [batch, seq, q_heads, head_dim]
  bf16* dk;                // [batch, seq, kv_heads, head_dim]
  bf16* dv;                // [batch, seq, kv_heads, head_dim]
  int64_t batch, seq, q_heads, kv_heads;
  float scale;        // 1 / sqrt(head_dim)
  float score_scale;  // log2(e) / sqrt(head_dim): scores in log2 units, for exp2f
};

// Copies rows [row0, row0 + rows) of a [seq, row_stride] bf16 matrix into dst[rows][dst_stride]
// as fp32; rows past the sequence become zeros.
template <int HEAD_DIM>
__device__ void load_rows(float* dst, int dst_stride, const bf16* src, int64_t row_stride,
                          int64_t row0, int rows, int64_t seq) {
  for (int idx = threadIdx.x; idx < rows * HEAD_DIM; idx += kThreads) {
    const int r = idx / HEAD_DIM, c = idx % HEAD_DIM;
    const int64_t t = row0 + r;
    dst[r * dst_stride + c] = t < seq ? to_float(src[t * row_stride + c]) : 0.f;
  }
}

// For rows [row0, row0 + rows): doc ids (0 without documents or past the sequence) and, when
// lse_s is given, lse in log2 units and D (0 past the sequence). `lse`, `row_dot` point at the
// (batch, head)'s [seq] slice, `docs` at the batch's.
__device__ void load_row_info(int32_t* doc_s, float* lse_s, float* dot_s, const int32_t* docs,
                              const float* lse, const float* row_dot, int64_t row0, int rows,
                              int64_t seq) {
  for (int r = threadIdx.x; r < rows; r += kThreads) {
    const int64_t t = row0 + r;
    const bool in_seq = t < seq;
    doc_s[r] = docs != nullptr && in_seq ? docs[t] : 0;
    if (lse_s != nullptr) {
      lse_s[r] = in_seq ? lse[t] * kLog2e : 0.f;
      dot_s[r] = in_seq ? row_dot[t] : 0.f;
    }
  }
}

// s[r] = Σ_c a[r][c] · x[c], dp[r] = Σ_c b[r][c] · y[c] for the warp's kRows owned rows of
// a and b (read by all lanes at once) against one streamed row x, y per lane.
template <int HEAD_DIM, int kRows>
__device__ void dot_rows(const float* a, const float* b, const float* x, const float* y,
                         float (&s)[kRows], float (&dp)[kRows]) {
#pragma unroll
  for (int r = 0; r < kRows; ++r)
    s[r] = dp[r] = 0.f;
#pragma unroll 2
  for (int c = 0; c < HEAD_DIM; c += 4) {
    const float4 xx = *reinterpret_cast<const float4*>(x + c);
    const float4 yy = *reinterpret_cast<const float4*>(y + c);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float4 aa = *reinterpret_cast<const float4*>(a + r * HEAD_DIM + c);
      const float4 bb = *reinterpret_cast<const float4*>(b + r * HEAD_DIM + c);
      s[r] = fmaf(aa.x, xx.x, s[r]);
      s[r] = fmaf(aa.y, xx.y, s[r]);
      s[r] = fmaf(aa.z, xx.z, s[r]);
      s[r] = fmaf(aa.w, xx.w, s[r]);
      dp[r] = fmaf(bb.x, yy.x, dp[r]);
      dp[r] = fmaf(bb.y, yy.y, dp[r]);
      dp[r] = fmaf(bb.z, yy.z, dp[r]);
      dp[r] = fmaf(bb.w, yy.w, dp[r]);
    }
  }
}

// out[t] = row[lane + 32 t] (0 past the row): a row of shared memory spread over the lanes.
template <int HEAD_DIM, int kDims>
__device__ void row_columns(const float* row, float (&out)[kDims]) {
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int t = 0; t < kDims; ++t) {
    const int c = lane + t * kWarpSize;
    out[t] = c < HEAD_DIM ? row[c] : 0.f;
  }
}

// Rows first_row + r (those inside the sequence) of dst, each at + row * row_stride, get
// factor · acc[r] in bf16; lane holds columns lane + 32 t.
template <int HEAD_DIM, int kRows, int kDims>
__device__ void store_rows(bf16* dst, int64_t row_stride, int64_t first_row, int64_t seq,
                           const float (&acc)[kRows][kDims], float factor) {
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (first_row + r >= seq) break;
#pragma unroll
    for (int t = 0; t < kDims; ++t) {
      const int c = lane + t * kWarpSize;
      if (c < HEAD_DIM)
        dst[(first_row + r) * row_stride + c] = from_float<bf16>(acc[r][t] * factor);
    }
  }
}

// row_dot[b, h, i] = Σ_d dout[b, i, h, d] · out[b, i, h, d]; one warp per row, grid-stride.
__global__ void __launch_bounds__(kRowDotThreads)
    row_dot_kernel(const bf16* dout, const bf16* out, float* row_dot, int64_t batch, int64_t seq,
                   int64_t q_heads, int head_dim) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t rows = batch * seq * q_heads;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
       row < rows; row += warps) {
    const bf16* g = dout + row * head_dim;
    const bf16* o = out + row * head_dim;
    float sum = 0.f;
    for (int c = lane; c < head_dim; c += kWarpSize)
      sum = fmaf(to_float(g[c]), to_float(o[c]), sum);
    sum = warp_sum(sum);
    if (lane == 0) {
      const int64_t h = row % q_heads, i = (row / q_heads) % seq, b = row / (q_heads * seq);
      row_dot[(b * q_heads + h) * seq + i] = sum;
    }
  }
}

// dK, dV for kOwnedTile keys of one (batch, KV head). Owned: k, v rows (warp w has keys
// w·kRows ...). Streamed: 32 query rows of q and dout per step, one per lane for the scores.
template <int HEAD_DIM>
__global__ void __launch_bounds__(kThreads, kMinBlocks) dkv_kernel(const BackwardArgs a) {
  using Tile = BackwardTile<HEAD_DIM>;
  constexpr int kRows = Tile::kRowsPerWarp, kDims = Tile::kDimsPerLane;
  constexpr int kKeyTile = Tile::kOwnedTile, kStride = Tile::kStride;
  extern __shared__ float4 smem_f4[];
  float* k_s = reinterpret_cast<float*>(smem_f4);  // [kKeyTile][HEAD_DIM]
  float* v_s = k_s + Tile::kOwnedFloats;           // [kKeyTile][HEAD_DIM]
  float* q_s = v_s + Tile::kOwnedFloats;           // [kStreamTile][kStride]
  float* do_s = q_s + Tile::kStreamFloats;         // [kStreamTile][kStride]
  int32_t* k_doc_s = reinterpret_cast<int32_t*>(do_s + Tile::kStreamFloats);  // [kKeyTile]
  int32_t* q_doc_s = k_doc_s + kKeyTile;                                      // [kStreamTile]
  float* lse_s = reinterpret_cast<float*>(q_doc_s + kStreamTile);  // [kStreamTile], log2 units
  float* dot_s = lse_s + kStreamTile;                              // [kStreamTile]

  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  // The first key tiles are seen by the most queries; they get the lowest block ids.
  const int64_t groups = a.batch * a.kv_heads;
  const int64_t bg = blockIdx.x % groups;
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) / groups * kKeyTile;
  const int64_t b = bg / a.kv_heads, g = bg % a.kv_heads;
  const int64_t group = a.q_heads / a.kv_heads;
  const int64_t q_row_stride = a.q_heads * HEAD_DIM, kv_row_stride = a.kv_heads * HEAD_DIM;
  const int64_t kv_offset = b * a.seq * kv_row_stride + g * HEAD_DIM;
  const int32_t* docs = a.doc_ids ? a.doc_ids + b * a.seq : nullptr;

  load_rows<HEAD_DIM>(k_s, HEAD_DIM, a.k + kv_offset, kv_row_stride, k0, kKeyTile, a.seq);
  load_rows<HEAD_DIM>(v_s, HEAD_DIM, a.v + kv_offset, kv_row_stride, k0, kKeyTile, a.seq);
  load_row_info(k_doc_s, nullptr, nullptr, docs, nullptr, nullptr, k0, kKeyTile, a.seq);

  const int row0 = warp * kRows;  // this warp's first key within the tile
  const int64_t warp_first = k0 + row0;
  float dk_acc[kRows][kDims] = {}, dv_acc[kRows][kDims] = {};  // column lane + 32 t

  // Queries before k0 see none of these keys; start at the query tile holding k0.
  const int64_t first_q_tile = k0 / kStreamTile, q_tiles = ceil_div(a.seq, kStreamTile);
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    const int64_t q_offset = b * a.seq * q_row_stride + h * HEAD_DIM;
    const int64_t stat_offset = (b * a.q_heads + h) * a.seq;
    for (int64_t qt = first_q_tile; qt < q_tiles; ++qt) {
      const int64_t i0 = qt * kStreamTile;
      __syncthreads();  // every warp is done with the previous query tile
      load_rows<HEAD_DIM>(q_s, kStride, a.q + q_offset, q_row_stride, i0, kStreamTile, a.seq);
      load_rows<HEAD_DIM>(do_s, kStride, a.dout + q_offset, q_row_stride, i0, kStreamTile, a.seq);
      load_row_info(q_doc_s, lse_s, dot_s, docs, a.lse + stat_offset, a.row_dot + stat_offset, i0,
                    kStreamTile, a.seq);
      __syncthreads();
      // Warp-uniform: this warp's keys are all past the sequence, or all in the causal future of
      // every query of the tile. The warp still takes part in the next tile's barriers.
      if (warp_first >= a.seq || warp_first > i0 + kStreamTile - 1) continue;
      if (docs != nullptr && !warp_shares_a_document<kRows>(k_doc_s + row0, q_doc_s[lane]))
        continue;

      // Lane = query i0 + lane against the warp's keys: s = scores, dp = dO·v.
      float s[kRows], dp[kRows];
      dot_rows<HEAD_DIM, kRows>(k_s + row0 * HEAD_DIM, v_s + row0 * HEAD_DIM, q_s + lane * kStride,
                                do_s + lane * kStride, s, dp);
      const int64_t i = i0 + lane;
      const float lse2 = lse_s[lane], dot = dot_s[lane];
      const int32_t query_doc = q_doc_s[lane];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int64_t key = warp_first + r;
        const bool visible = key <= i && i < a.seq && k_doc_s[row0 + r] == query_doc;
        // Select, not multiply: a masked score may exceed lse, and exp2f would overflow to inf.
        const float p = visible ? exp2f(s[r] * a.score_scale - lse2) : 0.f;
        s[r] = p;                   // P
        dp[r] = p * (dp[r] - dot);  // dS
      }

      // dV[key] += Σ_i P[i][key] · dO[i], dK[key] += Σ_i dS[i][key] · q[i]: lanes over columns,
      // P and dS of query i broadcast from lane i.
#pragma unroll 2
      for (int qi = 0; qi < kStreamTile; ++qi) {
        float qq[kDims], gg[kDims];
        row_columns<HEAD_DIM>(q_s + qi * kStride, qq);
        row_columns<HEAD_DIM>(do_s + qi * kStride, gg);
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const float p = __shfl_sync(0xffffffffu, s[r], qi);
          const float ds = __shfl_sync(0xffffffffu, dp[r], qi);
#pragma unroll
          for (int t = 0; t < kDims; ++t) {
            dv_acc[r][t] = fmaf(p, gg[t], dv_acc[r][t]);
            dk_acc[r][t] = fmaf(ds, qq[t], dk_acc[r][t]);
          }
        }
      }
    }
  }

  // Every key in the sequence is written, zeros included where no query saw it.
  store_rows<HEAD_DIM>(a.dk + kv_offset, kv_row_stride, warp_first, a.seq, dk_acc, a.scale);
  store_rows<HEAD_DIM>(a.dv + kv_offset, kv_row_stride, warp_first, a.seq, dv_acc, 1.f);
}

// dQ for kOwnedTile queries of one (batch, query head). Owned: q, dout rows (warp w has queries
// w·kRows ...). Streamed: 32 key rows of k and v per step, one per lane for the scores.
template <int HEAD_DIM>
__global__ void __launch_bounds__(kThreads, kMinBlocks) dq_kernel(const BackwardArgs a) {
  using Tile = BackwardTile<HEAD_DIM>;
  constexpr int kRows = Tile::kRowsPerWarp, kDims = Tile::kDimsPerLane;
  constexpr int kQueryTile = Tile::kOwnedTile, kStride = Tile::kStride;
  extern __shared__ float4 smem_f4[];
  float* q_s = reinterpret_cast<float*>(smem_f4);  // [kQueryTile][HEAD_DIM]
  float* do_s = q_s + Tile::kOwnedFloats;          // [kQueryTile][HEAD_DIM]
  float* k_s = do_s + Tile::kOwnedFloats;          // [kStreamTile][kStride]
  float* v_s = k_s + Tile::kStreamFloats;          // [kStreamTile][kStride]
  int32_t* q_doc_s = reinterpret_cast<int32_t*>(v_s + Tile::kStreamFloats);  // [kQueryTile]
  int32_t* k_doc_s = q_doc_s + kQueryTile;                                   // [kStreamTile]
  float* lse_s = reinterpret_cast<float*>(k_doc_s + kStreamTile);  // [kQueryTile], log2 units
  float* dot_s = lse_s + kQueryTile;                               // [kQueryTile]

  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  // The last query tiles see the most keys; they get the lowest block ids.
  const int64_t heads = a.batch * a.q_heads;
  const int64_t bh = blockIdx.x % heads;
  const int64_t q_tiles = ceil_div(a.seq, kQueryTile);
  const int64_t q0 = (q_tiles - 1 - static_cast<int64_t>(blockIdx.x) / heads) * kQueryTile;
  const int64_t q_end = q0 + kQueryTile < a.seq ? q0 + kQueryTile : a.seq;
  const int64_t b = bh / a.q_heads, h = bh % a.q_heads;
  const int64_t kv_head = h / (a.q_heads / a.kv_heads);
  const int64_t q_row_stride = a.q_heads * HEAD_DIM, kv_row_stride = a.kv_heads * HEAD_DIM;
  const int64_t q_offset = b * a.seq * q_row_stride + h * HEAD_DIM;
  const int64_t kv_offset = b * a.seq * kv_row_stride + kv_head * HEAD_DIM;
  const int64_t stat_offset = (b * a.q_heads + h) * a.seq;
  const int32_t* docs = a.doc_ids ? a.doc_ids + b * a.seq : nullptr;

  load_rows<HEAD_DIM>(q_s, HEAD_DIM, a.q + q_offset, q_row_stride, q0, kQueryTile, a.seq);
  load_rows<HEAD_DIM>(do_s, HEAD_DIM, a.dout + q_offset, q_row_stride, q0, kQueryTile, a.seq);
  load_row_info(q_doc_s, lse_s, dot_s, docs, a.lse + stat_offset, a.row_dot + stat_offset, q0,
                kQueryTile, a.seq);

  const int row0 = warp * kRows;  // this warp's first query within the tile
  const int64_t warp_first = q0 + row0, warp_last = warp_first + kRows - 1;
  float acc[kRows][kDims] = {};  // Σ_j dS[i][j] · k[j], column lane + 32 t

  // Key tiles up to the one holding the tile's last query; later ones are causally invisible.
  const int64_t key_tiles = ceil_div(q_end, kStreamTile);
  for (int64_t kt = 0; kt < key_tiles; ++kt) {
    const int64_t k0 = kt * kStreamTile;
    __syncthreads();  // every warp is done with the previous key tile
    load_rows<HEAD_DIM>(k_s, kStride, a.k + kv_offset, kv_row_stride, k0, kStreamTile, a.seq);
    load_rows<HEAD_DIM>(v_s, kStride, a.v + kv_offset, kv_row_stride, k0, kStreamTile, a.seq);
    load_row_info(k_doc_s, nullptr, nullptr, docs, nullptr, nullptr, k0, kStreamTile, a.seq);
    __syncthreads();
    // Warp-uniform: this warp's queries are all past the sequence, or the whole key tile lies in
    // their causal future. The warp still takes part in the next tile's barriers.
    if (warp_first >= a.seq || k0 > warp_last) continue;
    if (docs != nullptr && !warp_shares_a_document<kRows>(q_doc_s + row0, k_doc_s[lane])) continue;

    // Lane = key k0 + lane against the warp's queries: s = scores, dp = dO·v.
    float s[kRows], dp[kRows];
    dot_rows<HEAD_DIM, kRows>(q_s + row0 * HEAD_DIM, do_s + row0 * HEAD_DIM, k_s + lane * kStride,
                              v_s + lane * kStride, s, dp);
    const int64_t key = k0 + lane;
    const int32_t key_doc = k_doc_s[lane];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t i = warp_first + r;
      const bool visible = key <= i && i < a.seq && key_doc == q_doc_s[row0 + r];
      // Select, not multiply: a masked score may exceed lse, and exp2f would overflow to inf.
      const float p = visible ? exp2f(s[r] * a.score_scale - lse_s[row0 + r]) : 0.f;
      dp[r] = p * (dp[r] - dot_s[row0 + r]);  // dS
    }

    // acc[i] += Σ_j dS[i][j] · k[j]: lanes over columns, dS[i][j] broadcast from lane j.
#pragma unroll 4
    for (int j = 0; j < kStreamTile; ++j) {
      float kk[kDims];
      row_columns<HEAD_DIM>(k_s + j * kStride, kk);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float ds = __shfl_sync(0xffffffffu, dp[r], j);
#pragma unroll
        for (int t = 0; t < kDims; ++t)
          acc[r][t] = fmaf(ds, kk[t], acc[r][t]);
      }
    }
  }

  store_rows<HEAD_DIM>(a.dq + q_offset, q_row_stride, warp_first, a.seq, acc, a.scale);
}

// Over the 48 KB static limit for head_dim >= 64: opt in to the dynamic size (A100 allows up to
// 163 KB per block, H100 227 KB; the largest here is about 100 KB).
template <class Kernel>
void launch_tiled(Kernel kernel, int64_t blocks, size_t smem_bytes, const BackwardArgs& a,
                  cudaStream_t stream) {
  QWEN3_CHECK(blocks <= INT32_MAX, "attention_backward: {} blocks exceed the grid limit", blocks);
  QWEN3_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem_bytes)));
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem_bytes, stream>>>(a);
  QWEN3_CUDA_CHECK_LAUNCH();
}

template <int HEAD_DIM>
void launch_backward(const BackwardArgs& a, cudaStream_t stream) {
  using Tile = BackwardTile<HEAD_DIM>;
  const int64_t tiles = ceil_div(a.seq, Tile::kOwnedTile);
  launch_tiled(dkv_kernel<HEAD_DIM>, tiles * a.batch * a.kv_heads, Tile::kSmemBytes, a, stream);
  launch_tiled(dq_kernel<HEAD_DIM>, tiles * a.batch * a.q_heads, Tile::kSmemBytes, a, stream);
}

size_t row_dot_bytes(const AttentionDims& d) {
  return static_cast<size_t>(d.batch * d.q_heads * d.seq) * sizeof(float);
}

}  // namespace

size_t attention_backward_workspace_bytes(const AttentionDims& d) {
  // Rounded up to 256 bytes, so a caller can place the workspace inside a larger arena.
  return (row_dot_bytes(d) + 255) / 256 * 256;
}

void attention_backward(const AttentionDims& d, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const bf16* out, const float* lse, const int32_t* doc_ids,
                        void* workspace, bf16* dq, bf16* dk, bf16* dv, cudaStream_t stream) {
  check_attention_dims("attention_backward", d);
  QWEN3_CHECK(dout && q && k && v && out && lse && dq && dk && dv,
              "attention_backward: null input or output pointer");
  QWEN3_CHECK(workspace != nullptr && reinterpret_cast<uintptr_t>(workspace) % 256 == 0,
              "attention_backward: workspace must be non-null and 256-byte aligned");

  float* row_dot = static_cast<float*>(workspace);
  const int64_t rows = d.batch * d.seq * d.q_heads;
  row_dot_kernel<<<grid_for(rows * kWarpSize, kRowDotThreads), kRowDotThreads, 0, stream>>>(
      dout, out, row_dot, d.batch, d.seq, d.q_heads, static_cast<int>(d.head_dim));
  QWEN3_CUDA_CHECK_LAUNCH();

  const float scale = 1.f / std::sqrt(static_cast<float>(d.head_dim));
  const BackwardArgs a{dout,      q,          k,       v,
                       lse,       row_dot,    doc_ids, dq,
                       dk,        dv,         d.batch, d.seq,
                       d.q_heads, d.kv_heads, scale,   attention_score_scale_log2(d.head_dim)};
  dispatch_head_dim(d.head_dim,
                    [&](auto head_dim) { launch_backward<decltype(head_dim)::value>(a, stream); });
}

}  // namespace qwen3::cuda
