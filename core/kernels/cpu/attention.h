#pragma once
// Causal grouped-query attention: query head h reads KV head h / (q_heads / kv_heads).
// softmax(q·kᵀ / sqrt(head_dim)) · v per head, with key j visible to query i when j <= i and, when
// doc_ids is given, doc_ids[j] == doc_ids[i] (packed documents do not see each other).
// Scores are computed one block of queries at a time, so scratch is O(block · seq), never seq².
#include <cstdint>

namespace qwen3::cpu {

struct AttentionShape {
  int64_t batch = 0;
  int64_t seq = 0;
  int64_t q_heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
};

// q[batch, seq, q_heads, head_dim], k, v[batch, seq, kv_heads, head_dim], doc_ids[batch, seq] or
// null -> out[batch, seq, q_heads, head_dim], lse[batch, q_heads, seq] (log-sum-exp of the scaled
// scores, kept for the backward pass).
template <class T>
void attention_forward(const AttentionShape& s, const T* q, const T* k, const T* v,
                       const int32_t* doc_ids, T* out, T* lse);

// Recomputes the probabilities from q, k and lse. dq, dk, dv are overwritten.
template <class T>
void attention_backward(const AttentionShape& s, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const int32_t* doc_ids, T* dq, T* dk, T* dv);

}  // namespace qwen3::cpu
