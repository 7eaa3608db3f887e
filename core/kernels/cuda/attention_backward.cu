// Flash-attention backward on tensor cores (FlashAttention-2's algorithm), deterministic without
// atomics and without computing Q·Kᵀ or dO·Vᵀ twice:
//   1. row_dot_kernel: D_i = Σ_d dout_i,d · out_i,d into the workspace, laid out like lse.
//   2. backward_kernel: a block owns one (batch, KV head) and every `splits`-th key tile of it.
//      For each of its key tiles it loads K and V once, then streams the query tiles that can see
//      them, for every query head of the group, through shared memory with cp.async (the next
//      tile loading while the current one is used). Each warp owns 16 keys and computes, with
//      mma.m16n8k16, Sᵀ = K·Qᵀ, Pᵀ = exp(Sᵀ − lse), dV += Pᵀ·dO, dPᵀ = V·dOᵀ,
//      dSᵀ = Pᵀ ⊙ (dPᵀ − D), dK += dSᵀ·Q; dK and dV are written once per key tile. dSᵀ goes
//      through shared memory so the block's warps can form dQ_tile = dS·K and add it to the
//      block's own fp32 partial of dQ: no other block writes that partial, so the additions are
//      plain read-modify-writes in a fixed order.
//   3. dq_reduce_kernel: dQ = scale · Σ over splits of the partials, in split order.
// So the result depends only on the shapes and the device's SM count (which sets `splits`), never
// on timing. Fragments and their layouts as in attention_forward.cu (warp_matrix.cuh).
#include <cmath>
#include <cstdint>

#include "core/cuda/check.h"
#include "core/kernels/cuda/attention.h"
#include "core/kernels/cuda/attention_common.cuh"
#include "core/kernels/cuda/attention_tiles.cuh"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/warp_matrix.cuh"
#include "core/util/error.h"

namespace qwen3::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kKeysPerWarp = 16;                 // the M of mma.m16n8k16
constexpr int kKeyTile = kWarps * kKeysPerWarp;  // 64 keys per block step
constexpr int kMaxSplits = 8;                    // bounds the dQ partials' memory
constexpr int kRowDotThreads = 256;              // 8 rows per block, grid-stride
constexpr int kReduceThreads = 256;

template <int HEAD_DIM>
struct BackwardTile {
  static_assert(HEAD_DIM % 16 == 0, "head_dim must be a multiple of the mma's K of 16");
  // Queries per streamed tile: each warp holds Sᵀ and dPᵀ for 16 keys × kQueryTile queries next to
  // dK and dV (2 × HEAD_DIM / 2 floats per lane); 32 queries keep head_dim 128 in registers.
  static constexpr int kQueryTile = HEAD_DIM <= 64 ? 64 : 32;
  static constexpr int kStride = kPaddedRow<HEAD_DIM>;
  static constexpr int kDsStride = kQueryTile + 8;  // dSᵀ rows [key][query], padded likewise
  // dQ_tile (kQueryTile × HEAD_DIM) split over the warps: 16-row groups × column parts.
  static constexpr int kRowGroups = kQueryTile / 16;
  static constexpr int kDimParts = kWarps / kRowGroups;
  static constexpr int kDqDims = HEAD_DIM / kDimParts;
  static_assert(kDqDims % 16 == 0, "each warp's dQ columns come in pairs of 8-column tiles");
  // Shared memory: k, v [kKeyTile][kStride] | q, dout [2][kQueryTile][kStride] | dsᵀ
  // [kKeyTile][kDsStride] (bf16) | lse, D [2][kQueryTile] (fp32) | key docs [kKeyTile], query docs
  // [2][kQueryTile] (int32). Every bf16 array is a multiple of 16 bytes.
  static constexpr int kBf16Elems =
      (2 * kKeyTile + 4 * kQueryTile) * kStride + kKeyTile * kDsStride;
  static constexpr size_t kSmemBytes = kBf16Elems * sizeof(bf16) + 4 * kQueryTile * sizeof(float) +
                                       (kKeyTile + 2 * kQueryTile) * sizeof(int32_t);
};

