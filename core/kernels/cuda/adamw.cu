#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/adamw.h"

namespace qwen3::cuda {

namespace {

constexpr int kThreads = 256;

// The same operations, in the same order, as the CPU kernel (core/kernels/cpu/adamw.cpp). sqrt and
// division round exactly on both; the backends differ only where nvcc fuses a multiply and an add
// into one fma (one rounding instead of two).
template <class Grad>
__global__ void adamw_kernel(float* __restrict__ master, const Grad* __restrict__ grad,
                             float* __restrict__ m, float* __restrict__ v, int64_t n,
                             AdamWKernelArgs a) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_float(grad[i]) * a.grad_scale;
    float w = master[i] * a.decay_factor;
    const float mi = m[i] + a.one_minus_beta1 * (g - m[i]);
    const float vi = v[i] * a.beta2 + a.one_minus_beta2 * g * g;
    const float denom = sqrtf(vi) / a.bias_correction2_sqrt + a.eps;
    w -= a.step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
    master[i] = w;
  }
}

}  // namespace

void adamw_update(float* master, const void* grad, bool grad_bf16, float* m, float* v, int64_t n,
                  const AdamWKernelArgs& args, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned blocks = grid_for(n, kThreads, 1 << 20);
  if (grad_bf16)
    adamw_kernel<bf16>
        <<<blocks, kThreads, 0, stream>>>(master, static_cast<const bf16*>(grad), m, v, n, args);
  else
    adamw_kernel<float>
        <<<blocks, kThreads, 0, stream>>>(master, static_cast<const float*>(grad), m, v, n, args);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
