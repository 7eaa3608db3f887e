#include <cstdint>

#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/cross_entropy.h"
#include "core/util/error.h"

namespace qwen3::cuda {

namespace {

// One block per row. 512 threads: a 151,936-entry row is ~37 vector loads per thread, and the
// block reductions stay two levels deep.
constexpr int kThreads = 512;

// Logits per load where the rows allow it: 8 bf16 = 16 bytes, one 128-bit transaction. Rows of a
// vocabulary that is a multiple of 8 (Qwen3's 151,936 is), from 16-byte aligned buffers, take
// these; others fall back to one logit per load.
constexpr int kVector = 8;
struct alignas(16) Bf16x8 {
  bf16 v[kVector];
};

// Loads logits [i, i + V) as floats (V = kVector from an aligned address, or 1).
template <int V>
__device__ inline void load_logits(const bf16* x, int64_t i, float (&out)[V]) {
  if constexpr (V == kVector) {
    const Bf16x8 packed = *reinterpret_cast<const Bf16x8*>(x + i);
#pragma unroll
    for (int j = 0; j < V; ++j)
      out[j] = __bfloat162float(packed.v[j]);
  } else {
    out[0] = __bfloat162float(x[i]);
  }
}

template <int V>
__device__ inline void store_gradients(bf16* dx, int64_t i, const float (&g)[V]) {
  if constexpr (V == kVector) {
    Bf16x8 packed;
#pragma unroll
    for (int j = 0; j < V; ++j)
      packed.v[j] = __float2bfloat16_rn(g[j]);
    *reinterpret_cast<Bf16x8*>(dx + i) = packed;
  } else {
    dx[i] = __float2bfloat16_rn(g[0]);
  }
}

// The row's log-sum-exp, read once: each thread keeps a running (max, Σ exp(x − max)) over its
// strided vectors, rescaled once per vector; the block then rescales the partial sums to the row's
// max. −∞ logits add exp(−∞) = 0; while a thread has seen only −∞ its running max stays −∞ and its
// sum 0 (computing exp(−∞ − −∞) would be NaN and poison the row). Every forward kernel below uses
// this one function, so they give the same lse bits. Contains __syncthreads().
template <int V>
__device__ float row_lse(const bf16* __restrict__ x, int64_t vocab, float* scratch) {
  float running_max = -INFINITY, running_sum = 0.0f;
  for (int64_t i = int64_t(threadIdx.x) * V; i < vocab; i += int64_t(blockDim.x) * V) {
    float v[V];
    load_logits<V>(x, i, v);
    float vector_max = v[0];
#pragma unroll
    for (int j = 1; j < V; ++j)
      vector_max = fmaxf(vector_max, v[j]);
    const float new_max = fmaxf(running_max, vector_max);
    if (new_max == -INFINITY) continue;
    float added = 0.0f;
#pragma unroll
    for (int j = 0; j < V; ++j)
      added += expf(v[j] - new_max);
    running_sum = running_sum * expf(running_max - new_max) + added;
    running_max = new_max;
  }
  const float row_max = block_max(running_max, scratch);
  const float scaled = running_max == -INFINITY ? 0.0f : running_sum * expf(running_max - row_max);
  const float row_sum = block_sum(scaled, scratch);
  return row_max + logf(row_sum);
}

// dx = scale · (softmax − onehot(target)) over the row, or 0 where it is not scored. Each element
// is read and then written by the same thread, so dx may be x.
template <int V>
__device__ void write_row_gradient(const bf16* x, bf16* dx, int64_t vocab, float lse, float scale,
                                   bool scored, int32_t target) {
  for (int64_t i = int64_t(threadIdx.x) * V; i < vocab; i += int64_t(blockDim.x) * V) {
    float g[V];
    load_logits<V>(x, i, g);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float grad = 0.0f;
      if (scored) {
        grad = scale * expf(g[j] - lse);
        if (i + j == target) grad -= scale;
      }
      g[j] = grad;
    }
    store_gradients<V>(dx, i, g);
  }
}

__device__ bool scored_target(int32_t target, int32_t ignore_index, int64_t vocab) {
  return target != ignore_index && target >= 0 && target < vocab;
}

template <int V>
__global__ void cross_entropy_forward_kernel(const bf16* __restrict__ logits,
                                             const int32_t* __restrict__ targets, int64_t vocab,
                                             int32_t ignore_index, float* __restrict__ losses,
                                             float* __restrict__ lse, IdCheckRecord* ids) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t row = blockIdx.x;
  const bf16* x = logits + row * vocab;
  const float row_lse_value = row_lse<V>(x, vocab, scratch);
  if (threadIdx.x != 0) return;
  lse[row] = row_lse_value;
  const int32_t target = targets[row];
  const bool scored = scored_target(target, ignore_index, vocab);
  if (target != ignore_index && !scored)
    report_bad_id(ids, kIdSiteCrossEntropyForward, row, target, vocab);
  losses[row] = scored ? row_lse_value - __bfloat162float(x[target]) : 0.0f;
}

