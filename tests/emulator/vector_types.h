#pragma once
// The CUDA vector types the kernels and their launchers use, laid out as CUDA lays them out.

struct uint3 {
  unsigned x, y, z;
};

// Grid and block sizes; unnamed dimensions are 1, as in CUDA.
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_size = 1, unsigned y_size = 1, unsigned z_size = 1)
      : x(x_size), y(y_size), z(z_size) {}
};

// 16-byte aligned: the kernels load shared memory through float4 pointers.
struct alignas(16) float4 {
  float x, y, z, w;
};

// 16-byte rows of shared memory (tensor-core tiles), as CUDA aligns them.
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};

// The rotary angles' (sin, cos) table entries.
struct alignas(8) float2 {
  float x, y;
};

struct alignas(8) uint2 {
  unsigned x, y;
};
