#include "core/cuda/check.h"
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/elementwise.h"

namespace qwen3::cuda {

namespace {

constexpr int kThreads = 256;
// Grid-stride loops with at most 2^20 blocks: enough to fill any current GPU many times over.
constexpr int64_t kMaxBlocks = 1 << 20;

__global__ void add_kernel(const bf16* a, const bf16* b, int64_t n, bf16* out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

template <class Src, class Dst>
__global__ void convert_kernel(const Src* src, int64_t n, Dst* dst) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_float<Dst>(to_float(src[i]));
}

template <class Src>
__global__ void accumulate_kernel(const Src* __restrict__ src, int64_t n, float* dst) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] += to_float(src[i]);
}

__global__ void copy_columns_kernel(const bf16* __restrict__ src, int64_t src_stride, int64_t rows,
                                    int64_t cols, bf16* __restrict__ dst, int64_t dst_stride) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * cols;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

template <class Src, class Dst>
void launch_convert(const void* src, int64_t n, void* dst, cudaStream_t stream) {
  convert_kernel<Src, Dst><<<grid_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
      static_cast<const Src*>(src), n, static_cast<Dst*>(dst));
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace

void add(const bf16* a, const bf16* b, int64_t n, bf16* out, cudaStream_t stream) {
  if (n == 0) return;
  add_kernel<<<grid_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(a, b, n, out);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void copy_columns(const bf16* src, int64_t src_stride, int64_t rows, int64_t cols, bf16* dst,
                  int64_t dst_stride, cudaStream_t stream) {
  if (rows * cols == 0) return;
  copy_columns_kernel<<<grid_for(rows * cols, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
      src, src_stride, rows, cols, dst, dst_stride);
  QWEN3_CUDA_CHECK_LAUNCH();
}

void convert(const void* src, bool src_bf16, int64_t n, void* dst, bool dst_bf16,
             cudaStream_t stream) {
  if (n == 0) return;
  if (src_bf16 == dst_bf16) {
    if (src != dst)
      QWEN3_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * (src_bf16 ? 2 : 4),
                                       cudaMemcpyDeviceToDevice, stream));
    return;
  }
  if (src_bf16)
    launch_convert<bf16, float>(src, n, dst, stream);
  else
    launch_convert<float, bf16>(src, n, dst, stream);
}

void accumulate(const void* src, bool src_bf16, int64_t n, float* dst, cudaStream_t stream) {
  if (n == 0) return;
  if (src_bf16)
    accumulate_kernel<bf16><<<grid_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
        static_cast<const bf16*>(src), n, dst);
  else
    accumulate_kernel<float><<<grid_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
        static_cast<const float*>(src), n, dst);
  QWEN3_CUDA_CHECK_LAUNCH();
}

}  // namespace qwen3::cuda
