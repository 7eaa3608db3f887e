#pragma once
// __nv_bfloat16 for the emulator: 16 bits of storage with CUDA's size and alignment, converted by
// the host functions that match __float2bfloat16_rn / __bfloat162float bit for bit
// (core/tensor/bf16.h).
#include <cstdint>

#include "core/tensor/bf16.h"

struct alignas(2) __nv_bfloat16 {
  uint16_t storage;
};

inline __nv_bfloat16 __float2bfloat16_rn(float value) {
  return {qwen3::float_to_bf16_bits(value)};
}

inline __nv_bfloat16 __float2bfloat16(float value) {
  return __float2bfloat16_rn(value);
}

inline float __bfloat162float(__nv_bfloat16 value) {
  return qwen3::bf16_bits_to_float(value.storage);
}

inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 value) {
  return value.storage;
}

inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) {
  return {bits};
}
