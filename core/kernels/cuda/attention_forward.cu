// Flash-attention forward on tensor cores (FlashAttention-2's algorithm): a block owns 16-row
// query slices of one KV head's query heads, streams the K/V tiles its rows can see through
// shared memory with cp.async (the next tile loading while the current one is used), and each
// warp computes S = Q·Kᵀ and O += P·V for its 16 rows with mma.m16n8k16 (bf16 in, fp32
// accumulate), keeping the softmax online (running max and sum, rescaled as the max grows).
// Memory is O(seq): the score matrix never exists beyond one 16 × kKeyTile slice per warp.
//
// Fragments (warp_matrix.cuh): lane l = 4g + t holds rows g and g + 8 of its warp's slice. The S
// accumulators of two adjacent 8-key tiles, exponentiated and packed to bf16, are exactly the A
// fragment of P for the next product, so P never leaves the registers; row max and sum need
// shuffles only among the 4 lanes of a group.
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

constexpr int kRowsPerWarp = 16;  // the M of mma.m16n8k16
// Query heads of one KV head that a block serves together, so each K/V tile is loaded once for
// them all: at most 8 (8 warps, 256 threads).
constexpr int kMaxHeadsPerBlock = 8;
constexpr int kMaxThreads = kMaxHeadsPerBlock * kWarpSize;
constexpr float kLn2 = 0.6931471805599453f;

template <int HEAD_DIM>
struct ForwardTile {
  static_assert(HEAD_DIM % 16 == 0, "head_dim must be a multiple of the mma's K of 16");
  // Keys per tile: 64 keeps 32 score accumulators per lane; at head_dim 256 the O accumulators
  // take 128, so tiles of 32 keys.
  static constexpr int kKeyTile = HEAD_DIM <= 128 ? 64 : 32;
  static constexpr int kStride = kPaddedRow<HEAD_DIM>;
};

// How a block is made up: `heads` query heads of one KV head × `token_warps` slices of 16 tokens,
// one warp per (head, slice).
struct BlockShape {
  int heads = 1, token_warps = 1;
  __host__ __device__ int warps() const { return heads * token_warps; }
  __host__ __device__ int tokens() const { return token_warps * kRowsPerWarp; }
};

// Shared memory: q[warps · 16][kStride] | k[2][kKeyTile][kStride] | v[2][kKeyTile][kStride]
// (bf16) | query docs[tokens] | key docs[2][kKeyTile] (int32).
template <int HEAD_DIM>
size_t forward_shared_bytes(const BlockShape& shape) {
  using Tile = ForwardTile<HEAD_DIM>;
  const size_t rows = size_t(shape.warps()) * kRowsPerWarp + 4 * Tile::kKeyTile;
  return rows * Tile::kStride * sizeof(bf16) +
         (size_t(shape.tokens()) + 2 * Tile::kKeyTile) * sizeof(int32_t);
}

struct ForwardArgs {
  const bf16* q;           // [batch, seq, q_heads, head_dim]
  const bf16* k;           // [batch, seq, kv_heads, head_dim]
  const bf16* v;           // [batch, seq, kv_heads, head_dim]
  const int32_t* doc_ids;  // [batch, seq] or nullptr
  bf16* out;               // [batch, seq, q_heads, head_dim]
  float* lse;              // [batch, q_heads, seq]
  int64_t batch, seq, q_heads, kv_heads;
  BlockShape shape;
  int64_t token_tiles;  // ceil(seq / shape.tokens())
  float score_scale;    // log2(e) / sqrt(head_dim): scores in log2 units, for exp2f
};

// Max and sum over the 4 lanes of a group (the lanes holding one row's columns).
__device__ inline float group_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ inline float group_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

