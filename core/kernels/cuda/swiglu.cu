#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/swiglu.h"

namespace qwen3::cuda {

namespace {

constexpr int kThreads = 256;

__device__ inline float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}

// Each element is read and written by one thread, so h may alias gate or up.
__global__ void swiglu_forward_kernel(const bf16* gate, const bf16* up, int64_t n, bf16* h) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = __bfloat162float(gate[i]);
    h[i] = __float2bfloat16_rn(g * sigmoid(g) * __bfloat162float(up[i]));
  }
}

// silu'(x) = σ(x) · (1 + x · (1 − σ(x)))
__global__ void swiglu_backward_kernel(const bf16* dh, const bf16* gate, const bf16* up, int64_t n,
                                       bf16* dgate, bf16* dup) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = __bfloat162float(gate[i]), u = __bfloat162float(up[i]);
    const float d = __bfloat162float(dh[i]);
    const float s = sigmoid(g);
    dgate[i] = __float2bfloat16_rn(d * u * s * (1.0f + g * (1.0f - s)));
    dup[i] = __float2bfloat16_rn(d * g * s);
  }
}

}  // namespace

void swiglu_forward(const bf16* gate, const bf16* up, int64_t n, bf16* h, cudaStream_t stream) {
  if (n == 0) return;
  swiglu_forward_kernel<<<grid_for(n, kThreads, 1 << 20), kThreads, 0, stream>>>(gate, up, n, h);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void swiglu_backward(const bf16* dh, const bf16* gate, const bf16* up, int64_t n, bf16* dgate,
                     bf16* dup, cudaStream_t stream) {
  if (n == 0) return;
  swiglu_backward_kernel<<<grid_for(n, kThreads, 1 << 20), kThreads, 0, stream>>>(dh, gate, up, n,
                                                                                  dgate, dup);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
