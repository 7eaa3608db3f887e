#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/cross_entropy.h"
#include "core/util/error.h"

namespace qwen3::cuda {

namespace {

// One block per row. 512 threads: a 151,936-entry row is ~300 loads per thread, enough to hide
// memory latency, and the block reductions stay two levels deep.
constexpr int kThreads = 512;

// Each thread keeps a running (max, Σ exp(x − max)) over its strided share of the row, so the row
// is read once; the block then rescales the partial sums to the row's max.
__global__ void cross_entropy_forward_kernel(const bf16* __restrict__ logits,
                                             const int32_t* __restrict__ targets, int64_t vocab,
                                             int32_t ignore_index, float* __restrict__ losses,
                                             float* __restrict__ lse, IdCheckRecord* ids) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t row = blockIdx.x;
  const bf16* x = logits + row * vocab;
  float running_max = -INFINITY, running_sum = 0.0f;
  for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x) {
    const float v = __bfloat162float(x[c]);
    if (v > running_max) {
      running_sum = running_sum * expf(running_max - v) + 1.0f;
      running_max = v;
    } else {
      // A −∞ logit adds exp(−∞) = 0. Computed as expf(v − running_max) it would be expf(NaN)
      // while running_max is still −∞ (a thread whose first logit is −∞), and poison the row.
      running_sum += v == -INFINITY ? 0.0f : expf(v - running_max);
    }
  }
  const float row_max = block_max(running_max, scratch);
  const float scaled = running_max == -INFINITY ? 0.0f : running_sum * expf(running_max - row_max);
  const float row_sum = block_sum(scaled, scratch);
  if (threadIdx.x != 0) return;
  const float row_lse = row_max + logf(row_sum);
  lse[row] = row_lse;
  const int32_t target = targets[row];
  float loss = 0.0f;
  if (target != ignore_index) {
    if (target >= 0 && target < vocab)
      loss = row_lse - __bfloat162float(x[target]);
    else
      report_bad_id(ids, kIdSiteCrossEntropyForward, row, target, vocab);
  }
  losses[row] = loss;
}

// Each element is read and then written by the same thread: dlogits may alias logits.
__global__ void cross_entropy_backward_kernel(const bf16* logits, const float* __restrict__ lse,
                                              const int32_t* __restrict__ targets, int64_t vocab,
                                              int32_t ignore_index, float scale, bf16* dlogits,
                                              IdCheckRecord* ids) {
  const int64_t row = blockIdx.x;
  const int32_t target = targets[row];
  const bool scored = target != ignore_index && target >= 0 && target < vocab;
  if (target != ignore_index && !scored && threadIdx.x == 0)
    report_bad_id(ids, kIdSiteCrossEntropyBackward, row, target, vocab);
  const bf16* x = logits + row * vocab;
  bf16* dx = dlogits + row * vocab;
  const float row_lse = lse[row];
  for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x) {
    float grad = 0.0f;
    if (scored) {
      grad = scale * expf(__bfloat162float(x[c]) - row_lse);
      if (c == target) grad -= scale;
    }
    dx[c] = __float2bfloat16_rn(grad);
  }
}

void check_rows(int64_t rows) {
  QWEN3_CHECK(rows < (int64_t(1) << 31), "cross_entropy: {} rows exceed the grid", rows);
}

}  // namespace

void cross_entropy_forward(const bf16* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                           int32_t ignore_index, float* losses, float* lse, IdCheckRecord* ids,
                           cudaStream_t stream) {
  check_rows(rows);
  if (rows == 0) return;
  cross_entropy_forward_kernel<<<unsigned(rows), kThreads, 0, stream>>>(
      logits, targets, vocab, ignore_index, losses, lse, ids);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(const bf16* logits, const float* lse, const int32_t* targets,
                            int64_t rows, int64_t vocab, int32_t ignore_index, float scale,
                            bf16* dlogits, IdCheckRecord* ids, cudaStream_t stream) {
  check_rows(rows);
  if (rows == 0) return;
  cross_entropy_backward_kernel<<<unsigned(rows), kThreads, 0, stream>>>(
      logits, lse, targets, vocab, ignore_index, scale, dlogits, ids);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