template <int HEAD_DIM>
__global__ void __launch_bounds__(kMaxThreads) attention_forward_kernel(const ForwardArgs a) {
  using Tile = ForwardTile<HEAD_DIM>;
  constexpr int kKeyTile = Tile::kKeyTile, kStride = Tile::kStride;
  constexpr int kKSteps = HEAD_DIM / 16;  // mma K steps over head_dim
  constexpr int kKeyN8 = kKeyTile / 8;    // 8-key tiles of S
  constexpr int kDimN8 = HEAD_DIM / 8;    // 8-column tiles of O
  const BlockShape shape = a.shape;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int g = lane / 4, t = lane % 4;

  extern __shared__ uint4 smem_u4[];
  bf16* q_s = reinterpret_cast<bf16*>(smem_u4);              // [warps · 16][kStride]
  bf16* k_s = q_s + shape.warps() * kRowsPerWarp * kStride;  // [2][kKeyTile][kStride]
  bf16* v_s = k_s + 2 * kKeyTile * kStride;                  // [2][kKeyTile][kStride]
  int32_t* q_doc_s = reinterpret_cast<int32_t*>(v_s + 2 * kKeyTile * kStride);  // [tokens]
  int32_t* k_doc_s = q_doc_s + shape.tokens();                                  // [2][kKeyTile]

  // Blocks in order of falling work: the last token tiles see the most keys and start first.
  const int64_t chunks = a.q_heads / a.kv_heads / shape.heads;  // blocks per KV head and tile
  const int64_t per_tile = a.batch * a.kv_heads * chunks;
  const int64_t token_tile = a.token_tiles - 1 - static_cast<int64_t>(blockIdx.x) / per_tile;
  const int64_t rest = blockIdx.x % per_tile;
  const int64_t b = rest / (a.kv_heads * chunks), kv_head = rest / chunks % a.kv_heads;
  const int64_t head0 = kv_head * (a.q_heads / a.kv_heads) + rest % chunks * shape.heads;
  const int64_t first = token_tile * shape.tokens();  // the block's tokens: [first, last]
  const int64_t last = first + shape.tokens() <= a.seq ? first + shape.tokens() - 1 : a.seq - 1;
  const int64_t q_row_stride = a.q_heads * HEAD_DIM, kv_row_stride = a.kv_heads * HEAD_DIM;
  const bf16* k_base = a.k + b * a.seq * kv_row_stride + kv_head * HEAD_DIM;
  const bf16* v_base = a.v + b * a.seq * kv_row_stride + kv_head * HEAD_DIM;
  const int32_t* docs = a.doc_ids ? a.doc_ids + b * a.seq : nullptr;

  // This warp: query head head0 + warp / token_warps, tokens [row0, row0 + 16).
  const int64_t head = head0 + warp / shape.token_warps;
  const int64_t row0 = first + warp % shape.token_warps * kRowsPerWarp;
  const bool warp_in_seq = row0 < a.seq;

  for (int r = threadIdx.x; r < shape.tokens(); r += blockDim.x)
    q_doc_s[r] = docs != nullptr && first + r <= last ? docs[first + r] : 0;
  __syncthreads();                                // the query docs, for documents_meet
  const int64_t key_tiles = last / kKeyTile + 1;  // later tiles are causally invisible
  auto next_visible = [&](int64_t from) {
    for (int64_t kt = from; kt < key_tiles; ++kt)
      if (docs == nullptr ||
          documents_meet<false>(
              docs, q_doc_s, kt * kKeyTile,
              kt * kKeyTile + kKeyTile < last + 1 ? kt * kKeyTile + kKeyTile : last + 1, first,
              last + 1))
        return kt;
    return key_tiles;
  };
  auto load_tile = [&](int64_t kt, int buffer) {
    const int64_t k0 = kt * kKeyTile;
    load_rows_async<HEAD_DIM>(k_s + buffer * kKeyTile * kStride, k_base, kv_row_stride, k0,
                              kKeyTile, a.seq);
    load_rows_async<HEAD_DIM>(v_s + buffer * kKeyTile * kStride, v_base, kv_row_stride, k0,
                              kKeyTile, a.seq);
    for (int x = threadIdx.x; x < kKeyTile; x += blockDim.x)
      k_doc_s[buffer * kKeyTile + x] = docs != nullptr && k0 + x < a.seq ? docs[k0 + x] : 0;
  };

  // Q for every warp, and the first visible tile, then Q's A fragments into registers.
  for (int h = 0; h < shape.heads; ++h)
    load_rows_async<HEAD_DIM>(q_s + h * shape.tokens() * kStride,
                              a.q + b * a.seq * q_row_stride + (head0 + h) * HEAD_DIM, q_row_stride,
                              first, shape.tokens(), a.seq);
  int64_t kt = next_visible(0);
  load_tile(kt, 0);
  cp_async_commit_group();
  cp_async_wait_group<0>();
  __syncthreads();
  uint32_t q_frag[kKSteps][4];  // A fragments: rows row0.., columns 16 ks..
  {
    // Lanes 0-15 address rows 0-15 at column 16 ks, lanes 16-31 the same rows at 16 ks + 8.
    const bf16* q_row = q_s + (warp * kRowsPerWarp + lane % 16) * kStride + lane / 16 * 8;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks)
      ldmatrix_x4(q_frag[ks], q_row + ks * 16);
  }

  float o[kDimN8][4] = {};  // unnormalised output: rows g, g + 8; columns 8 n + 2t, + 1
  float row_max[2] = {-INFINITY, -INFINITY};  // running max of visible scores (log2 units)
  float row_sum[2] = {0.f, 0.f};  // running Σ exp2(score − max) over this lane's columns
  const int64_t my_rows[2] = {row0 + g, row0 + g + 8};
  const int32_t my_docs[2] = {q_doc_s[my_rows[0] - first], q_doc_s[my_rows[1] - first]};

  for (int buffer = 0; kt < key_tiles; buffer ^= 1) {
    __syncthreads();  // every warp is done with the buffer the next tile goes into
    const int64_t next = next_visible(kt + 1);
    if (next < key_tiles) load_tile(next, buffer ^ 1);
    cp_async_commit_group();
    cp_async_wait_group<1>();  // this tile's copies (the group before the newest) are done
    __syncthreads();           // and everyone's are visible

    const int64_t k0 = kt * kKeyTile;
    kt = next;
    // Warp-uniform: rows all past the sequence, or the whole tile in their causal future.
    if (!warp_in_seq || k0 > row0 + kRowsPerWarp - 1) continue;
    const bf16* k_tile = k_s + buffer * kKeyTile * kStride;
    const bf16* v_tile = v_s + buffer * kKeyTile * kStride;
    const int32_t* key_docs = k_doc_s + buffer * kKeyTile;

    // S = Q·Kᵀ: one ldmatrix.x4 gives the B fragments of two 8-key tiles for one K step (K rows
    // are the B columns, so no .trans).
    float s[kKeyN8][4] = {};
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks)
#pragma unroll
      for (int np = 0; np < kKeyN8 / 2; ++np) {
        uint32_t kf[4];
        ldmatrix_x4(kf, k_tile + (np * 16 + lane / 16 * 8 + lane % 8) * kStride + ks * 16 +
                            lane / 8 % 2 * 8);
        const uint32_t b0[2] = {kf[0], kf[1]}, b1[2] = {kf[2], kf[3]};
        mma_m16n8k16_bf16(s[2 * np], q_frag[ks], b0, s[2 * np]);
        mma_m16n8k16_bf16(s[2 * np + 1], q_frag[ks], b1, s[2 * np + 1]);
      }

      // Mask, fold the tile into the running max and sum, and turn s into probabilities.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t i = my_rows[half];
      float tile_max = -INFINITY;
