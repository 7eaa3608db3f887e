#pragma once
// The device side of CUDA for kernel sources compiled by the host compiler: qualifiers, the thread
// coordinates, __syncthreads, warp shuffles and votes, atomics, math intrinsics, shared memory and
// the launch. The build rewrites a copy of each kernel source first (rewrite_kernel_source.cmake):
//   kernel<<<grid, block, smem, stream>>>(args)  ->  kernel | launch_config(grid, ...)(args)
//   extern __shared__ T name[];                   ->  T* const name = dynamic_shared_memory<T>();
//   __shared__ T name[N];                         ->  a reference to the block's T[N]
// Every CUDA thread is a fiber; the block's fibers take turns on one host thread (scheduler.cpp),
// switching only where CUDA threads wait for each other.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "qwen3_emulated_warp_matrix.h"
#include "tests/emulator/bf16.h"
#include "tests/emulator/runtime.h"
#include "tests/emulator/vector_types.h"

#define __global__
#define __device__
#define __host__
#define __launch_bounds__(...)

namespace qwen3::emulator {

struct LaunchConfig;

namespace detail {

// The running thread's coordinates; the scheduler updates them at every switch.
struct Coordinates {
  uint3 thread_index{0, 0, 0};
  uint3 block_index{0, 0, 0};
  dim3 block_dim;
  dim3 grid_dim;
  int lane = 0;  // within the warp
};
extern Coordinates coordinates;

// All in scheduler.cpp.
void block_barrier();
// __syncthreads that also returns how many of the block's threads passed a non-zero predicate.
int block_barrier_count(int predicate);
// Deposits this lane's `value`, waits until every lane in `mask` has deposited one, and returns
// the warp's 32 values (those of lanes in `mask` are meaningful), valid until this lane's next
// warp operation.
const uint64_t* warp_exchange(unsigned mask, uint64_t value);
// A full-warp operation on registers: deposits a pointer to this lane's operands and waits for
// the other 31; the last to arrive calls `complete` with all 32 lanes' pointers, while every other
// lane is still suspended inside the call.
void warp_collective(const void* operands, void (*complete)(const uint64_t* lane_operands));
// Whether [pointer, pointer + bytes) lies in the running block's shared memory.
bool in_shared_memory(const void* pointer, size_t bytes);
// The running thread's cp.async copies.
AsyncCopies& running_thread_async_copies();
// Aborts the running kernel with KernelFault(`message`, naming the launch, block and thread).
[[noreturn]] void fail_in_kernel(std::string message);
void check_shuffle_width(int width);
void check_source_lane(unsigned mask, int source_lane);
void* static_shared_storage(const void* key, size_t bytes, size_t alignment);
void* dynamic_shared_storage(size_t alignment);
// Throws KernelFault for a launch configuration a GPU would refuse.
void check_launch(const LaunchConfig& config, const void* kernel);
void run_kernel(const LaunchConfig& config, const void* kernel, void (*thread_body)(void*),
                void* state);

template <class T>
T shuffle(unsigned mask, T value, int source_lane) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(uint64_t),
                "warp shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  const uint64_t* values = warp_exchange(mask, bits);
  check_source_lane(mask, source_lane);
  T result;
  std::memcpy(&result, &values[source_lane], sizeof(T));
  return result;
}

// First lane of the caller's segment of `width` lanes.
inline int segment_base(int width) {
  check_shuffle_width(width);
  return coordinates.lane & ~(width - 1);
}

// Threads run one at a time and switch only where they wait, so a read-modify-write is atomic as
// written.
template <class T, class Update>
T read_modify_write(T* address, Update update) {
  const T old = *address;
  *address = update(old);
  return old;
}

}  // namespace detail

// The block's static __shared__ variable declared with `key` (a static object unique to the
// declaration): the same object for every thread of a block, poisoned when the block starts.
template <class T>
T& static_shared_variable(const void* key) {
  return *static_cast<T*>(detail::static_shared_storage(key, sizeof(T), alignof(T)));
}

// The block's dynamic shared memory (the launch's third parameter), poisoned when the block
// starts; its end abuts a guard page.
template <class T>
T* dynamic_shared_memory() {
  return static_cast<T*>(detail::dynamic_shared_storage(alignof(T)));
}

template <class... Arguments>
struct PendingLaunch;

// <<<grid, block, dynamic shared bytes, stream>>>, and where the launch is (the caller's file and
// line, for messages).
struct LaunchConfig {
  dim3 grid;
  dim3 block;
  size_t dynamic_shared_bytes = 0;
  cudaStream_t stream = nullptr;
  const char* file = "";
  int line = 0;

