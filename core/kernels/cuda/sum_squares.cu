#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/sum_squares.h"

namespace qwen3::cuda {

namespace {

// A fixed grid, whatever the GPU: the partial sums, and so the total's rounding, depend only on
// n. 1,024 blocks of 256 threads keep an H100's 132 SMs busy; the second pass is one block.
constexpr int kBlocks = 1024, kThreads = 256;

template <bool kSquare, class T>
__global__ void sum_partials_kernel(const T* __restrict__ x, int64_t n,
                                    double* __restrict__ partials) {
  __shared__ double scratch[kThreads / kWarpSize];
  double sum = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double value = to_float(x[i]);
    sum += kSquare ? value * value : value;
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// *result = Σ partials, or += with `accumulate`.
__global__ void sum_finish_kernel(const double* __restrict__ partials, double* result,
                                  bool accumulate) {
  __shared__ double scratch[kBlocks / kWarpSize];
  const double total = block_sum(partials[threadIdx.x], scratch);
  if (threadIdx.x == 0) *result = accumulate ? *result + total : total;
}

}  // namespace

size_t sum_squares_workspace_bytes() {
  return kBlocks * sizeof(double);
}

void sum_squares(const void* x, bool x_bf16, int64_t n, double* result, void* workspace,
                 cudaStream_t stream) {
  double* partials = static_cast<double*>(workspace);
  if (x_bf16)
    sum_partials_kernel<true, bf16>
        <<<kBlocks, kThreads, 0, stream>>>(static_cast<const bf16*>(x), n, partials);
  else
    sum_partials_kernel<true, float>
        <<<kBlocks, kThreads, 0, stream>>>(static_cast<const float*>(x), n, partials);
  QWEN3_CUDA_CHECK_LAUNCH();
  sum_finish_kernel<<<1, kBlocks, 0, stream>>>(partials, result, false);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void sum_into(const float* x, int64_t n, double* total, void* workspace, cudaStream_t stream) {
  double* partials = static_cast<double*>(workspace);
  sum_partials_kernel<false, float><<<kBlocks, kThreads, 0, stream>>>(x, n, partials);
  QWEN3_CUDA_CHECK_LAUNCH();
  sum_finish_kernel<<<1, kBlocks, 0, stream>>>(partials, total, true);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
