#pragma once
// Cooperative fibers, one per emulated CUDA thread. A switch saves the callee-saved registers on
// the current stack and loads another stack pointer: a few x86-64 instructions and no system call
// (ucontext's swapcontext saves the signal mask with a system call on every switch, which made a
// kernel with a shuffle per loop iteration too slow).
#include <cstddef>

namespace qwen3::emulator {

// A fiber's stack: `bytes` usable bytes above 64 KiB of inaccessible guard pages, so an overflow
// faults at once instead of running into the next fiber's stack (a frame with a large local array
// can step over a single page).
class FiberStack {
 public:
  explicit FiberStack(size_t bytes);
  ~FiberStack();
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;

  char* low() const { return low_; }  // lowest usable byte
  char* high() const { return low_ + bytes_; }
  size_t bytes() const { return bytes_; }
  const char* guard() const { return mapping_; }
  size_t guard_bytes() const { return static_cast<size_t>(low_ - mapping_); }

 private:
  char* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  char* low_ = nullptr;
  size_t bytes_ = 0;
};

// Where a suspended fiber (or the scheduler) resumes, and for AddressSanitizer the bounds of its
// stack and its fake stack.
struct FiberContext {
  void* stack_pointer = nullptr;
  const void* stack_low = nullptr;
  size_t stack_bytes = 0;
  void* sanitizer_fake_stack = nullptr;
};

// Sets `fiber` up to call entry(argument) on `stack` when first resumed. `entry` must never
// return: it ends by switching away for the last time (leave_fiber with finished = true).
void prepare_fiber(FiberContext* fiber, const FiberStack& stack, void (*entry)(void*),
                   void* argument);

// From the scheduler: runs `fiber` until it switches back.
void resume_fiber(FiberContext* scheduler, FiberContext* fiber);

// The first thing a fiber's entry does (AddressSanitizer learns the scheduler's stack here).
void enter_fiber(FiberContext* scheduler);

// From a fiber: back to the scheduler. `finished`: the fiber will never be resumed.
void leave_fiber(FiberContext* fiber, FiberContext* scheduler, bool finished);

// After a fiber was abandoned mid-kernel: clears what AddressSanitizer recorded about its frames,
// so the stack can be reused.
void forget_fiber_frames(const FiberStack& stack);

}  // namespace qwen3::emulator
