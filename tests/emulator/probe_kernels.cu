// Kernels for the emulator's own tests (probe_kernels.h). Plain CUDA: nvcc builds them too.
#include <cuda_runtime.h>

#include "tests/emulator/probe_kernels.h"

namespace qwen3::emulator_probes {

namespace {

constexpr int kMaxThreads = 1024;
constexpr unsigned kFullMask = 0xffffffffu;

__global__ void rotate_kernel(const float* in, float* out, bool with_barrier) {
  __shared__ float values[kMaxThreads];
  const int i = threadIdx.x, n = blockDim.x;
  values[i] = in[i];
  if (with_barrier) __syncthreads();
  out[i] = values[(i + 1) % n];
}

__global__ void rotate_dynamic_kernel(const float* in, float* out) {
  extern __shared__ float dynamic_values[];
  const int i = threadIdx.x, n = blockDim.x;
  dynamic_values[i] = in[i];
  __syncthreads();
  out[i] = dynamic_values[(i + 1) % n];
}

__global__ void shuffles_kernel(const int* in, int* out, int width) {
  const int lane = threadIdx.x;
  const int value = in[lane];
  out[0 * 32 + lane] = __shfl_sync(kFullMask, value, 7 * lane, width);
  out[1 * 32 + lane] = __shfl_xor_sync(kFullMask, value, 5, width);
  out[2 * 32 + lane] = __shfl_down_sync(kFullMask, value, 3, width);
  out[3 * 32 + lane] = __shfl_up_sync(kFullMask, value, 3, width);
  out[4 * 32 + lane] = static_cast<int>(__ballot_sync(kFullMask, value & 1));
  out[5 * 32 + lane] = __any_sync(kFullMask, value == 7);
  out[6 * 32 + lane] = __all_sync(kFullMask, value >= 0);
}

__global__ void warp_sums_kernel(const double* in, double* out) {
  double sum = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2)
    sum += __shfl_xor_sync(kFullMask, sum, offset);
  out[threadIdx.x] = sum;
}

__global__ void read_unwritten_kernel(float* out) {
  __shared__ float never_written[kMaxThreads];
  extern __shared__ float dynamic_never_written[];
  out[threadIdx.x] = never_written[threadIdx.x];
  out[blockDim.x + threadIdx.x] = dynamic_never_written[threadIdx.x];
}

__global__ void early_return_kernel(int* out, int returning) {
  __shared__ int values[kMaxThreads];
  const int i = threadIdx.x;
  if (i < returning) return;
  values[i] = i + 1;
  __syncthreads();
  const int partner = returning + (i - returning + 1) % (blockDim.x - returning);
  out[partner] = values[partner];
}

__global__ void barrier_against_shuffle_kernel(int* sink) {
  if (threadIdx.x < 16)
    __syncthreads();
  else
    sink[threadIdx.x] = __shfl_xor_sync(kFullMask, int(threadIdx.x), 1);
}

__global__ void shuffle_after_return_kernel(int* sink) {
  if (threadIdx.x == 0) return;
  sink[threadIdx.x] = __shfl_xor_sync(kFullMask, int(threadIdx.x), 1);
}

__global__ void double_plus_one_kernel(float* data, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) data[i] = 2.0f * data[i] + 1.0f;
}

__global__ void write_one_past_end_kernel(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 1.0f;
}

__global__ void read_one_past_end_kernel(const float* in, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i + 1];
}

__device__ int recurse(int depth) {
  volatile char frame[4096];
  frame[0] = static_cast<char>(depth);
  if (depth == 0) return frame[0];
  return recurse(depth - 1) + frame[0];
}

__global__ void overflow_kernel(int* sink) {
  sink[threadIdx.x] = recurse(1000);
}

__global__ void dynamic_shared_kernel(float* out, int floats) {
  extern __shared__ float dynamic_memory[];
  for (int i = threadIdx.x; i < floats; i += blockDim.x)
    dynamic_memory[i] = float(i);
  __syncthreads();
  float sum = 0.0f;
  for (int i = threadIdx.x; i < floats; i += blockDim.x)
    sum += dynamic_memory[floats - 1 - i];
  out[threadIdx.x] = sum;
}

__global__ void nothing_kernel() {}

__global__ void atomics_kernel(int* counter, int* first) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(counter, 1);
  atomicCAS(first, -1, i);
}

__global__ void coordinates_kernel(int* out) {
  const int block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int threads = blockDim.x * blockDim.y * blockDim.z;
  out[block * threads + thread] = 1000000 * block + 1000 * thread + blockDim.x * gridDim.y;
}

__global__ void reuse_kernel(const float* in, float* out) {
  __shared__ float values[kMaxThreads];
  const int i = threadIdx.x, n = blockDim.x;
  values[i] = in[i];
  __syncthreads();
  float sum = values[(i + 32) % n];
  values[i] = 2.0f * in[i];  // the __syncthreads() that belongs before this write is missing
  __syncthreads();
  sum += values[(i + 32) % n];
  out[i] = sum;
}

}  // namespace

void rotate_through_shared(const float* in, float* out, int threads, bool with_barrier) {
  rotate_kernel<<<1, threads>>>(in, out, with_barrier);
}

void rotate_through_dynamic_shared(const float* in, float* out, int threads) {
  rotate_dynamic_kernel<<<1, threads, threads * sizeof(float)>>>(in, out);
}

void shuffles(const int* in, int* out, int width) {
  shuffles_kernel<<<1, 32>>>(in, out, width);
}

void warp_sums(const double* in, double* out) {
  warp_sums_kernel<<<1, 64>>>(in, out);
}

void read_unwritten_shared(float* out, int threads) {
  read_unwritten_kernel<<<1, threads, threads * sizeof(float)>>>(out);
}

void barrier_after_early_return(int* out, int threads, int returning) {
  early_return_kernel<<<1, threads>>>(out, returning);
}

void barrier_against_shuffle(int* sink) {
  barrier_against_shuffle_kernel<<<1, 32>>>(sink);
}

void shuffle_after_return(int* sink) {
  shuffle_after_return_kernel<<<1, 32>>>(sink);
}

void write_one_past_end(float* out, int n) {
  write_one_past_end_kernel<<<(n + 1 + 63) / 64, 64>>>(out, n);
}

void read_one_past_end(const float* in, float* out, int n) {
  read_one_past_end_kernel<<<(n + 63) / 64, 64>>>(in, out, n);
}

void overflow_stack(int* sink) {
  overflow_kernel<<<1, 1>>>(sink);
}

void use_dynamic_shared(float* out, size_t bytes, bool opt_in) {
  if (opt_in)
    cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(bytes));
  dynamic_shared_kernel<<<1, 128, bytes>>>(out, static_cast<int>(bytes / sizeof(float)));
}

void too_many_threads() {
  nothing_kernel<<<1, dim3(32, 32, 2)>>>();
}

void count_atomically(int* counter, int* first, int blocks, int threads) {
  atomics_kernel<<<blocks, threads>>>(counter, first);
}

void coordinates(int* out) {
  coordinates_kernel<<<dim3(2, 3, 2), dim3(4, 2, 2)>>>(out);
}

void reuse_shared_without_barrier(const float* in, float* out, int threads) {
  reuse_kernel<<<1, threads>>>(in, out);
}

void double_plus_one(float* data, int n, cudaStream_t stream) {
  double_plus_one_kernel<<<(n + 63) / 64, 64, 0, stream>>>(data, n);
}

}  // namespace qwen3::emulator_probes
