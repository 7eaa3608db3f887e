// The emulator's core: a launch runs its blocks one after another on the calling host thread; a
// block's CUDA threads are fibers that take turns, each running until it waits (at __syncthreads,
// in a warp operation) or returns. Barriers and warp operations release their waiters when the
// last participant arrives; when nobody can run and the block has not finished, it is a deadlock.
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "tests/emulator/device.h"
#include "tests/emulator/device_memory.h"
#include "tests/emulator/emulator.h"
#include "tests/emulator/fiber.h"
#include "tests/emulator/guard_pages.h"

namespace qwen3::emulator {

namespace detail {
Coordinates coordinates;
}  // namespace detail

namespace {

using detail::coordinates;

constexpr int kWarpSize = 32;
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDims[3] = {1024, 1024, 64};
constexpr unsigned kMaxGridDims[3] = {2147483647u, 65535, 65535};
// Shared memory per block: at most 48 KiB of static variables, and 48 KiB in all unless the
// kernel opted in to more with cudaFuncSetAttribute, up to the A100's 163 KiB: the smallest
// opt-in limit of the GPUs the project builds for (the H100's is 227 KiB).
constexpr size_t kStaticSharedLimit = size_t(48) << 10;
constexpr size_t kDefaultSharedLimit = size_t(48) << 10;
constexpr size_t kOptInSharedLimit = size_t(163) << 10;
constexpr size_t kSharedAlignment = 16;
// The kernels keep per-thread arrays of up to a few KiB (attention's accumulators); 128 KiB
// leaves room for unoptimised and sanitised builds. Pages are only touched as far as used.
constexpr size_t kFiberStackBytes = size_t(128) << 10;
constexpr unsigned char kPoison = 0xFF;  // NaN as bf16, fp32 and fp64

enum class ThreadState : uint8_t { kReady, kAtBarrier, kInWarpOperation, kExited };

struct EmulatedThread {
  FiberContext context;
  uint3 index{0, 0, 0};
  int linear = 0;  // x + y · blockDim.x + z · blockDim.x · blockDim.y
  ThreadState state = ThreadState::kReady;
  detail::AsyncCopies async_copies;  // the thread's cp.async copies not yet waited for
};

// One warp's pending shuffle or vote. Values are kept per generation parity: a lane released
// from generation g reads its value after the last lane may already have deposited for g + 1,
// but g + 2 cannot start before every lane has left g.
struct Warp {
  unsigned mask = 0;
  unsigned arrived = 0;
  unsigned exited = 0;  // lanes that returned, or that the block does not have
  uint32_t generation = 0;
  uint64_t values[2][kWarpSize] = {};
};

struct SharedVariable {
  const void* key;
  size_t offset;
};

size_t round_up(size_t n, size_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

std::string dims_text(const dim3& d) {
  return fmt::format("({}, {}, {})", d.x, d.y, d.z);
}

std::string dims_text(const uint3& d) {
  return fmt::format("({}, {}, {})", d.x, d.y, d.z);
}

class Emulator {
 public:
  Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  void launch(const LaunchConfig& config, const void* kernel, void (*body)(void*), void* state);
  void check_launch(const LaunchConfig& config, const void* kernel) const {
    check_config(config, kernel);
  }
  int barrier(int predicate);
  const uint64_t* warp_exchange(unsigned mask, uint64_t value,
                                void (*complete)(const uint64_t* values) = nullptr);
  bool in_shared_memory(const void* pointer, size_t bytes) const;
  detail::AsyncCopies& async_copies();
  [[noreturn]] void fail(std::string message);
  void* static_shared(const void* key, size_t bytes, size_t alignment);
  void* dynamic_shared(size_t alignment);
  cudaError_t set_attribute(const void* kernel, cudaFuncAttribute attribute, int value);
  void describe_running(char* buffer, size_t bytes) const;

  Schedule schedule = Schedule::kForward;

 private:
  void check_config(const LaunchConfig& config, const void* kernel) const;
  std::string launch_text(const LaunchConfig& config) const;
  std::string running_text() const;
  void prepare_threads(unsigned count);
  void run_block(const uint3& block);
  void resume(EmulatedThread& thread);
  void wait(ThreadState state);
  void thread_exited();
  void release_barrier();
  [[noreturn]] void deadlock();
  void abandon_block();
  static void thread_main(void* thread);

  // Shared memory: static variables from the bottom, dynamic memory at the top against a guard
  // page.
  char* shared_low_ = nullptr;
  char* shared_high_ = nullptr;
  std::vector<SharedVariable> shared_variables_;
  size_t static_shared_bytes_ = 0;
  size_t dynamic_shared_bytes_ = 0;  // rounded up to kSharedAlignment
  size_t shared_limit_ = kDefaultSharedLimit;
  std::map<const void*, int> dynamic_shared_attributes_;

  std::vector<std::unique_ptr<FiberStack>> stacks_;
  std::vector<EmulatedThread> threads_;
  std::vector<Warp> warps_;
  FiberContext scheduler_;
  EmulatedThread* running_ = nullptr;
  int live_threads_ = 0;
  int at_barrier_ = 0;
  // Threads of this barrier generation that passed a non-zero predicate, kept per generation
  // parity as the warps' values are: a released thread reads its count after the next
  // generation's first arrival may have reset the other parity's.
  uint32_t barrier_generation_ = 0;
  int barrier_counts_[2] = {};
  const LaunchConfig* config_ = nullptr;
  void (*body_)(void*) = nullptr;
  void* body_state_ = nullptr;
  bool aborted_ = false;
  std::string fault_;
};

Emulator& emulator() {
  static Emulator instance;
  return instance;
}

Emulator::Emulator() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t arena = round_up(kOptInSharedLimit, page);
  void* mapping =
      mmap(nullptr, arena + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::bad_alloc();
  shared_low_ = static_cast<char*>(mapping);
  shared_high_ = shared_low_ + arena;
  mprotect(shared_high_, page, PROT_NONE);
  register_guard_page(shared_high_, page, "the guard page after dynamic shared memory");
}

std::string Emulator::launch_text(const LaunchConfig& config) const {
  return fmt::format("kernel launched at {}:{} with grid {} and block {}", config.file, config.line,
                     dims_text(config.grid), dims_text(config.block));
}

std::string Emulator::running_text() const {
  std::string text = launch_text(*config_);
  text += fmt::format(", block {}", dims_text(coordinates.block_index));
  if (running_ != nullptr) text += fmt::format(", thread {}", dims_text(running_->index));
  return text;
}

void Emulator::describe_running(char* buffer, size_t bytes) const {
  if (config_ == nullptr) {
    std::snprintf(buffer, bytes, "host code");
    return;
  }
  const uint3 b = coordinates.block_index;
  if (running_ == nullptr) {
    std::snprintf(buffer, bytes, "emulator between threads of the kernel launched at %s:%d",
                  config_->file, config_->line);
    return;
  }
  const uint3 t = running_->index;
  std::snprintf(buffer, bytes, "kernel launched at %s:%d, block (%u, %u, %u), thread (%u, %u, %u)",
                config_->file, config_->line, b.x, b.y, b.z, t.x, t.y, t.z);
}

void Emulator::fail(std::string message) {
  if (running_ == nullptr) {
    if (config_ == nullptr) throw KernelFault("emulator: " + message);
    throw KernelFault(fmt::format("{}: {}", running_text(), message));
  }
  {
    // The failing fiber is abandoned, never unwound: strings are moved off its stack (the caller
    // owns `message`) and freed here, or they would leak.
    std::string owned = std::move(message);
    fault_ = fmt::format("{}: {}", running_text(), owned);
  }
  aborted_ = true;
  leave_fiber(&running_->context, &scheduler_, true);
  __builtin_trap();  // an aborted fiber is never resumed
}

void Emulator::check_config(const LaunchConfig& config, const void* kernel) const {
  const std::string where = launch_text(config);
  if (running_ != nullptr)
    throw KernelFault(where + ": launched from inside a kernel (not emulated)");
  const unsigned block[3] = {config.block.x, config.block.y, config.block.z};
  const unsigned grid[3] = {config.grid.x, config.grid.y, config.grid.z};
  for (int d = 0; d < 3; ++d) {
    if (block[d] < 1 || block[d] > kMaxBlockDims[d])
      throw KernelFault(fmt::format("{}: block dimension {} is {}, outside [1, {}]", where, d,
                                    block[d], kMaxBlockDims[d]));
    if (grid[d] < 1 || grid[d] > kMaxGridDims[d])
      throw KernelFault(fmt::format("{}: grid dimension {} is {}, outside [1, {}]", where, d,
                                    grid[d], kMaxGridDims[d]));
  }
  const uint64_t threads = uint64_t(block[0]) * block[1] * block[2];
  if (threads > kMaxThreadsPerBlock)
    throw KernelFault(fmt::format("{}: {} threads per block, over the limit of {}", where, threads,
                                  kMaxThreadsPerBlock));
  const auto attribute = dynamic_shared_attributes_.find(kernel);
  const size_t allowed = attribute == dynamic_shared_attributes_.end()
                             ? kDefaultSharedLimit
                             : static_cast<size_t>(attribute->second);
  if (config.dynamic_shared_bytes > allowed)
    throw KernelFault(fmt::format(
        "{}: {} bytes of dynamic shared memory, over the {} bytes allowed (more needs "
        "cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), up to "
        "{})",
        where, config.dynamic_shared_bytes, allowed, kOptInSharedLimit));
}

void Emulator::prepare_threads(unsigned count) {
  while (stacks_.size() < count) {
    stacks_.push_back(std::make_unique<FiberStack>(kFiberStackBytes));
    register_guard_page(stacks_.back()->guard(), stacks_.back()->guard_bytes(),
                        fmt::format("the guard pages below a fiber's {}-byte stack: the thread "
                                    "overflowed its stack",
                                    kFiberStackBytes));
  }
  const dim3 block = config_->block;
  threads_.resize(count);
  for (unsigned i = 0; i < count; ++i) {
    EmulatedThread& t = threads_[i];
    t.linear = static_cast<int>(i);
    t.index = {i % block.x, i / block.x % block.y, i / (block.x * block.y)};
  }
  warps_.assign((count + kWarpSize - 1) / kWarpSize, Warp{});
}

void Emulator::launch(const LaunchConfig& config, const void* kernel, void (*body)(void*),
                      void* state) {
  check_config(config, kernel);
  install_fault_handler();
  // config_ says a launch is running (for messages and the fault handler) until this returns or
  // throws.
  struct EndOfLaunch {
    const LaunchConfig*& config;
    ~EndOfLaunch() { config = nullptr; }
  } end_of_launch{config_};
  config_ = &config;
  body_ = body;
  body_state_ = state;
  aborted_ = false;
  const auto attribute = dynamic_shared_attributes_.find(kernel);
  shared_limit_ =
      attribute == dynamic_shared_attributes_.end() ? kDefaultSharedLimit : kOptInSharedLimit;
  shared_variables_.clear();
  static_shared_bytes_ = 0;
  dynamic_shared_bytes_ = round_up(config.dynamic_shared_bytes, kSharedAlignment);
  coordinates.block_dim = config.block;
  coordinates.grid_dim = config.grid;
  const unsigned threads = config.block.x * config.block.y * config.block.z;
  prepare_threads(threads);

  const uint64_t grid_x = config.grid.x, grid_xy = grid_x * config.grid.y;
  const uint64_t blocks = grid_xy * config.grid.z;
  const bool reverse = schedule == Schedule::kReverse || schedule == Schedule::kWarpByWarpReverse;
  for (uint64_t i = 0; i < blocks; ++i) {
    const uint64_t b = reverse ? blocks - 1 - i : i;
    run_block({static_cast<unsigned>(b % grid_x), static_cast<unsigned>(b % grid_xy / grid_x),
               static_cast<unsigned>(b / grid_xy)});
    if (aborted_) {
      abandon_block();
      throw KernelFault(fault_);
    }
  }
  check_device_memory_margins(launch_text(config));
}

void Emulator::run_block(const uint3& block) {
  coordinates.block_index = block;
  std::memset(shared_low_, kPoison, static_shared_bytes_);
  std::memset(shared_high_ - dynamic_shared_bytes_, kPoison, dynamic_shared_bytes_);
  const int count = static_cast<int>(threads_.size());
  for (size_t w = 0; w < warps_.size(); ++w) {
    warps_[w] = Warp{};
    const int lanes = std::min(kWarpSize, count - static_cast<int>(w) * kWarpSize);
    if (lanes < kWarpSize) warps_[w].exited = ~0u << lanes;
  }
  for (int i = 0; i < count; ++i) {
    threads_[i].state = ThreadState::kReady;
    threads_[i].async_copies = {};
    prepare_fiber(&threads_[i].context, *stacks_[i], &Emulator::thread_main, &threads_[i]);
  }
  live_threads_ = count;
  at_barrier_ = 0;
  barrier_generation_ = 0;

  // Threads are visited in groups: the whole block, or one warp at a time; a group is run until
  // none of its threads can go on before the next group starts.
  const bool by_warp =
      schedule == Schedule::kWarpByWarp || schedule == Schedule::kWarpByWarpReverse;
  const bool reverse = schedule == Schedule::kReverse || schedule == Schedule::kWarpByWarpReverse;
  const int group = by_warp ? kWarpSize : count;
  const int groups = (count + group - 1) / group;
  while (live_threads_ > 0) {
    bool progressed = false;
    for (int g = 0; g < groups; ++g) {
      const int first = (reverse ? groups - 1 - g : g) * group;
      const int end = std::min(count, first + group);
      bool ran;
      do {
        ran = false;
        for (int i = first; i < end; ++i) {
          EmulatedThread& t = threads_[reverse ? first + end - 1 - i : i];
          if (t.state != ThreadState::kReady) continue;
          resume(t);
          if (aborted_) return;
          ran = progressed = true;
        }
      } while (ran && by_warp);
    }
    if (!progressed) deadlock();
  }
}

void Emulator::resume(EmulatedThread& thread) {
  coordinates.thread_index = thread.index;
  coordinates.lane = thread.linear % kWarpSize;
  running_ = &thread;
  resume_fiber(&scheduler_, &thread.context);
  running_ = nullptr;
}

void Emulator::wait(ThreadState state) {
  EmulatedThread& t = *running_;
  t.state = state;
  leave_fiber(&t.context, &scheduler_, false);
}

void Emulator::thread_main(void* thread) {
  Emulator& e = emulator();
  enter_fiber(&e.scheduler_);
  e.body_(e.body_state_);
  e.thread_exited();
  leave_fiber(&static_cast<EmulatedThread*>(thread)->context, &e.scheduler_, true);
  __builtin_trap();  // a finished fiber is never resumed
}

void Emulator::thread_exited() {
  EmulatedThread& t = *running_;
  const unsigned bit = 1u << (t.linear % kWarpSize);
  Warp& w = warps_[t.linear / kWarpSize];
  if (w.arrived != 0 && (w.mask & bit))
    fail(
        fmt::format("returned from the kernel while lanes {:#010x} of its warp wait for it in a "
                    "warp operation with mask {:#010x}",
                    w.arrived, w.mask));
  if (const size_t pending = t.async_copies.pending(); pending > 0)
    fail(
        fmt::format("returned from the kernel with {} cp.async copies never waited for "
                    "(cp.async.wait_group)",
                    pending));
  t.state = ThreadState::kExited;
  w.exited |= bit;
  --live_threads_;
  // A thread that has returned no longer holds up __syncthreads, as on the GPU.
  if (at_barrier_ > 0 && at_barrier_ == live_threads_) release_barrier();
}

int Emulator::barrier(int predicate) {
  if (running_ == nullptr) fail("__syncthreads() called outside a kernel");
  const uint32_t parity = barrier_generation_ & 1u;
  if (at_barrier_ == 0) barrier_counts_[parity] = 0;
  barrier_counts_[parity] += predicate != 0;
  if (++at_barrier_ == live_threads_)
    release_barrier();
  else
    wait(ThreadState::kAtBarrier);
  return barrier_counts_[parity];
}

void Emulator::release_barrier() {
  for (EmulatedThread& t : threads_)
    if (t.state == ThreadState::kAtBarrier) t.state = ThreadState::kReady;
  at_barrier_ = 0;
  ++barrier_generation_;
}

bool Emulator::in_shared_memory(const void* pointer, size_t bytes) const {
  const char* p = static_cast<const char*>(pointer);
  const auto within = [&](const char* begin, const char* end) {
    return p >= begin && p <= end && bytes <= static_cast<size_t>(end - p);
  };
  return within(shared_low_, shared_low_ + static_shared_bytes_) ||
         within(shared_high_ - dynamic_shared_bytes_, shared_high_);
}

detail::AsyncCopies& Emulator::async_copies() {
  if (running_ == nullptr) fail("cp.async used outside a kernel");
  return running_->async_copies;
}

const uint64_t* Emulator::warp_exchange(unsigned mask, uint64_t value,
                                        void (*complete)(const uint64_t* values)) {
  if (running_ == nullptr) fail("a warp operation called outside a kernel");
  EmulatedThread& t = *running_;
  const int lane = t.linear % kWarpSize;
  const unsigned bit = 1u << lane;
  Warp& w = warps_[t.linear / kWarpSize];
  if (!(mask & bit))
    fail(fmt::format("a warp operation with mask {:#010x}, which leaves out the calling lane {}",
                     mask, lane));
  if (mask & w.exited)
    fail(
        fmt::format("a warp operation with mask {:#010x} waits for lanes {:#010x}, which have "
                    "returned or are not in the block",
                    mask, mask & w.exited));
  if (w.arrived != 0 && w.mask != mask)
    fail(
        fmt::format("a warp operation with mask {:#010x} while lanes {:#010x} wait in one with "
                    "mask {:#010x} (the emulator pairs one mask at a time)",
                    mask, w.arrived, w.mask));
  w.mask = mask;
  const uint32_t parity = w.generation & 1u;
  w.values[parity][lane] = value;
  w.arrived |= bit;
  if (w.arrived == mask) {
    // Every other lane is suspended inside this operation, so what their values point to (their
    // registers) is still theirs to read and write.
    if (complete != nullptr) complete(w.values[parity]);
    const int first = t.linear - lane;
    for (unsigned waiting = mask & ~bit; waiting != 0; waiting &= waiting - 1)
      threads_[first + __builtin_ctz(waiting)].state = ThreadState::kReady;
    w.arrived = 0;
    ++w.generation;
  } else {
    wait(ThreadState::kInWarpOperation);
  }
  return w.values[parity];
}

void Emulator::deadlock() {
  int at_barrier = 0, in_warp = 0, exited = 0;
  std::string warps;
  for (const EmulatedThread& t : threads_) {
    at_barrier += t.state == ThreadState::kAtBarrier;
    in_warp += t.state == ThreadState::kInWarpOperation;
    exited += t.state == ThreadState::kExited;
  }
  for (size_t w = 0; w < warps_.size(); ++w)
    if (warps_[w].arrived != 0)
      warps += fmt::format("; warp {}: lanes {:#010x} wait for mask {:#010x}", w, warps_[w].arrived,
                           warps_[w].mask);
  aborted_ = true;
  fault_ = fmt::format(
      "{}, block {}: deadlock: {} threads wait at __syncthreads, {} in warp "
      "operations, {} have returned{}",
      launch_text(*config_), dims_text(coordinates.block_index), at_barrier, in_warp, exited,
      warps);
  abandon_block();
  throw KernelFault(fault_);
}

void Emulator::abandon_block() {
  for (size_t i = 0; i < threads_.size(); ++i)
    if (threads_[i].state != ThreadState::kExited) forget_fiber_frames(*stacks_[i]);
  running_ = nullptr;
}

void* Emulator::static_shared(const void* key, size_t bytes, size_t alignment) {
  if (running_ == nullptr) fail("__shared__ memory used outside a kernel");
  for (const SharedVariable& v : shared_variables_)
    if (v.key == key) return shared_low_ + v.offset;
  if (alignment > kSharedAlignment)
    fail(fmt::format("a __shared__ variable aligned to {} bytes (the emulator aligns to {})",
                     alignment, kSharedAlignment));
  const size_t offset = round_up(static_shared_bytes_, alignment);
  if (offset + bytes > kStaticSharedLimit)
    fail(fmt::format("static __shared__ variables of {} bytes, over the limit of {}",
                     offset + bytes, kStaticSharedLimit));
  if (offset + bytes + dynamic_shared_bytes_ > shared_limit_)
    fail(fmt::format("{} bytes of static and {} of dynamic shared memory, over the limit of {}",
                     offset + bytes, dynamic_shared_bytes_, shared_limit_));
  std::memset(shared_low_ + offset, kPoison, bytes);
  shared_variables_.push_back({key, offset});
  static_shared_bytes_ = offset + bytes;
  return shared_low_ + offset;
}

void* Emulator::dynamic_shared(size_t alignment) {
  if (running_ == nullptr) fail("extern __shared__ memory used outside a kernel");
  if (alignment > kSharedAlignment)
    fail(
        fmt::format("dynamic shared memory of a type aligned to {} bytes (the emulator aligns "
                    "to {})",
                    alignment, kSharedAlignment));
  return shared_high_ - dynamic_shared_bytes_;
}

cudaError_t Emulator::set_attribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  switch (attribute) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize:
      if (value < 0 || static_cast<size_t>(value) > kOptInSharedLimit) return cudaErrorInvalidValue;
      dynamic_shared_attributes_[kernel] = value;
      return cudaSuccess;
    case cudaFuncAttributePreferredSharedMemoryCarveout:
      return value >= -1 && value <= 100 ? cudaSuccess : cudaErrorInvalidValue;
  }
  return cudaErrorInvalidValue;
}

}  // namespace