  template <class... Arguments>
  PendingLaunch<std::decay_t<Arguments>...> operator()(Arguments&&... arguments) const;
};

template <class... Arguments>
struct PendingLaunch {
  LaunchConfig config;
  std::tuple<Arguments...> arguments;
};

template <class... Arguments>
PendingLaunch<std::decay_t<Arguments>...> LaunchConfig::operator()(Arguments&&... arguments) const {
  return {*this, std::tuple<std::decay_t<Arguments>...>(std::forward<Arguments>(arguments)...)};
}

inline LaunchConfig launch_config(dim3 grid, dim3 block, size_t dynamic_shared_bytes = 0,
                                  cudaStream_t stream = nullptr,
                                  const char* file = __builtin_FILE(),
                                  int line = __builtin_LINE()) {
  return {grid, block, dynamic_shared_bytes, stream, file, line};
}

// kernel | launch_config(...)(arguments): checks the configuration now (a bad one throws
// KernelFault here), then queues the kernel on the launch's stream; when the stream runs it, every
// thread of the grid runs before the next queued work. As the CUDA runtime does, the arguments are
// converted to the kernel's parameter types once, at the launch; each thread's call copies them
// into its own parameters.
template <class... Parameters, class... Arguments>
void operator|(void (*kernel)(Parameters...), PendingLaunch<Arguments...>&& launch) {
  static_assert(sizeof...(Parameters) == sizeof...(Arguments),
                "a kernel launched with the wrong number of arguments");
  using ParameterTuple = std::tuple<std::decay_t<Parameters>...>;
  struct Call {
    void (*kernel)(Parameters...);
    ParameterTuple parameters;
  };
  const void* key = reinterpret_cast<const void*>(kernel);
  detail::check_launch(launch.config, key);
  auto call = std::make_shared<Call>(
      Call{kernel, std::make_from_tuple<ParameterTuple>(std::move(launch.arguments))});
  const LaunchConfig config = launch.config;
  const bool queued = enqueue(config.stream, [config, key, call] {
    detail::run_kernel(
        config, key,
        [](void* state) {
          Call& c = *static_cast<Call*>(state);
          std::apply(c.kernel, c.parameters);
        },
        call.get());
  });
  if (!queued) detail::record_error(cudaErrorInvalidResourceHandle);
}

}  // namespace qwen3::emulator

// ---- built-in variables ----
inline const uint3& threadIdx = qwen3::emulator::detail::coordinates.thread_index;
inline const uint3& blockIdx = qwen3::emulator::detail::coordinates.block_index;
inline const dim3& blockDim = qwen3::emulator::detail::coordinates.block_dim;
inline const dim3& gridDim = qwen3::emulator::detail::coordinates.grid_dim;
constexpr int warpSize = 32;

// ---- synchronisation ----
inline void __syncthreads() {
  qwen3::emulator::detail::block_barrier();
}

inline int __syncthreads_count(int predicate) {
  return qwen3::emulator::detail::block_barrier_count(predicate);
}

inline int __syncthreads_or(int predicate) {
  return __syncthreads_count(predicate) != 0;
}

inline int __syncthreads_and(int predicate) {
  return __syncthreads_count(!predicate) == 0;
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  qwen3::emulator::detail::warp_exchange(mask, 0);
}

// One thread runs at a time and every switch is a call the compiler cannot see through, so the
// memory a thread wrote is visible to the next one without fences.
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- warp shuffles and votes ----
template <class T>
T __shfl_sync(unsigned mask, T value, int source_lane, int width = warpSize) {
  const int base = qwen3::emulator::detail::segment_base(width);
  return qwen3::emulator::detail::shuffle(mask, value, base + (source_lane & (width - 1)));
}

// A source lane in a later segment of `width` lanes gives the caller's own value, as in CUDA.
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize) {
  const int base = qwen3::emulator::detail::segment_base(width);
  const int lane = qwen3::emulator::detail::coordinates.lane;
  const int source = lane ^ lane_mask;
  return qwen3::emulator::detail::shuffle(mask, value, source >= base + width ? lane : source);
}

template <class T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = warpSize) {
  const int base = qwen3::emulator::detail::segment_base(width);
  const int lane = qwen3::emulator::detail::coordinates.lane;
  const int source = lane + static_cast<int>(delta);
  return qwen3::emulator::detail::shuffle(mask, value, source >= base + width ? lane : source);
}

