#pragma once
// Token embedding lookup and its deterministic backward (bf16 storage, fp32 sums).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "core/kernels/cuda/id_check.h"

namespace qwen3::cuda {

// tokens[n] -> out[n, dim] = table[tokens[i], :]. A bad id writes a zero row and is recorded.
void embedding_forward(const int32_t* tokens, const __nv_bfloat16* table, int64_t n, int64_t vocab,
                       int64_t dim, __nv_bfloat16* out, IdCheckRecord* ids, cudaStream_t stream);

size_t embedding_backward_workspace_bytes(int64_t n, int64_t dim);
// dtable[vocab, dim] += Σ over i with tokens[i] = t of dout[i, :], summed in fp32 in token order;
// a token with more than 64 rows is summed in pieces of consecutive rows by separate blocks, the
// pieces then added in order (embedding.cu). No atomics: the result does not depend on
// scheduling. dtable in bf16 or fp32 (the gradient dtype).
void embedding_backward(const int32_t* tokens, const __nv_bfloat16* dout, int64_t n, int64_t vocab,
                        int64_t dim, __nv_bfloat16* dtable, void* workspace, IdCheckRecord* ids,
                        cudaStream_t stream);
void embedding_backward(const int32_t* tokens, const __nv_bfloat16* dout, int64_t n, int64_t vocab,
                        int64_t dim, float* dtable, void* workspace, IdCheckRecord* ids,
                        cudaStream_t stream);

}  // namespace qwen3::cuda
