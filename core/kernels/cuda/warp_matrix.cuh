#pragma once
// The warp-level matrix instructions the tensor-core kernels use (sm_80 and later), as device
// functions over PTX:
//   mma_m16n8k16_bf16   D = A·B + C, A 16×16 row-major bf16, B 16×8 column-major bf16, C/D fp32
//   ldmatrix_x{1,2,4}   8×8 b16 matrices from shared memory into A/B fragments; _trans reads
//                       them by columns
//   cp_async_16         16 bytes global -> shared without the registers, zero-filling past
//                       source_bytes; cp_async_commit_group / cp_async_wait_group<N> order them
// Fragment layouts: lane l, g = l / 4, t = l % 4; A regs (g, 2t) (g+8, 2t) (g, 2t+8) (g+8, 2t+8),
// B regs (2t, g) (2t+8, g), C/D (g, 2t..2t+1) (g+8, 2t..2t+1); the lower-indexed bf16 of a register
// in its low half (PTX ISA, "Matrix Fragments for mma.m16n8k16").
//
// The emulated build (tests/emulator, which the host compiler builds with QWEN3_CUDA_EMULATOR)
// gets the same functions as warp-collective operations following those tables: PTX cannot go
// through a host compiler.
#include <cstdint>

#if defined(QWEN3_CUDA_EMULATOR)
#include <qwen3_emulated_warp_matrix.h>

namespace qwen3::cuda {
using emulator::cp_async_16;
using emulator::cp_async_commit_group;
using emulator::ldmatrix_x1;
using emulator::ldmatrix_x1_trans;
using emulator::ldmatrix_x2;
using emulator::ldmatrix_x2_trans;
using emulator::ldmatrix_x4;
using emulator::ldmatrix_x4_trans;
using emulator::mma_m16n8k16_bf16;

template <int kNewest>
inline void cp_async_wait_group() {
  emulator::cp_async_wait_group(kNewest);
}
}  // namespace qwen3::cuda

#else
#include <cuda_runtime.h>

namespace qwen3::cuda {

__device__ inline uint32_t shared_address(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

__device__ inline void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[2], const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
}

__device__ inline void ldmatrix_x1(uint32_t (&r)[1], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0])
               : "r"(shared_address(row))
               : "memory");
}
__device__ inline void ldmatrix_x2(uint32_t (&r)[2], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(shared_address(row))
               : "memory");
}
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row))
               : "memory");
}
__device__ inline void ldmatrix_x1_trans(uint32_t (&r)[1], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0])
               : "r"(shared_address(row))
               : "memory");
}
__device__ inline void ldmatrix_x2_trans(uint32_t (&r)[2], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(shared_address(row))
               : "memory");
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row))
               : "memory");
}

// .cg: cached in L2 only; K/V tiles are read once per block.
__device__ inline void cp_async_16(void* shared, const void* global, int source_bytes = 16) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
               :
               : "r"(shared_address(shared)), "l"(global), "r"(source_bytes)
               : "memory");
}
__device__ inline void cp_async_commit_group() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kNewest>
__device__ inline void cp_async_wait_group() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kNewest) : "memory");
}

}  // namespace qwen3::cuda
#endif
