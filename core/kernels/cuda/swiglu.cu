#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/swiglu.h"

namespace qwen3::cuda {

namespace {

constexpr int kThreads = 256;

__device__ inline float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}

// Element i of the [rows, cols] output is (i / cols, i % cols) of the strided inputs. Each element
// is read and written by one thread, so the outputs may alias the inputs.
__global__ void swiglu_forward_kernel(const bf16* gate, const bf16* up, int64_t n, int64_t cols,
                                      int64_t stride, bf16* h) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t at = i / cols * stride + i % cols;
    const float g = __bfloat162float(gate[at]);
    h[i] = __float2bfloat16_rn(g * sigmoid(g) * __bfloat162float(up[at]));
  }
}

// silu'(x) = σ(x) · (1 + x · (1 − σ(x)))
__global__ void swiglu_backward_kernel(const bf16* dh, const bf16* gate, const bf16* up, int64_t n,
                                       int64_t cols, int64_t stride, bf16* dgate, bf16* dup) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t at = i / cols * stride + i % cols;
    const float g = __bfloat162float(gate[at]), u = __bfloat162float(up[at]);
    const float d = __bfloat162float(dh[i]);
    const float s = sigmoid(g);
    dgate[at] = __float2bfloat16_rn(d * u * s * (1.0f + g * (1.0f - s)));
    dup[at] = __float2bfloat16_rn(d * g * s);
  }
}

}  // namespace

void swiglu_forward(const bf16* gate, const bf16* up, int64_t rows, int64_t cols, int64_t stride,
                    bf16* h, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  swiglu_forward_kernel<<<grid_for(n, kThreads, 1 << 20), kThreads, 0, stream>>>(gate, up, n, cols,
                                                                                 stride, h);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void swiglu_backward(const bf16* dh, const bf16* gate, const bf16* up, int64_t rows, int64_t cols,
                     int64_t stride, bf16* dgate, bf16* dup, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  swiglu_backward_kernel<<<grid_for(n, kThreads, 1 << 20), kThreads, 0, stream>>>(
      dh, gate, up, n, cols, stride, dgate, dup);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
