#pragma once
// Token cross-entropy over the vocabulary. Targets are already shifted (target[t] is the token
// after position t); rows whose target is ignore_index contribute no loss and no gradient.
#include <cstdint>

namespace qwen3::cpu {

// logits[rows, vocab], targets[rows] -> losses[rows] (0 where ignored), lse[rows]
template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                           int32_t ignore_index, T* losses, T* lse);

// dlogits = scale · (softmax(logits) − onehot(target)), 0 on ignored rows. dlogits may alias
// logits, so the full logits need not be held twice. `scale` is 1 / (tokens in the global batch),
// which makes the gradient that of the mean loss however the batch is split.
template <class T>
void cross_entropy_backward(const T* logits, const T* lse, const int32_t* targets, int64_t rows,
                            int64_t vocab, int32_t ignore_index, T scale, T* dlogits);

}  // namespace qwen3::cpu