struct BackwardArgs {
  const bf16* dout;        // [batch, seq, q_heads, head_dim]
  const bf16* q;           // [batch, seq, q_heads, head_dim]
  const bf16* k;           // [batch, seq, kv_heads, head_dim]
  const bf16* v;           // [batch, seq, kv_heads, head_dim]
  const float* lse;        // [batch, q_heads, seq]
  const float* row_dot;    // [batch, q_heads, seq], D of each query row
  const int32_t* doc_ids;  // [batch, seq] or nullptr
  float* dq_partial;       // [splits][batch, seq, q_heads, head_dim], zeroed before the kernel
  bf16* dk;                // [batch, seq, kv_heads, head_dim]
  bf16* dv;                // [batch, seq, kv_heads, head_dim]
  int64_t batch, seq, q_heads, kv_heads;
  int splits;
  float scale;        // 1 / sqrt(head_dim)
  float score_scale;  // log2(e) / sqrt(head_dim): scores in log2 units, for exp2f
};

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

template <int HEAD_DIM>
__global__ void __launch_bounds__(kThreads) backward_kernel(const BackwardArgs a) {
  using Tile = BackwardTile<HEAD_DIM>;
  constexpr int kQueryTile = Tile::kQueryTile, kStride = Tile::kStride;
  constexpr int kQN8 = kQueryTile / 8;  // 8-query tiles of Sᵀ
  constexpr int kDimN8 = HEAD_DIM / 8;  // 8-column tiles of dK, dV
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int g = lane / 4, t = lane % 4;

  extern __shared__ uint4 smem_u4[];
  bf16* k_s = reinterpret_cast<bf16*>(smem_u4);    // [kKeyTile][kStride]
  bf16* v_s = k_s + kKeyTile * kStride;            // [kKeyTile][kStride]
  bf16* q_s = v_s + kKeyTile * kStride;            // [2][kQueryTile][kStride]
  bf16* dout_s = q_s + 2 * kQueryTile * kStride;   // [2][kQueryTile][kStride]
  bf16* ds_s = dout_s + 2 * kQueryTile * kStride;  // [kKeyTile][kDsStride]: dSᵀ
  float* lse_s = reinterpret_cast<float*>(ds_s + kKeyTile * Tile::kDsStride);  // [2][kQueryTile]
  float* row_dot_s = lse_s + 2 * kQueryTile;                                   // [2][kQueryTile]
  int32_t* k_doc_s = reinterpret_cast<int32_t*>(row_dot_s + 2 * kQueryTile);   // [kKeyTile]
  int32_t* q_doc_s = k_doc_s + kKeyTile;                                       // [2][kQueryTile]

  const int split = static_cast<int>(blockIdx.x % a.splits);
  const int64_t b = blockIdx.x / a.splits / a.kv_heads,
                kv_head = blockIdx.x / a.splits % a.kv_heads;
  const int64_t group = a.q_heads / a.kv_heads;
  const int64_t q_row_stride = a.q_heads * HEAD_DIM, kv_row_stride = a.kv_heads * HEAD_DIM;
  const int64_t kv_offset = b * a.seq * kv_row_stride + kv_head * HEAD_DIM;
  const int32_t* docs = a.doc_ids ? a.doc_ids + b * a.seq : nullptr;
  float* dq_partial = a.dq_partial + split * a.batch * a.seq * q_row_stride;
  const int64_t key_tiles = ceil_div(a.seq, kKeyTile);
  const int64_t query_tiles = ceil_div(a.seq, kQueryTile);

  for (int64_t kt = split; kt < key_tiles; kt += a.splits) {
    const int64_t k0 = kt * kKeyTile, k_end = k0 + kKeyTile < a.seq ? k0 + kKeyTile : a.seq;
    const int64_t my_key0 = k0 + warp * kKeysPerWarp;
    __syncthreads();  // every warp is done with the previous key tile and its last query tile
    load_rows_async<HEAD_DIM>(k_s, a.k + kv_offset, kv_row_stride, k0, kKeyTile, a.seq);
    load_rows_async<HEAD_DIM>(v_s, a.v + kv_offset, kv_row_stride, k0, kKeyTile, a.seq);
    cp_async_commit_group();
    for (int x = threadIdx.x; x < kKeyTile; x += kThreads)
      k_doc_s[x] = docs != nullptr && k0 + x < a.seq ? docs[k0 + x] : 0;
    __syncthreads();  // the key docs, for documents_meet

    // Steps: every query head of the group × the query tiles from the one holding k0 on.
    const int64_t first_tile = k0 / kQueryTile, tiles = query_tiles - first_tile;
    const int64_t steps = group * tiles;
    auto step_head = [&](int64_t step) { return kv_head * group + step / tiles; };
    auto query_begin = [&](int64_t step) { return (first_tile + step % tiles) * kQueryTile; };
    auto query_end = [&](int64_t step) {
      return query_begin(step) + kQueryTile < a.seq ? query_begin(step) + kQueryTile : a.seq;
    };
    auto next_visible = [&](int64_t from) {
      for (int64_t step = from; step < steps; ++step)
        if (docs == nullptr ||
            documents_meet<true>(docs, k_doc_s, k0, k_end, query_begin(step), query_end(step)))
          return step;
      return steps;
    };
    auto load_step = [&](int64_t step, int buffer) {
      const int64_t head = step_head(step), i0 = query_begin(step);
      const int64_t q_offset = b * a.seq * q_row_stride + head * HEAD_DIM;
      load_rows_async<HEAD_DIM>(q_s + buffer * kQueryTile * kStride, a.q + q_offset, q_row_stride,
                                i0, kQueryTile, a.seq);
      load_rows_async<HEAD_DIM>(dout_s + buffer * kQueryTile * kStride, a.dout + q_offset,
                                q_row_stride, i0, kQueryTile, a.seq);
      const float* lse = a.lse + (b * a.q_heads + head) * a.seq;
      const float* row_dot = a.row_dot + (b * a.q_heads + head) * a.seq;
      for (int x = threadIdx.x; x < kQueryTile; x += kThreads) {
        const int64_t i = i0 + x;
        const bool in_seq = i < a.seq;
        lse_s[buffer * kQueryTile + x] = in_seq ? lse[i] : 0.f;
        row_dot_s[buffer * kQueryTile + x] = in_seq ? row_dot[i] : 0.f;
        q_doc_s[buffer * kQueryTile + x] = docs != nullptr && in_seq ? docs[i] : 0;
      }
    };

    float dk[kDimN8][4] = {}, dv[kDimN8][4] = {};  // rows g, g + 8 of this warp's keys
    int64_t step = next_visible(0);
    load_step(step, 0);
    cp_async_commit_group();
    for (int buffer = 0; step < steps; buffer ^= 1) {
      __syncthreads();  // every warp is done with the buffer the next step goes into, and dSᵀ
      const int64_t next = next_visible(step + 1);
      if (next < steps) load_step(next, buffer ^ 1);
      cp_async_commit_group();
      cp_async_wait_group<1>();  // K, V and this step's tiles are in
      __syncthreads();

      const int64_t head = step_head(step), i0 = query_begin(step);
      step = next;
      const bf16* q_tile = q_s + buffer * kQueryTile * kStride;
      const bf16* dout_tile = dout_s + buffer * kQueryTile * kStride;
      const float* lse_tile = lse_s + buffer * kQueryTile;
      const float* row_dot_tile = row_dot_s + buffer * kQueryTile;
      const int32_t* q_docs = q_doc_s + buffer * kQueryTile;

      // Pᵀ for this warp's 16 keys against the tile's queries (masked to 0), then dV += Pᵀ·dO.
      float p[kQN8][4] = {};
      rows_times_rows_transposed<HEAD_DIM, kQueryTile>(k_s + warp * kKeysPerWarp * kStride, q_tile,
                                                       p);
#pragma unroll
      for (int n = 0; n < kQN8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key_local = warp * kKeysPerWarp + g + e / 2 * 8;
          const int query_local = n * 8 + 2 * t + e % 2;
          const int64_t key = k0 + key_local, query = i0 + query_local;
          const bool visible =
              key <= query && query < a.seq && k_doc_s[key_local] == q_docs[query_local];
          p[n][e] = visible ? exp2f(p[n][e] * a.score_scale - lse_tile[query_local] * kLog2e) : 0.f;
        }
      accumulate_product<HEAD_DIM, kQueryTile>(p, dout_tile, dv);

      // dSᵀ = Pᵀ ⊙ (V·dOᵀ − D), then dK += dSᵀ·Q; dSᵀ to shared memory for dQ.
      float ds[kQN8][4] = {};
      rows_times_rows_transposed<HEAD_DIM, kQueryTile>(v_s + warp * kKeysPerWarp * kStride,
                                                       dout_tile, ds);
#pragma unroll
      for (int n = 0; n < kQN8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          ds[n][e] = p[n][e] * (ds[n][e] - row_dot_tile[n * 8 + 2 * t + e % 2]);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int key_local = warp * kKeysPerWarp + g + half * 8;
          *reinterpret_cast<uint32_t*>(ds_s + key_local * Tile::kDsStride + n * 8 + 2 * t) =
              pack_bf16(ds[n][2 * half], ds[n][2 * half + 1]);
        }
      }
      accumulate_product<HEAD_DIM, kQueryTile>(ds, q_tile, dk);
      __syncthreads();  // dSᵀ complete

      // dQ_tile = dS·K: this warp's 16 query rows × kDqDims columns, over the tile's 64 keys;
      // dS comes from dSᵀ by ldmatrix .trans, K (row-major [key][d]) by .trans too.
      const int row_group = warp % Tile::kRowGroups, part = warp / Tile::kRowGroups;
      float dq[Tile::kDqDims / 8][4] = {};
#pragma unroll
      for (int kk = 0; kk < kKeyTile / 16; ++kk) {
        uint32_t af[4];
        ldmatrix_x4_trans(af, ds_s + (kk * 16 + lane % 8 + lane / 16 * 8) * Tile::kDsStride +
                                  row_group * 16 + lane / 8 % 2 * 8);
#pragma unroll
        for (int dp = 0; dp < Tile::kDqDims / 16; ++dp) {
          uint32_t bf[4];
          ldmatrix_x4_trans(bf, k_s + (kk * 16 + lane % 8 + lane / 8 % 2 * 8) * kStride +
                                    part * Tile::kDqDims + dp * 16 + lane / 16 * 8);
          const uint32_t b0[2] = {bf[0], bf[1]}, b1[2] = {bf[2], bf[3]};
          mma_m16n8k16_bf16(dq[2 * dp], af, b0, dq[2 * dp]);
          mma_m16n8k16_bf16(dq[2 * dp + 1], af, b1, dq[2 * dp + 1]);
        }
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t query = i0 + row_group * 16 + g + half * 8;
        if (query >= a.seq) continue;
        float* row = dq_partial + (b * a.seq + query) * q_row_stride + head * HEAD_DIM +
                     part * Tile::kDqDims + 2 * t;
#pragma unroll
        for (int n = 0; n < Tile::kDqDims / 8; ++n) {
          row[n * 8] += dq[n][2 * half];
          row[n * 8 + 1] += dq[n][2 * half + 1];
        }
      }
    }

    // This warp's keys: dK (scaled: S = scale · Q·Kᵀ) and dV, written once.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t key = my_key0 + g + half * 8;
      if (key >= a.seq) continue;
      const int64_t offset = kv_offset + key * kv_row_stride + 2 * t;
      uint32_t* dk_row = reinterpret_cast<uint32_t*>(a.dk + offset);
      uint32_t* dv_row = reinterpret_cast<uint32_t*>(a.dv + offset);
#pragma unroll
      for (int n = 0; n < kDimN8; ++n) {
        dk_row[n * 4] = pack_bf16(dk[n][2 * half] * a.scale, dk[n][2 * half + 1] * a.scale);
        dv_row[n * 4] = pack_bf16(dv[n][2 * half], dv[n][2 * half + 1]);
      }
    }
  }
  cp_async_wait_group<0>();  // the empty group the last step committed
}

