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

// One block per position of the sorted token list. The block at the start of a run of equal
// tokens sums that run's rows in sorted order (stable: original order) and adds the sum into the
// table row once; the other blocks exit at once. No atomics, so the result is deterministic.
__global__ void embedding_backward_kernel(const int32_t* __restrict__ sorted_tokens,
                                          const int32_t* __restrict__ sorted_rows,
                                          const bf16* __restrict__ dout, int64_t n, int64_t vocab,
                                          int64_t dim, bf16* __restrict__ dtable,
                                          IdCheckRecord* ids) {
  const int64_t start = blockIdx.x;
  const int32_t token = sorted_tokens[start];
  if (start > 0 && sorted_tokens[start - 1] == token) return;  // not the start of a run
  if (token < 0 || token >= vocab) {
    if (threadIdx.x == 0)
      report_bad_id(ids, kIdSiteEmbeddingBackward, sorted_rows[start], token, vocab);
    return;
  }
  int64_t end = start + 1;
  while (end < n && sorted_tokens[end] == token)
    ++end;
  bf16* dst = dtable + int64_t(token) * dim;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    float sum = __bfloat162float(dst[c]);
    for (int64_t j = start; j < end; ++j)
      sum += __bfloat162float(dout[int64_t(sorted_rows[j]) * dim + c]);
    dst[c] = __float2bfloat16_rn(sum);
  }
}

// Workspace: sorted tokens, row indices before and after sorting, then CUB's scratch.
struct BackwardWorkspace {
  int32_t* sorted_tokens;
  int32_t* rows;
  int32_t* sorted_rows;
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

BackwardWorkspace carve(void* workspace, int64_t n) {
  char* p = static_cast<char*>(workspace);
  BackwardWorkspace w{};
  w.sorted_tokens = reinterpret_cast<int32_t*>(p);
  w.rows = reinterpret_cast<int32_t*>(p + aligned_ints(n));
  w.sorted_rows = reinterpret_cast<int32_t*>(p + 2 * aligned_ints(n));
  w.sort_scratch = p + 3 * aligned_ints(n);
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

size_t embedding_backward_workspace_bytes(int64_t n) {
  return 3 * aligned_ints(n) + sort_scratch_bytes(n);
}

void embedding_backward(const int32_t* tokens, const bf16* dout, int64_t n, int64_t vocab,
                        int64_t dim, bf16* dtable, void* workspace, IdCheckRecord* ids,
                        cudaStream_t stream) {
  QWEN3_CHECK(n < (int64_t(1) << 31), "embedding_backward: {} tokens exceed the grid", n);
  if (n == 0) return;
  BackwardWorkspace w = carve(workspace, n);
  iota_kernel<<<grid_for(n, 256), 256, 0, stream>>>(w.rows, n);
  QWEN3_CUDA_CHECK_LAUNCH();
  // A stable radix sort: rows of one token stay in their original order.
  QWEN3_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(w.sort_scratch, w.sort_scratch_bytes, tokens,
                                                   w.sorted_tokens, w.rows, w.sorted_rows, n, 0,
                                                   int(sizeof(int32_t) * 8), stream));
  embedding_backward_kernel<<<unsigned(n), kRowThreads, 0, stream>>>(
      w.sorted_tokens, w.sorted_rows, dout, n, vocab, dim, dtable, ids);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