template <int V>
__global__ void cross_entropy_backward_kernel(const bf16* logits, const float* __restrict__ lse,
                                              const int32_t* __restrict__ targets, int64_t vocab,
                                              int32_t ignore_index, float scale, bf16* dlogits,
                                              IdCheckRecord* ids) {
  const int64_t row = blockIdx.x;
  const int32_t target = targets[row];
  const bool scored = scored_target(target, ignore_index, vocab);
  if (target != ignore_index && !scored && threadIdx.x == 0)
    report_bad_id(ids, kIdSiteCrossEntropyBackward, row, target, vocab);
  write_row_gradient<V>(logits + row * vocab, dlogits + row * vocab, vocab, lse[row], scale, scored,
                        target);
}

// The forward's statistics and the backward's gradient in one block per row: the row is read for
// its lse, then read again and written as its gradient (possibly in place), so the logits need no
// second pass later and no recomputation.
template <int V>
__global__ void cross_entropy_forward_backward_kernel(const bf16* logits,
                                                      const int32_t* __restrict__ targets,
                                                      int64_t vocab, int32_t ignore_index,
                                                      float scale, float* __restrict__ losses,
                                                      float* __restrict__ lse, bf16* dlogits,
                                                      IdCheckRecord* ids) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t row = blockIdx.x;
  const bf16* x = logits + row * vocab;
  const int32_t target = targets[row];
  const bool scored = scored_target(target, ignore_index, vocab);
  // Read before row_lse's barriers: past them other threads may overwrite it with its gradient.
  const float target_logit = threadIdx.x == 0 && scored ? __bfloat162float(x[target]) : 0.0f;
  const float row_lse_value = row_lse<V>(x, vocab, scratch);
  if (threadIdx.x == 0) {
    lse[row] = row_lse_value;
    losses[row] = scored ? row_lse_value - target_logit : 0.0f;
    if (target != ignore_index && !scored)
      report_bad_id(ids, kIdSiteCrossEntropyForward, row, target, vocab);
  }
  write_row_gradient<V>(x, dlogits + row * vocab, vocab, row_lse_value, scale, scored, target);
}

void check_rows(int64_t rows) {
  QWEN3_CHECK(rows < (int64_t(1) << 31), "cross_entropy: {} rows exceed the grid", rows);
}

// Whether every row of these buffers can be read (and written) 16 bytes at a time.
bool vector_rows(int64_t vocab, const void* a, const void* b = nullptr) {
  auto aligned = [](const void* p) {
    return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0;
  };
  return vocab % kVector == 0 && aligned(a) && aligned(b);
}

}  // namespace

void cross_entropy_forward(const bf16* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                           int32_t ignore_index, float* losses, float* lse, IdCheckRecord* ids,
                           cudaStream_t stream) {
  check_rows(rows);
  if (rows == 0) return;
  if (vector_rows(vocab, logits))
    cross_entropy_forward_kernel<kVector><<<unsigned(rows), kThreads, 0, stream>>>(
        logits, targets, vocab, ignore_index, losses, lse, ids);
  else
    cross_entropy_forward_kernel<1><<<unsigned(rows), kThreads, 0, stream>>>(
        logits, targets, vocab, ignore_index, losses, lse, ids);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(const bf16* logits, const float* lse, const int32_t* targets,
                            int64_t rows, int64_t vocab, int32_t ignore_index, float scale,
                            bf16* dlogits, IdCheckRecord* ids, cudaStream_t stream) {
  check_rows(rows);
  if (rows == 0) return;
  if (vector_rows(vocab, logits, dlogits))
    cross_entropy_backward_kernel<kVector><<<unsigned(rows), kThreads, 0, stream>>>(
        logits, lse, targets, vocab, ignore_index, scale, dlogits, ids);
  else
    cross_entropy_backward_kernel<1><<<unsigned(rows), kThreads, 0, stream>>>(
        logits, lse, targets, vocab, ignore_index, scale, dlogits, ids);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void cross_entropy_forward_backward(const bf16* logits, const int32_t* targets, int64_t rows,
                                    int64_t vocab, int32_t ignore_index, float scale, float* losses,
                                    float* lse, bf16* dlogits, IdCheckRecord* ids,
                                    cudaStream_t stream) {
  check_rows(rows);
  if (rows == 0) return;
  if (vector_rows(vocab, logits, dlogits))
    cross_entropy_forward_backward_kernel<kVector><<<unsigned(rows), kThreads, 0, stream>>>(
        logits, targets, vocab, ignore_index, scale, losses, lse, dlogits, ids);
  else
    cross_entropy_forward_backward_kernel<1><<<unsigned(rows), kThreads, 0, stream>>>(
        logits, targets, vocab, ignore_index, scale, losses, lse, dlogits, ids);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