#pragma unroll
      for (int n = 0; n < kKeyN8; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int j = n * 8 + 2 * t + c;
          const bool visible = k0 + j <= i && i < a.seq && key_docs[j] == my_docs[half];
          float& score = s[n][2 * half + c];
          score = visible ? score * a.score_scale : -INFINITY;
          tile_max = fmaxf(tile_max, score);
        }
      const float new_max = fmaxf(row_max[half], group_max(tile_max));
      // Until a row has seen a visible key its max is -inf; measuring from 0 instead gives
      // exp2f(-inf) = 0 where -inf − (-inf) would give NaN.
      const float ref = new_max == -INFINITY ? 0.f : new_max;
      const float rescale = exp2f(row_max[half] - ref);
      float tile_sum = 0.f;
#pragma unroll
      for (int n = 0; n < kKeyN8; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          float& p = s[n][2 * half + c];
          p = exp2f(p - ref);
          tile_sum += p;
        }
      row_sum[half] = row_sum[half] * rescale + tile_sum;
      row_max[half] = new_max;
#pragma unroll
      for (int n = 0; n < kDimN8; ++n) {
        o[n][2 * half] *= rescale;
        o[n][2 * half + 1] *= rescale;
      }
    }

    // O += P·V: the probabilities' accumulators are P's A fragments, and V's rows are keys.
    accumulate_product<HEAD_DIM, kKeyTile>(s, v_tile, o);
  }
  cp_async_wait_group<0>();  // the empty group the last iteration committed

  // Every row in the sequence saw at least its own key, so its sum is positive.
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float sum = group_sum(row_sum[half]);
    const int64_t i = my_rows[half];
    if (!warp_in_seq || i >= a.seq) continue;
    const float inv_sum = 1.f / sum;
    uint32_t* out_row = reinterpret_cast<uint32_t*>(
        a.out + ((b * a.seq + i) * a.q_heads + head) * HEAD_DIM + 2 * t);
