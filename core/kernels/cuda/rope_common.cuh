#pragma once
// The rotary angle, shared by rope.cu and qk_norm_rope.cu so that both rotate by the same bits.
#include "core/kernels/cuda/common.cuh"

namespace qwen3::cuda {

// Pair i of a head of 2·half dimensions at `position`. The angle is computed as HF does, in fp32:
// inv_freq = 1 / theta^(2i / head_dim), angle = position · inv_freq, then the accurate sincosf
// (not the fast intrinsic): at 32K positions the angle is tens of thousands of radians.
__device__ inline void rope_sincos(int32_t position, int64_t i, int64_t half, float theta,
                                   float* sin_out, float* cos_out) {
  const float inv_freq = 1.0f / powf(theta, float(2 * i) / float(2 * half));
  sincosf(float(position) * inv_freq, sin_out, cos_out);
}

// Pair i of a head of `token`: read from the batch's table (rope_table: [tokens, half] of
// (sin, cos), the same bits rope_sincos gives) where there is one, else computed.
__device__ inline void rope_angle(const int32_t* positions, const float2* table, int64_t token,
                                  int64_t i, int64_t half, float theta, float* sin_out,
                                  float* cos_out) {
  if (table != nullptr) {
    const float2 entry = table[token * half + i];
    *sin_out = entry.x;
    *cos_out = entry.y;
    return;
  }
  rope_sincos(positions[token], i, half, theta, sin_out, cos_out);
}

}  // namespace qwen3::cuda
