#pragma once
// Small CUDA kernels that exercise the emulator itself (probe_kernels.cu goes through the same
// rewrite as the project's kernels). Each function launches one kernel on the default stream
// unless it takes one; pointers are emulated device memory (`sink`: 32 ints the kernel may write).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace qwen3::emulator_probes {

// One block of `threads`: out[i] = in[(i + 1) % threads], passed through static shared memory,
// with or without the __syncthreads between the writes and the reads (without, it races).
void rotate_through_shared(const float* in, float* out, int threads, bool with_barrier);

// The same through `threads` floats of dynamic shared memory.
void rotate_through_dynamic_shared(const float* in, float* out, int threads);

// One warp, lane l holding in[l]; out[k * 32 + l] is lane l's result of, for k = 0..6:
// __shfl_sync from lane 7·l, __shfl_xor_sync with 5, __shfl_down_sync by 3, __shfl_up_sync by 3
// (all with `width`), __ballot_sync of in odd, __any_sync of in == 7, __all_sync of in >= 0.
void shuffles(const int* in, int* out, int width);

// Two warps; each lane gets the sum of its warp's doubles by a butterfly of __shfl_xor_sync.
void warp_sums(const double* in, double* out);

// out[i] = a static __shared__ float and out[threads + i] = a dynamic one, both never written.
void read_unwritten_shared(float* out, int threads);

// Threads below `returning` return at once; the others pass values through shared memory across
// a __syncthreads (which the returned ones must not hold up): out[i] = i + 1 for i >= returning.
void barrier_after_early_return(int* out, int threads, int returning);

// Lanes 0..15 wait at __syncthreads while lanes 16..31 wait in a full-warp shuffle: a deadlock.
void barrier_against_shuffle(int* sink);

// Lane 0 returns while the other lanes shuffle with a full mask: a lane the mask needs is gone.
void shuffle_after_return(int* sink);

// Thread i writes out[i] for i in [0, n]: one element past the end.
void write_one_past_end(float* out, int n);

// out[i] = in[i + 1] for i in [0, n): the last read is past the end of `in`.
void read_one_past_end(const float* in, float* out, int n);

// Recurses with 4 KiB frames far past the fiber's stack.
void overflow_stack(int* sink);

// Writes `bytes` of dynamic shared memory, asking for more than 48 KiB only with `opt_in`.
void use_dynamic_shared(float* out, size_t bytes, bool opt_in);

// A block of 32 × 32 × 2 = 2,048 threads, over the limit of 1,024.
void too_many_threads();

// *counter += 1 per thread by atomicAdd; *first = the first thread's global index by atomicCAS
// (from -1).
void count_atomically(int* counter, int* first, int blocks, int threads);

// A grid (2, 3, 2) of blocks (4, 2, 2): out[g] = 1e6·(flat block) + 1e3·(flat thread)
// + blockDim.x·gridDim.y, g the thread's global flat index.
void coordinates(int* out);

// Two rounds through one shared array with the barrier between them missing: round 2 overwrites
// what round 1's readers may not have read yet. out[i] = sum of both rounds' reads.
void reuse_shared_without_barrier(const float* in, float* out, int threads);

// data[i] = 2·data[i] + 1 for i < n, on `stream`: the order of two launches shows in the result.
void double_plus_one(float* data, int n, cudaStream_t stream);

}  // namespace qwen3::emulator_probes