#pragma unroll
    for (int n = 0; n < kDimN8; ++n)
      out_row[n * 4] = pack_bf16(o[n][2 * half] * inv_sum, o[n][2 * half + 1] * inv_sum);
    // Σ exp(score) = 2^max · sum, so its natural log is (max + log2 sum) · ln 2.
    if (t == 0) a.lse[(b * a.q_heads + head) * a.seq + i] = (row_max[half] + log2f(sum)) * kLn2;
  }
}

// The most query heads of one KV head, up to kMaxHeadsPerBlock, that divide its group; then
// enough 16-token slices for 4 warps.
BlockShape block_shape(int64_t group) {
  BlockShape shape;
  for (int h = kMaxHeadsPerBlock; h >= 1; --h)
    if (group % h == 0) {
      shape.heads = h;
      break;
    }
  shape.token_warps = shape.heads >= 4 ? 1 : 4 / shape.heads;
  return shape;
}

template <int HEAD_DIM>
void launch_forward(ForwardArgs a, cudaStream_t stream) {
  a.shape = block_shape(a.q_heads / a.kv_heads);
  a.token_tiles = ceil_div(a.seq, a.shape.tokens());
  const int64_t blocks =
      a.token_tiles * a.batch * a.kv_heads * (a.q_heads / a.kv_heads / a.shape.heads);
  QWEN3_CHECK(blocks <= INT32_MAX,
              "attention_forward: {} blocks (token tiles × heads × batch) exceed the grid limit",
              blocks);
  const size_t shared = forward_shared_bytes<HEAD_DIM>(a.shape);
  // Over the 48 KB default at head_dim >= 64: opt in (A100 allows up to 163 KB per block, H100
  // 227 KB; the largest here, head_dim 256 with 8 heads, is about 135 KB).
  QWEN3_CUDA_CHECK(cudaFuncSetAttribute(attention_forward_kernel<HEAD_DIM>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared)));
  attention_forward_kernel<HEAD_DIM>
      <<<static_cast<unsigned>(blocks), a.shape.warps() * kWarpSize, shared, stream>>>(a);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention_forward(const AttentionDims& d, const bf16* q, const bf16* k, const bf16* v,
                       const int32_t* doc_ids, bf16* out, float* lse, cudaStream_t stream) {
  check_attention_dims("attention_forward", d);
  QWEN3_CHECK(q && k && v && out && lse, "attention_forward: null q, k, v, out or lse");
  // The same expression as in the backward, so both see the same scores.
  const float score_scale = attention_score_scale_log2(d.head_dim);
  ForwardArgs a{q,     k,         v,          doc_ids, out, lse,        d.batch,
                d.seq, d.q_heads, d.kv_heads, {},      0,   score_scale};
  dispatch_head_dim(d.head_dim,
                    [&](auto head_dim) { launch_forward<decltype(head_dim)::value>(a, stream); });
}

}  // namespace qwen3::cuda
