#pragma once
// Kernels that exercise the emulator's warp-level matrix instructions (core/kernels/cuda/
// warp_matrix.cuh) and block votes one at a time, for the known-answer tests of
// test_warp_matrix.cpp. Each launches one block on the default stream; pointers are emulated
// device memory.
#include <cstdint>

namespace qwen3::emulator_probes {

// One mma.m16n8k16 by `threads` lanes (32 for a full warp): lane l loads a[4l..4l+3],
// b[2l..2l+1], c[4l..4l+3] as its registers and stores its D registers at d[4l..4l+3]. With
// `in_place` the accumulator registers are also the destination (C == D).
void mma(const uint32_t* a, const uint32_t* b, const float* c, float* d, int threads,
         bool in_place);

// `rows` rows of 8 b16 (tile[8r..8r+7]) are copied to shared memory; lane l passes the address of
// row row_of_lane[l] (plus `byte_offset`) to ldmatrix.x`matrices` (1, 2 or 4; .trans with
// `transposed`) and stores its registers at out[4l..]. With `from_global` the lanes pass the
// address in `tile` itself instead. With `odd_lane_matrices` > 0, lane 31 runs the x-that variant
// while the others run x`matrices`.
void ldmatrix(const uint16_t* tile, int rows, const int* row_of_lane, int matrices, bool transposed,
              uint32_t* out, int byte_offset, bool from_global, int odd_lane_matrices);

enum class CpAsyncCase {
  // Each of 32 threads copies its 16 bytes (source[4i..4i+3]), commits, and records its
  // destination before (out[0..127]) and after (out[128..255]) cp.async.wait_group 0.
  kBeforeAndAfterTheWait,
  // Two groups: chunk i, commit, chunk 32 + i, commit; after wait_group 1 out[0..255] holds the
  // destination of both chunks, after wait_group 0 out[256..511].
  kNewestGroupLeftPending,
  // Copies with source sizes 16, 12, 4 and 0 bytes of chunk i; out[16i..16i+15] after the wait.
  kZeroFill,
  // A copy left uncommitted survives wait_group 0: out[0..127] after that wait, out[128..255]
  // after a commit and another wait.
  kUncommitted,
  // Thread i reads thread (i + 1) % 32's chunk after its own wait: out[0..127] with a
  // __syncthreads between, out[128..255] without.
  kReadAnotherThreadsCopy,
  // Returns with a committed group never waited for.
  kReturnWithCopiesInFlight,
  // Copies from the host memory at `source` (not device memory).
  kFromHostMemory,
  // Copies to `out` (device memory, not shared).
  kToGlobalMemory,
};
// source: 32 · 4 floats (64 · 4 for kNewestGroupLeftPending); out: as the case says.
void cp_async(const float* source, float* out, CpAsyncCase which);

// One block of `threads`; thread i votes predicate[i] and stores __syncthreads_count,
// __syncthreads_or and __syncthreads_and at out[3i..3i+2]. Threads with predicate[i] < 0 return
// first, as threads that no longer take part.
void block_votes(const int* predicate, int* out, int threads);

}  // namespace qwen3::emulator_probes
