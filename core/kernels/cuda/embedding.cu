#include <cub/device/device_radix_sort.cuh>

#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/embedding.h"
#include "core/util/error.h"

namespace qwen3::cuda {

namespace {

// 128 threads per row: a Qwen3-0.6B row (1,024 values) takes 8 iterations of coalesced loads.
constexpr int kRowThreads = 128;

// One block per token row.
__global__ void embedding_forward_kernel(const int32_t* __restrict__ tokens,
                                         const bf16* __restrict__ table, int64_t vocab, int64_t dim,
                                         bf16* __restrict__ out, IdCheckRecord* ids) {
  const int64_t row = blockIdx.x;
  const int32_t token = tokens[row];
  const bool valid = token >= 0 && token < vocab;
  if (!valid && threadIdx.x == 0) report_bad_id(ids, kIdSiteEmbeddingForward, row, token, vocab);
  bf16* dst = out + row * dim;
  const bf16* src = table + (valid ? int64_t(token) * dim : 0);
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
    dst[c] = valid ? src[c] : __float2bfloat16_rn(0.0f);
}

__global__ void iota_kernel(int32_t* values, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    values[i] = static_cast<int32_t>(i);
}

// The backward sums each token's rows of dout in the sorted (stable: original) order, no atomics.
// Work is cut into windows of kPieceRows sorted positions, one block each, so a frequent token's
// rows are summed by many blocks at once:
//  - a run of one token no longer than kPieceRows (short) is summed whole by the window where it
//    starts, straight into its table row;
//  - a longer run is cut at the windows' edges into pieces, each summed by its window into an fp32
//    partial, then (embedding_backward_runs_kernel) the partials are added in order into the row.
// A window holds at most two pieces of long runs: one begun before it (slot 2w), one begun in it
// (slot 2w + 1); a long run begun in a window outlives it, so no two do. Every block sums at most
// 2 × kPieceRows rows.
constexpr int64_t kPieceRows = 64;

__device__ bool valid_token(int32_t token, int64_t vocab) {
  return token >= 0 && token < vocab;
}

// Whether the run holding sorted position `p` is longer than kPieceRows.
__device__ bool long_run(const int32_t* __restrict__ sorted_tokens, int64_t n, int64_t p) {
  const int32_t token = sorted_tokens[p];
  int64_t start = p;
  while (start > 0 && p - start <= kPieceRows && sorted_tokens[start - 1] == token)
    --start;
  if (p - start > kPieceRows) return true;
  return start + kPieceRows < n && sorted_tokens[start + kPieceRows] == token;
}

// One past the last position of the run holding `p`, looking no further than `limit`.
__device__ int64_t run_end(const int32_t* __restrict__ sorted_tokens, int64_t p, int64_t limit) {
  int64_t end = p + 1;
  while (end < limit && sorted_tokens[end] == sorted_tokens[p])
    ++end;
  return end;
}

// Σ dout[sorted_rows[j], c] over j in [from, to), in order, starting from `sum`.
__device__ float sum_rows(const int32_t* __restrict__ sorted_rows, const bf16* __restrict__ dout,
                          int64_t dim, int64_t from, int64_t to, int64_t c, float sum) {
  for (int64_t j = from; j < to; ++j)
    sum += __bfloat162float(dout[int64_t(sorted_rows[j]) * dim + c]);
  return sum;
}

// One block per window. The pieces of the window start at its first position and at each run
// start inside it. G: the gradient dtype (bf16 or fp32).
template <class G>
__global__ void embedding_backward_pieces_kernel(const int32_t* __restrict__ sorted_tokens,
                                                 const int32_t* __restrict__ sorted_rows,
                                                 const bf16* __restrict__ dout, int64_t n,
                                                 int64_t vocab, int64_t dim, G* __restrict__ dtable,
                                                 float* __restrict__ partials, IdCheckRecord* ids) {
  const int64_t window = blockIdx.x, first = window * kPieceRows;
  const int64_t last = first + kPieceRows < n ? first + kPieceRows : n;
  for (int64_t p = first; p < last;) {
    const int32_t token = sorted_tokens[p];
    const bool run_start = p == 0 || sorted_tokens[p - 1] != token;
    const int64_t piece_end = run_end(sorted_tokens, p, last);
    if (!valid_token(token, vocab)) {
      if (run_start && threadIdx.x == 0)
        report_bad_id(ids, kIdSiteEmbeddingBackward, sorted_rows[p], token, vocab);
    } else if (long_run(sorted_tokens, n, p)) {
      float* partial = partials + (2 * window + (p == first ? 0 : 1)) * dim;
      for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
        partial[c] = sum_rows(sorted_rows, dout, dim, p, piece_end, c, 0.0f);
    } else if (run_start) {
      const int64_t end = run_end(sorted_tokens, p, n);
      G* dst = dtable + int64_t(token) * dim;
      for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
        dst[c] = from_float<G>(sum_rows(sorted_rows, dout, dim, p, end, c, to_float(dst[c])));
    }
    p = piece_end;
  }
}

// One block per window: the long run starting in it, if any, gets its pieces' partials added in
// order into its table row.
template <class G>
__global__ void embedding_backward_runs_kernel(const int32_t* __restrict__ sorted_tokens, int64_t n,
                                               int64_t vocab, int64_t dim,
                                               const float* __restrict__ partials,
                                               G* __restrict__ dtable) {
  const int64_t window = blockIdx.x, first = window * kPieceRows;
  const int64_t last = first + kPieceRows < n ? first + kPieceRows : n;
  // Only the window's last run can be a long one begun here.
  int64_t p = last - 1;
  while (p > first && sorted_tokens[p - 1] == sorted_tokens[p])
    --p;
  const int32_t token = sorted_tokens[p];
  const bool run_start = p == 0 || sorted_tokens[p - 1] != token;
  if (!run_start || !valid_token(token, vocab) || !long_run(sorted_tokens, n, p)) return;
  G* dst = dtable + int64_t(token) * dim;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    float sum = to_float(dst[c]);
    sum += partials[(2 * window + (p == first ? 0 : 1)) * dim + c];
    for (int64_t w = window + 1; w * kPieceRows < n && sorted_tokens[w * kPieceRows] == token; ++w)
      sum += partials[2 * w * dim + c];
    dst[c] = from_float<G>(sum);
  }
}

// Workspace: sorted tokens, row indices before and after sorting, the long runs' partials
// (two rows of dim floats per window), then CUB's scratch.
struct BackwardWorkspace {
  int32_t* sorted_tokens;
  int32_t* rows;
  int32_t* sorted_rows;
  float* partials;
  void* sort_scratch;
  size_t sort_scratch_bytes;
};

size_t aligned_ints(int64_t n) {
  return static_cast<size_t>(ceil_div(n * int64_t(sizeof(int32_t)), 256) * 256);
}

size_t sort_scratch_bytes(int64_t n) {
  size_t bytes = 0;
  QWEN3_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
      static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), n));
  return bytes;
}

