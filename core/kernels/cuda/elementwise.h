#pragma once
// Elementwise ops on flat buffers: the residual add, a strided copy of columns, and the
// dtype-converting copy and accumulate that move values between fp32 master weights / gradient sums
// and bf16 storage.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace qwen3::cuda {

// out[n] = a[n] + b[n]; out may alias a or b.
void add(const __nv_bfloat16* a, const __nv_bfloat16* b, int64_t n, __nv_bfloat16* out,
         cudaStream_t stream);

// dst[r, 0:cols] = src[r, 0:cols] for r < rows, rows src_stride and dst_stride elements apart:
// a block of columns taken out of (or put into) wider rows, such as v's columns of the fused q/k/v
// projection. src and dst must not overlap.
void copy_columns(const __nv_bfloat16* src, int64_t src_stride, int64_t rows, int64_t cols,
                  __nv_bfloat16* dst, int64_t dst_stride, cudaStream_t stream);

// dst[n] = src[n] converted (round-to-nearest-even into bf16). src_bf16 / dst_bf16 say which side
// is bf16; the other is fp32.
void convert(const void* src, bool src_bf16, int64_t n, void* dst, bool dst_bf16,
             cudaStream_t stream);

// dst[n] (fp32) += src[n] (fp32 or bf16).
void accumulate(const void* src, bool src_bf16, int64_t n, float* dst, cudaStream_t stream);

}  // namespace qwen3::cuda