template <class T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = warpSize) {
  const int base = qwen3::emulator::detail::segment_base(width);
  const int lane = qwen3::emulator::detail::coordinates.lane;
  const int source = lane - static_cast<int>(delta);
  return qwen3::emulator::detail::shuffle(mask, value, source < base ? lane : source);
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const uint64_t* values = qwen3::emulator::detail::warp_exchange(mask, predicate != 0);
  unsigned ballot = 0;
  for (int lane = 0; lane < warpSize; ++lane)
    if ((mask >> lane & 1u) && values[lane] != 0) ballot |= 1u << lane;
  return ballot;
}

inline int __any_sync(unsigned mask, int predicate) {
  return __ballot_sync(mask, predicate) != 0;
}

inline int __all_sync(unsigned mask, int predicate) {
  return __ballot_sync(mask, predicate) == mask;
}

// ---- atomics ----
inline int atomicCAS(int* address, int compare, int value) {
  return qwen3::emulator::detail::read_modify_write(
      address, [=](int old) { return old == compare ? value : old; });
}
inline unsigned atomicCAS(unsigned* address, unsigned compare, unsigned value) {
  return qwen3::emulator::detail::read_modify_write(
      address, [=](unsigned old) { return old == compare ? value : old; });
}
inline unsigned long long atomicCAS(unsigned long long* address, unsigned long long compare,
                                    unsigned long long value) {
  return qwen3::emulator::detail::read_modify_write(
      address, [=](unsigned long long old) { return old == compare ? value : old; });
}

// The overloads CUDA has, so arguments convert as they do there.
#define QWEN3_EMULATOR_ATOMIC(T, name, new_value)                                                 \
  inline T name(T* address, T value) {                                                            \
    return qwen3::emulator::detail::read_modify_write(address, [=](T old) { return new_value; }); \
  }
QWEN3_EMULATOR_ATOMIC(int, atomicAdd, old + value)
QWEN3_EMULATOR_ATOMIC(unsigned, atomicAdd, old + value)
QWEN3_EMULATOR_ATOMIC(unsigned long long, atomicAdd, old + value)
QWEN3_EMULATOR_ATOMIC(float, atomicAdd, old + value)
QWEN3_EMULATOR_ATOMIC(double, atomicAdd, old + value)
QWEN3_EMULATOR_ATOMIC(int, atomicExch, (static_cast<void>(old), value))
QWEN3_EMULATOR_ATOMIC(unsigned, atomicExch, (static_cast<void>(old), value))
QWEN3_EMULATOR_ATOMIC(unsigned long long, atomicExch, (static_cast<void>(old), value))
QWEN3_EMULATOR_ATOMIC(float, atomicExch, (static_cast<void>(old), value))
QWEN3_EMULATOR_ATOMIC(int, atomicMax, old < value ? value : old)
QWEN3_EMULATOR_ATOMIC(unsigned, atomicMax, old < value ? value : old)
QWEN3_EMULATOR_ATOMIC(unsigned long long, atomicMax, old < value ? value : old)
QWEN3_EMULATOR_ATOMIC(int, atomicMin, value < old ? value : old)
QWEN3_EMULATOR_ATOMIC(unsigned, atomicMin, value < old ? value : old)
QWEN3_EMULATOR_ATOMIC(unsigned long long, atomicMin, value < old ? value : old)
#undef QWEN3_EMULATOR_ATOMIC

// ---- math ----
// expf, exp2f, logf, sincosf, powf, sqrtf, fmaf, fmaxf... are the host's (glibc's) functions,
// correctly rounded or within an ulp; the fast-math intrinsics below are given the accurate
// functions too. So the emulator checks a kernel's logic, not the GPU's rounding.
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}
inline float __expf(float x) {
  return std::exp(x);
}
inline float __logf(float x) {
  return std::log(x);
}
inline float __log2f(float x) {
  return std::log2(x);
}
inline float __powf(float x, float y) {
  return std::pow(x, y);
}
inline float __sinf(float x) {
  return std::sin(x);
}
inline float __cosf(float x) {
  return std::cos(x);
}
inline void __sincosf(float x, float* sine, float* cosine) {
  sincosf(x, sine, cosine);
}
inline float __fdividef(float x, float y) {
  return x / y;
}
inline float __frcp_rn(float x) {
  return 1.0f / x;
}
inline float __fsqrt_rn(float x) {
  return std::sqrt(x);
}
inline float __fmaf_rn(float x, float y, float z) {
  return std::fma(x, y, z);
}
inline float __fadd_rn(float x, float y) {
  return x + y;
}
inline float __fmul_rn(float x, float y) {
  return x * y;
}
// NaN gives 0, as on the GPU.
inline float __saturatef(float x) {
  return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f;
}