// dq[e] = scale · Σ_s partial[s][e], the splits in order.
__global__ void __launch_bounds__(kReduceThreads)
    dq_reduce_kernel(const float* partial, int splits, int64_t n, float scale, bf16* dq) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.f;
    for (int s = 0; s < splits; ++s)
      sum += partial[s * n + e];
    dq[e] = from_float<bf16>(sum * scale);
  }
}

// Blocks per (batch, KV head): enough for about two blocks per SM, as many as there are key tiles
// at most, and at most kMaxSplits (each split holds an fp32 copy of dQ).
int backward_splits(const AttentionDims& d) {
  int device = 0, sms = 0;
  QWEN3_CUDA_CHECK(cudaGetDevice(&device));
  QWEN3_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t owners = d.batch * d.kv_heads;
  const int64_t wanted = ceil_div(2 * int64_t(sms), owners);
  const int64_t key_tiles = ceil_div(d.seq, kKeyTile);
  const int64_t cap = key_tiles < kMaxSplits ? key_tiles : kMaxSplits;
  return static_cast<int>(wanted < 1 ? 1 : (wanted > cap ? cap : wanted));
}

size_t round_up_256(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}

size_t row_dot_bytes(const AttentionDims& d) {
  return round_up_256(static_cast<size_t>(d.batch * d.q_heads * d.seq) * sizeof(float));
}

