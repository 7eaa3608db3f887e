#pragma once
// Device helpers shared by the CUDA kernels: dtype conversion, warp and block reductions, grid
// sizing. Storage is bf16 (or fp32 for optimizer state); arithmetic is always fp32 or wider.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace qwen3::cuda {

using bf16 = __nv_bfloat16;

constexpr int kWarpSize = 32;

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

__device__ inline float to_float(float x) {
  return x;
}
__device__ inline float to_float(bf16 x) {
  return __bfloat162float(x);
}

// Round-to-nearest-even into the storage type, as the host's float_to_bf16_bits does.
template <class T>
__device__ inline T from_float(float x);
template <>
__device__ inline float from_float<float>(float x) {
  return x;
}
template <>
__device__ inline bf16 from_float<bf16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ inline float warp_sum(float x) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}
__device__ inline double warp_sum(double x) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}
__device__ inline float warp_max(float x) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

// Sum over the whole block, returned to every thread. The butterfly order is fixed, so the result
// does not depend on timing. `scratch` holds one value per warp; blockDim.x must be a multiple of
// 32. Contains __syncthreads(): every thread of the block must call it.
template <class T>
__device__ inline T block_sum(T x, T* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  x = warp_sum(x);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  T total = lane < warps ? scratch[lane] : T(0);
  return warp_sum(total);
}

__device__ inline float block_max(float x, float* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  const float total = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(total);
}

// Grid size for a grid-stride loop over n elements: enough blocks to fill the GPU several times,
// never more than the work needs.
inline unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 65535) {
  const int64_t blocks = ceil_div(n, threads);
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > max_blocks ? max_blocks : blocks));
}

}  // namespace qwen3::cuda
