#pragma once
// Causal grouped-query flash attention on the GPU's tensor cores (FlashAttention-2's algorithm on
// mma.m16n8k16: bf16 operands, fp32 accumulation and softmax), the T×T score matrix never
// materialised (memory O(seq)). Same semantics as core/kernels/cpu/attention.h: query
// head h reads KV head h / (q_heads / kv_heads), scores are scaled by 1/sqrt(head_dim), and key j
// is visible to query i when j <= i and, when doc_ids is given, doc_ids[b, j] == doc_ids[b, i].
// Deterministic: no floating-point atomics, every sum in a fixed order (the backward's depends on
// the device's SM count, through its number of dQ partials). head_dim 16, 32, 64, 128
// or 256. Everything runs on `stream`; the host never waits.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace qwen3::cuda {

struct AttentionDims {
  int64_t batch = 0, seq = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
};

// q[batch, seq, q_heads, head_dim], k, v[batch, seq, kv_heads, head_dim] (bf16, row-major,
// contiguous), doc_ids[batch, seq] int32 or nullptr -> out[batch, seq, q_heads, head_dim] bf16,
// lse[batch, q_heads, seq] f32 (natural-log log-sum-exp of the scaled scores, for the backward).
void attention_forward(const AttentionDims& d, const __nv_bfloat16* q, const __nv_bfloat16* k,
                       const __nv_bfloat16* v, const int32_t* doc_ids, __nv_bfloat16* out,
                       float* lse, cudaStream_t stream);

// Bytes of device scratch attention_backward needs on the current device: the per-row
// D = Σ dout·out and up to 8 fp32 partials of dQ (attention_backward.cu).
size_t attention_backward_workspace_bytes(const AttentionDims& d);

// dq[batch, seq, q_heads, head_dim], dk, dv[batch, seq, kv_heads, head_dim] are overwritten (every
// element written). `workspace`: attention_backward_workspace_bytes(d) bytes, 256-byte aligned.
void attention_backward(const AttentionDims& d, const __nv_bfloat16* dout, const __nv_bfloat16* q,
                        const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* out,
                        const float* lse, const int32_t* doc_ids, void* workspace,
                        __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv,
                        cudaStream_t stream);

}  // namespace qwen3::cuda
