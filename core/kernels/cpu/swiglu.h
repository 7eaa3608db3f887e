#pragma once
// The gated activation of Qwen3's MLP: h = silu(gate) ⊙ up, with silu(x) = x · sigmoid(x).
// The MLP is down(h); its projections are linear ops.
#include <cstdint>

namespace qwen3::cpu {

// gate[n], up[n] -> h[n]
template <class T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* h);

// dgate[n], dup[n] overwritten.
template <class T>
void swiglu_backward(const T* dh, const T* gate, const T* up, int64_t n, T* dgate, T* dup);

}  // namespace qwen3::cpu