int64_t windows(int64_t n) {
  return ceil_div(n, kPieceRows);
}

size_t partials_bytes(int64_t n, int64_t dim) {
  return static_cast<size_t>(ceil_div(2 * windows(n) * dim * int64_t(sizeof(float)), 256) * 256);
}

BackwardWorkspace carve(void* workspace, int64_t n, int64_t dim) {
  char* p = static_cast<char*>(workspace);
  BackwardWorkspace w{};
  w.sorted_tokens = reinterpret_cast<int32_t*>(p);
  w.rows = reinterpret_cast<int32_t*>(p + aligned_ints(n));
  w.sorted_rows = reinterpret_cast<int32_t*>(p + 2 * aligned_ints(n));
  w.partials = reinterpret_cast<float*>(p + 3 * aligned_ints(n));
  w.sort_scratch = p + 3 * aligned_ints(n) + partials_bytes(n, dim);
  w.sort_scratch_bytes = sort_scratch_bytes(n);
  return w;
}

}  // namespace

void embedding_forward(const int32_t* tokens, const bf16* table, int64_t n, int64_t vocab,
                       int64_t dim, bf16* out, IdCheckRecord* ids, cudaStream_t stream) {
  QWEN3_CHECK(n < (int64_t(1) << 31), "embedding_forward: {} tokens exceed the grid", n);
  if (n == 0) return;
  embedding_forward_kernel<<<unsigned(n), kRowThreads, 0, stream>>>(tokens, table, vocab, dim, out,
                                                                    ids);
  QWEN3_CUDA_CHECK_LAUNCH();
}

size_t embedding_backward_workspace_bytes(int64_t n, int64_t dim) {
  return 3 * aligned_ints(n) + partials_bytes(n, dim) + sort_scratch_bytes(n);
}

namespace {

template <class G>
void embedding_backward_into(const int32_t* tokens, const bf16* dout, int64_t n, int64_t vocab,
                             int64_t dim, G* dtable, void* workspace, IdCheckRecord* ids,
                             cudaStream_t stream) {
  QWEN3_CHECK(n < (int64_t(1) << 31), "embedding_backward: {} tokens exceed the grid", n);
  if (n == 0) return;
  BackwardWorkspace w = carve(workspace, n, dim);
  iota_kernel<<<grid_for(n, 256), 256, 0, stream>>>(w.rows, n);
  QWEN3_CUDA_CHECK_LAUNCH();
  // A stable radix sort: rows of one token stay in their original order.
  QWEN3_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(w.sort_scratch, w.sort_scratch_bytes, tokens,
                                                   w.sorted_tokens, w.rows, w.sorted_rows, n, 0,
                                                   int(sizeof(int32_t) * 8), stream));
  const unsigned blocks = static_cast<unsigned>(windows(n));
  embedding_backward_pieces_kernel<G><<<blocks, kRowThreads, 0, stream>>>(
      w.sorted_tokens, w.sorted_rows, dout, n, vocab, dim, dtable, w.partials, ids);
  QWEN3_CUDA_CHECK_LAUNCH();
  embedding_backward_runs_kernel<G>
      <<<blocks, kRowThreads, 0, stream>>>(w.sorted_tokens, n, vocab, dim, w.partials, dtable);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace

void embedding_backward(const int32_t* tokens, const bf16* dout, int64_t n, int64_t vocab,
                        int64_t dim, bf16* dtable, void* workspace, IdCheckRecord* ids,
                        cudaStream_t stream) {
  embedding_backward_into(tokens, dout, n, vocab, dim, dtable, workspace, ids, stream);
}

void embedding_backward(const int32_t* tokens, const bf16* dout, int64_t n, int64_t vocab,
                        int64_t dim, float* dtable, void* workspace, IdCheckRecord* ids,
                        cudaStream_t stream) {
  embedding_backward_into(tokens, dout, n, vocab, dim, dtable, workspace, ids, stream);
}

}  // namespace qwen3::cuda