size_t dq_partial_bytes(const AttentionDims& d, int splits) {
  return static_cast<size_t>(splits) *
         static_cast<size_t>(d.batch * d.seq * d.q_heads * d.head_dim) * sizeof(float);
}

template <int HEAD_DIM>
void launch_backward(const BackwardArgs& a, cudaStream_t stream) {
  using Tile = BackwardTile<HEAD_DIM>;
  const int64_t blocks = a.batch * a.kv_heads * a.splits;
  QWEN3_CHECK(blocks <= INT32_MAX, "attention_backward: {} blocks exceed the grid limit", blocks);
  // Over the 48 KB default at head_dim >= 64: opt in (A100 allows up to 163 KB per block, H100
  // 227 KB; the largest here, head_dim 256, is about 110 KB).
  QWEN3_CUDA_CHECK(cudaFuncSetAttribute(backward_kernel<HEAD_DIM>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(Tile::kSmemBytes)));
  backward_kernel<HEAD_DIM>
      <<<static_cast<unsigned>(blocks), kThreads, Tile::kSmemBytes, stream>>>(a);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace

size_t attention_backward_workspace_bytes(const AttentionDims& d) {
  check_attention_dims("attention_backward_workspace_bytes", d);
  // Multiples of 256 bytes, so a caller can place the workspace inside a larger arena.
  return row_dot_bytes(d) + round_up_256(dq_partial_bytes(d, backward_splits(d)));
}

void attention_backward(const AttentionDims& d, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const bf16* out, const float* lse, const int32_t* doc_ids,
                        void* workspace, bf16* dq, bf16* dk, bf16* dv, cudaStream_t stream) {
  check_attention_dims("attention_backward", d);
  QWEN3_CHECK(dout && q && k && v && out && lse && dq && dk && dv,
              "attention_backward: null input or output pointer");
  QWEN3_CHECK(workspace != nullptr && reinterpret_cast<uintptr_t>(workspace) % 256 == 0,
              "attention_backward: workspace must be non-null and 256-byte aligned");

  const int splits = backward_splits(d);
  float* row_dot = static_cast<float*>(workspace);
  float* dq_partial = reinterpret_cast<float*>(static_cast<char*>(workspace) + row_dot_bytes(d));
  const int64_t rows = d.batch * d.seq * d.q_heads;
  row_dot_kernel<<<grid_for(rows * kWarpSize, kRowDotThreads), kRowDotThreads, 0, stream>>>(
      dout, out, row_dot, d.batch, d.seq, d.q_heads, static_cast<int>(d.head_dim));
  QWEN3_CUDA_CHECK_LAUNCH();
  QWEN3_CUDA_CHECK(cudaMemsetAsync(dq_partial, 0, dq_partial_bytes(d, splits), stream));

  const float scale = 1.f / std::sqrt(static_cast<float>(d.head_dim));
  const BackwardArgs a{dout,
                       q,
                       k,
                       v,
                       lse,
                       row_dot,
                       doc_ids,
                       dq_partial,
                       dk,
                       dv,
                       d.batch,
                       d.seq,
                       d.q_heads,
                       d.kv_heads,
                       splits,
                       scale,
                       attention_score_scale_log2(d.head_dim)};
  dispatch_head_dim(d.head_dim,
                    [&](auto head_dim) { launch_backward<decltype(head_dim)::value>(a, stream); });

  const int64_t n = rows * d.head_dim;
  dq_reduce_kernel<<<grid_for(n, kReduceThreads), kReduceThreads, 0, stream>>>(dq_partial, splits,
                                                                               n, scale, dq);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
