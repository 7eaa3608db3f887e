#pragma once
// Softmax cross-entropy over the vocabulary, one row per token (bf16 logits, fp32 statistics).
// Rows are read 8 logits (16 bytes) at a time where the vocabulary is a multiple of 8 and the
// buffers 16-byte aligned. All three launchers compute lse with one device function: the fused
// one gives the bits the forward and backward give in sequence.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/kernels/cuda/id_check.h"

namespace qwen3::cuda {

// logits[rows, vocab], targets[rows] -> losses[rows] (0 where ignored), lse[rows]
void cross_entropy_forward(const __nv_bfloat16* logits, const int32_t* targets, int64_t rows,
                           int64_t vocab, int32_t ignore_index, float* losses, float* lse,
                           IdCheckRecord* ids, cudaStream_t stream);
// dlogits[rows, vocab] = scale · (softmax − onehot), zero rows where ignored; may alias logits.
void cross_entropy_backward(const __nv_bfloat16* logits, const float* lse, const int32_t* targets,
                            int64_t rows, int64_t vocab, int32_t ignore_index, float scale,
                            __nv_bfloat16* dlogits, IdCheckRecord* ids, cudaStream_t stream);
// Both at once, for training, where the scale is known before the forward: losses and lse as the
// forward gives, dlogits (may alias logits) as the backward gives with that lse; one block per row
// reads it twice and writes it once.
void cross_entropy_forward_backward(const __nv_bfloat16* logits, const int32_t* targets,
                                    int64_t rows, int64_t vocab, int32_t ignore_index, float scale,
                                    float* losses, float* lse, __nv_bfloat16* dlogits,
                                    IdCheckRecord* ids, cudaStream_t stream);

}  // namespace qwen3::cuda
