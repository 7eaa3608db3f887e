// Kernels for the known-answer tests of the warp-level matrix instructions
// (warp_matrix_probes.h). Plain CUDA over core/kernels/cuda/warp_matrix.cuh: nvcc builds them too.
#include <cuda_runtime.h>

#include "core/kernels/cuda/warp_matrix.cuh"
#include "tests/emulator/warp_matrix_probes.h"

namespace qwen3::emulator_probes {

namespace {

using qwen3::cuda::cp_async_16;
using qwen3::cuda::cp_async_commit_group;
using qwen3::cuda::cp_async_wait_group;

__global__ void mma_kernel(const uint32_t* a, const uint32_t* b, const float* c, float* d,
                           bool in_place) {
  const int l = threadIdx.x;
  const uint32_t a_regs[4] = {a[4 * l], a[4 * l + 1], a[4 * l + 2], a[4 * l + 3]};
  const uint32_t b_regs[2] = {b[2 * l], b[2 * l + 1]};
  float c_regs[4] = {c[4 * l], c[4 * l + 1], c[4 * l + 2], c[4 * l + 3]};
  float d_regs[4] = {};
  if (in_place)
    qwen3::cuda::mma_m16n8k16_bf16(c_regs, a_regs, b_regs, c_regs);
  else
    qwen3::cuda::mma_m16n8k16_bf16(d_regs, a_regs, b_regs, c_regs);
  for (int r = 0; r < 4; ++r)
    d[4 * l + r] = in_place ? c_regs[r] : d_regs[r];
}

template <int kMatrices>
__device__ void load_matrices(const void* row, bool transposed, uint32_t* out) {
  uint32_t r[kMatrices];
  if constexpr (kMatrices == 1) {
    transposed ? qwen3::cuda::ldmatrix_x1_trans(r, row) : qwen3::cuda::ldmatrix_x1(r, row);
  } else if constexpr (kMatrices == 2) {
    transposed ? qwen3::cuda::ldmatrix_x2_trans(r, row) : qwen3::cuda::ldmatrix_x2(r, row);
  } else {
    transposed ? qwen3::cuda::ldmatrix_x4_trans(r, row) : qwen3::cuda::ldmatrix_x4(r, row);
  }
  for (int j = 0; j < kMatrices; ++j)
    out[j] = r[j];
}

__global__ void ldmatrix_kernel(const uint16_t* tile, int rows, const int* row_of_lane,
                                int matrices, bool transposed, uint32_t* out, int byte_offset,
                                bool from_global, int odd_lane_matrices) {
  extern __shared__ uint4 tile_s[];  // [rows]: one 16-byte row each
  const int l = threadIdx.x;
  for (int r = l; r < rows; r += 32)
    tile_s[r] = reinterpret_cast<const uint4*>(tile)[r];
  __syncthreads();
  const char* base =
      from_global ? reinterpret_cast<const char*>(tile) : reinterpret_cast<const char*>(tile_s);
  const void* row = base + row_of_lane[l] * 16 + byte_offset;
  const int count = l == 31 && odd_lane_matrices > 0 ? odd_lane_matrices : matrices;
  if (count == 1) load_matrices<1>(row, transposed, out + 4 * l);
  if (count == 2) load_matrices<2>(row, transposed, out + 4 * l);
  if (count == 4) load_matrices<4>(row, transposed, out + 4 * l);
}

__device__ void store_chunk(const float4& chunk, float* out) {
  out[0] = chunk.x;
  out[1] = chunk.y;
  out[2] = chunk.z;
  out[3] = chunk.w;
}

__global__ void cp_async_kernel(const float* source, float* out, CpAsyncCase which) {
  __shared__ float4 chunks[64];
  const int i = threadIdx.x;
  const float4* from = reinterpret_cast<const float4*>(source);
  switch (which) {
    case CpAsyncCase::kBeforeAndAfterTheWait:
      cp_async_16(&chunks[i], from + i);
      cp_async_commit_group();
      store_chunk(chunks[i], out + 4 * i);
      cp_async_wait_group<0>();
      store_chunk(chunks[i], out + 128 + 4 * i);
      break;
    case CpAsyncCase::kNewestGroupLeftPending:
      cp_async_16(&chunks[i], from + i);
      cp_async_commit_group();
      cp_async_16(&chunks[32 + i], from + 32 + i);
      cp_async_commit_group();
      cp_async_wait_group<1>();
      store_chunk(chunks[i], out + 4 * i);
      store_chunk(chunks[32 + i], out + 128 + 4 * i);
      cp_async_wait_group<0>();
      store_chunk(chunks[i], out + 256 + 4 * i);
      store_chunk(chunks[32 + i], out + 384 + 4 * i);
      break;
    case CpAsyncCase::kZeroFill: {
      const int sizes[4] = {16, 12, 4, 0};
      for (int s = 0; s < 2; ++s) {
        cp_async_16(&chunks[2 * i], from + i, sizes[2 * s]);
        cp_async_16(&chunks[2 * i + 1], from + i, sizes[2 * s + 1]);
        cp_async_commit_group();
        cp_async_wait_group<0>();
        store_chunk(chunks[2 * i], out + 16 * i + 8 * s);
        store_chunk(chunks[2 * i + 1], out + 16 * i + 8 * s + 4);
      }
      break;
    }
    case CpAsyncCase::kUncommitted:
      cp_async_16(&chunks[i], from + i);
      cp_async_wait_group<0>();
      store_chunk(chunks[i], out + 4 * i);
      cp_async_commit_group();
      cp_async_wait_group<0>();
      store_chunk(chunks[i], out + 128 + 4 * i);
      break;
    case CpAsyncCase::kReadAnotherThreadsCopy:
      cp_async_16(&chunks[i], from + i);
      cp_async_commit_group();
      cp_async_wait_group<0>();
      __syncthreads();
      store_chunk(chunks[(i + 1) % 32], out + 4 * i);
      __syncthreads();
      cp_async_16(&chunks[32 + i], from + i);
      cp_async_commit_group();
      cp_async_wait_group<0>();
      store_chunk(chunks[32 + (i + 1) % 32], out + 128 + 4 * i);
      break;
    case CpAsyncCase::kReturnWithCopiesInFlight:
      cp_async_16(&chunks[i], from + i);
      cp_async_commit_group();
      break;
    case CpAsyncCase::kFromHostMemory:
    case CpAsyncCase::kToGlobalMemory:
      cp_async_16(which == CpAsyncCase::kToGlobalMemory ? static_cast<void*>(out + 4 * i)
                                                        : static_cast<void*>(&chunks[i]),
                  from + i);
      cp_async_commit_group();
      cp_async_wait_group<0>();
      break;
  }
}

__global__ void block_votes_kernel(const int* predicate, int* out) {
  const int i = threadIdx.x;
  if (predicate[i] < 0) return;
  out[3 * i] = __syncthreads_count(predicate[i]);
  out[3 * i + 1] = __syncthreads_or(predicate[i]);
  out[3 * i + 2] = __syncthreads_and(predicate[i]);
}

}  // namespace

void mma(const uint32_t* a, const uint32_t* b, const float* c, float* d, int threads,
         bool in_place) {
  mma_kernel<<<1, threads>>>(a, b, c, d, in_place);
}

void ldmatrix(const uint16_t* tile, int rows, const int* row_of_lane, int matrices, bool transposed,
              uint32_t* out, int byte_offset, bool from_global, int odd_lane_matrices) {
  ldmatrix_kernel<<<1, 32, static_cast<size_t>(rows) * 16>>>(tile, rows, row_of_lane, matrices,
                                                             transposed, out, byte_offset,
                                                             from_global, odd_lane_matrices);
}

void cp_async(const float* source, float* out, CpAsyncCase which) {
  cp_async_kernel<<<1, 32>>>(source, out, which);
}

void block_votes(const int* predicate, int* out, int threads) {
  block_votes_kernel<<<1, threads>>>(predicate, out);
}

}  // namespace qwen3::emulator_probes
