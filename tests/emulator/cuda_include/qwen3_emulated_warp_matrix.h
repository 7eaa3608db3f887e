#pragma once
// The warp-level matrix instructions of sm_80+ for kernels the host compiler builds against the
// emulator: mma.sync.m16n8k16 (bf16 in, fp32 accumulate), ldmatrix (x1, x2, x4, with and without
// .trans) and cp.async with its commit and wait groups. core/kernels/cuda/warp_matrix.cuh maps its
// wrappers to these in the emulated build; on a GPU they are PTX.
//
// mma and ldmatrix are warp-collective, as on the GPU: every lane of the warp must call them; the
// last lane to arrive computes the whole warp's result from the fragments of all 32 lanes, laid
// out as the PTX ISA's fragment tables say (warp_matrix.cpp). cp.async copies are the calling
// thread's own: their destination is poisoned (NaN) when issued and written only when a
// cp.async.wait_group completes their group, so a read before the wait (or before the barrier that
// publishes it to other threads, in some schedules) sees NaN.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace qwen3::emulator {

// D = A·B + C for one warp: A 16×16 row-major bf16 (four registers), B 16×8 column-major bf16
// (two), C and D 16×8 fp32 (four). `d` may be `c`.
void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                       const float (&c)[4]);

// ldmatrix.sync.aligned.m8n8.x{1,2,4}{,.trans}.shared.b16: `row` is this lane's row address (16
// bytes of 8 b16 in shared memory, 16-byte aligned); lanes 8j..8j+7 give matrix j's rows.
void ldmatrix_x1(uint32_t (&r)[1], const void* row);
void ldmatrix_x2(uint32_t (&r)[2], const void* row);
void ldmatrix_x4(uint32_t (&r)[4], const void* row);
void ldmatrix_x1_trans(uint32_t (&r)[1], const void* row);
void ldmatrix_x2_trans(uint32_t (&r)[2], const void* row);
void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row);

// cp.async.cg.shared.global [shared], [global], 16, source_bytes: copies source_bytes (0..16) of
// device memory and zero-fills the rest of the 16. Both addresses 16-byte aligned.
void cp_async_16(void* shared, const void* global, int source_bytes = 16);
// cp.async.commit_group: the thread's copies issued since the last commit become one group.
void cp_async_commit_group();
// cp.async.wait_group n: completes the thread's groups but the `newest` most recent.
void cp_async_wait_group(int newest);

namespace detail {

struct AsyncCopy {
  void* destination;
  const void* source;
  uint32_t bytes;         // written at the destination
  uint32_t source_bytes;  // read from the source; the rest are zeros
};

// One thread's cp.async state.
struct AsyncCopies {
  std::vector<AsyncCopy> uncommitted;
  std::deque<std::vector<AsyncCopy>> committed;  // oldest first

  size_t pending() const {
    size_t n = uncommitted.size();
    for (const auto& group : committed)
      n += group.size();
    return n;
  }
};

}  // namespace detail
}  // namespace qwen3::emulator
