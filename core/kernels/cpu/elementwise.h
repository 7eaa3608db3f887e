#pragma once
// Elementwise ops (cuda/elementwise.h's twin). The residual connection: out = a + b (out may alias a or b). Its backward is the identity, which
// the model realises by accumulating gradients into the residual stream.
#include <cstdint>

namespace qwen3::cpu {

template <class T>
void add_forward(const T* a, const T* b, int64_t n, T* out);

}  // namespace qwen3::cpu
