#pragma once
// Rotary position embedding with Hugging Face's rotate_half convention: dimension i pairs with
// i + head_dim/2 (not with its neighbour, as in the original RoFormer interleaving).
//   y[i]       = x[i] cos θ_i − x[i + h] sin θ_i
//   y[i + h]   = x[i + h] cos θ_i + x[i] sin θ_i,   θ_i = position · theta^(−2i / head_dim)
#include <cstdint>

namespace qwen3::cpu {

// x[rows, heads, head_dim], positions[rows] -> y (may alias x)
template <class T>
void rope_forward(const T* x, const int32_t* positions, int64_t rows, int64_t heads,
                  int64_t head_dim, double theta, T* y);

// The transpose of the rotation: dx = Rᵀ dy (dx may alias dy).
template <class T>
void rope_backward(const T* dy, const int32_t* positions, int64_t rows, int64_t heads,
                   int64_t head_dim, double theta, T* dx);

}  // namespace qwen3::cpu