namespace detail {

void block_barrier() {
  emulator().barrier(0);
}

int block_barrier_count(int predicate) {
  return emulator().barrier(predicate);
}

const uint64_t* warp_exchange(unsigned mask, uint64_t value) {
  return emulator().warp_exchange(mask, value);
}

void warp_collective(const void* operands, void (*complete)(const uint64_t* lane_operands)) {
  emulator().warp_exchange(0xffffffffu, reinterpret_cast<uintptr_t>(operands), complete);
}

bool in_shared_memory(const void* pointer, size_t bytes) {
  return emulator().in_shared_memory(pointer, bytes);
}

AsyncCopies& running_thread_async_copies() {
  return emulator().async_copies();
}

void fail_in_kernel(std::string message) {
  emulator().fail(std::move(message));
}

void check_shuffle_width(int width) {
  if (width < 1 || width > kWarpSize || (width & (width - 1)) != 0)
    emulator().fail(fmt::format("a shuffle of width {}, not a power of 2 up to 32", width));
}

void check_source_lane(unsigned mask, int source_lane) {
  if (source_lane < 0 || source_lane >= kWarpSize || !(mask >> source_lane & 1u))
    emulator().fail(fmt::format("a shuffle reads lane {}, which is not in its mask {:#010x}",
                                source_lane, mask));
}

void* static_shared_storage(const void* key, size_t bytes, size_t alignment) {
  return emulator().static_shared(key, bytes, alignment);
}

void* dynamic_shared_storage(size_t alignment) {
  return emulator().dynamic_shared(alignment);
}

void check_launch(const LaunchConfig& config, const void* kernel) {
  emulator().check_launch(config, kernel);
}

void run_kernel(const LaunchConfig& config, const void* kernel, void (*thread_body)(void*),
                void* state) {
  emulator().launch(config, kernel, thread_body, state);
}

cudaError_t set_kernel_attribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  return emulator().set_attribute(kernel, attribute, value);
}

}  // namespace detail

void describe_running_thread(char* buffer, size_t bytes) {
  emulator().describe_running(buffer, bytes);
}

const char* schedule_name(Schedule schedule) {
  switch (schedule) {
    case Schedule::kForward:
      return "forward";
    case Schedule::kReverse:
      return "reverse";
    case Schedule::kWarpByWarp:
      return "warp-by-warp";
    case Schedule::kWarpByWarpReverse:
      return "warp-by-warp-reverse";
  }
  return "unknown";
}

void set_schedule(Schedule schedule) {
  emulator().schedule = schedule;
}

Schedule current_schedule() {
  return emulator().schedule;
}

}  // namespace qwen3::emulator
