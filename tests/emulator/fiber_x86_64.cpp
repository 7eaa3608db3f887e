// The fiber switch for x86-64 System V. The CMake target is only built on x86-64.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "tests/emulator/fiber.h"

#if !defined(__x86_64__)
#error "the emulator's fiber switch is x86-64 assembly"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define QWEN3_EMULATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QWEN3_EMULATOR_ASAN 1
#endif
#endif

#ifdef QWEN3_EMULATOR_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// qwen3_emulator_switch_stack(save, load): pushes the callee-saved registers and the SSE and x87
// control words, stores the stack pointer in *save, loads `load` and pops the same from there.
// A new fiber's stack is laid out as if it had called the switch from qwen3_emulator_fiber_start,
// which calls r13(r12): the entry with its argument.
asm(R"(
  .pushsection .text
  .globl qwen3_emulator_switch_stack
  .hidden qwen3_emulator_switch_stack
  .type qwen3_emulator_switch_stack, @function
  .p2align 4
qwen3_emulator_switch_stack:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size qwen3_emulator_switch_stack, .-qwen3_emulator_switch_stack

  .globl qwen3_emulator_fiber_start
  .hidden qwen3_emulator_fiber_start
  .type qwen3_emulator_fiber_start, @function
  .p2align 4
qwen3_emulator_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size qwen3_emulator_fiber_start, .-qwen3_emulator_fiber_start
  .popsection
)");

extern "C" void qwen3_emulator_switch_stack(void** save, void* load);
extern "C" void qwen3_emulator_fiber_start();

namespace qwen3::emulator {

namespace {

size_t page_bytes() {
  static const size_t bytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return bytes;
}

constexpr size_t kGuardBytes = size_t(64) << 10;

// Sanitizer bookkeeping around a switch from the running stack to `to`'s.
void before_switch(void** fake_stack_save, const FiberContext& to) {
#ifdef QWEN3_EMULATOR_ASAN
  __sanitizer_start_switch_fiber(fake_stack_save, to.stack_low, to.stack_bytes);
#else
  (void)fake_stack_save;
  (void)to;
#endif
}

void after_switch(void* fake_stack, const void** previous_low, size_t* previous_bytes) {
#ifdef QWEN3_EMULATOR_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, previous_low, previous_bytes);
#else
  (void)fake_stack;
  (void)previous_low;
  (void)previous_bytes;
#endif
}

}  // namespace

FiberStack::FiberStack(size_t bytes) {
  const size_t page = page_bytes();
  bytes_ = (bytes + page - 1) / page * page;
  const size_t guard = (kGuardBytes + page - 1) / page * page;
  mapping_bytes_ = guard + bytes_;
  void* mapping =
      mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::runtime_error("emulator: cannot map a fiber stack");
  mapping_ = static_cast<char*>(mapping);
  if (mprotect(mapping_, guard, PROT_NONE) != 0) {
    munmap(mapping_, mapping_bytes_);
    throw std::runtime_error("emulator: cannot protect a fiber stack's guard page");
  }
  low_ = mapping_ + guard;
}

FiberStack::~FiberStack() {
  munmap(mapping_, mapping_bytes_);
}

void prepare_fiber(FiberContext* fiber, const FiberStack& stack, void (*entry)(void*),
                   void* argument) {
  // From the stack pointer up, as qwen3_emulator_switch_stack pops them: the control words, r15,
  // r14, r13 (entry), r12 (argument), rbx, rbp (0: the end of the frame chain for debuggers), and
  // the return address. The top is 16-byte aligned, so the entry is called with the alignment the
  // ABI requires.
  auto top = reinterpret_cast<uintptr_t>(stack.high()) & ~uintptr_t(15);
  auto* slots = reinterpret_cast<uint64_t*>(top) - 8;
  uint32_t control_words[2] = {0, 0};
  asm volatile("stmxcsr %0" : "=m"(control_words[0]));
  asm volatile("fnstcw %0" : "=m"(control_words[1]));
  std::memcpy(&slots[0], control_words, sizeof(uint64_t));
  slots[1] = 0;
  slots[2] = 0;
  slots[3] = reinterpret_cast<uint64_t>(entry);
  slots[4] = reinterpret_cast<uint64_t>(argument);
  slots[5] = 0;
  slots[6] = 0;
  slots[7] = reinterpret_cast<uint64_t>(&qwen3_emulator_fiber_start);
  fiber->stack_pointer = slots;
  fiber->stack_low = stack.low();
  fiber->stack_bytes = stack.bytes();
  fiber->sanitizer_fake_stack = nullptr;
}

void resume_fiber(FiberContext* scheduler, FiberContext* fiber) {
  before_switch(&scheduler->sanitizer_fake_stack, *fiber);
  qwen3_emulator_switch_stack(&scheduler->stack_pointer, fiber->stack_pointer);
  after_switch(scheduler->sanitizer_fake_stack, nullptr, nullptr);
}

void enter_fiber(FiberContext* scheduler) {
  after_switch(nullptr, &scheduler->stack_low, &scheduler->stack_bytes);
}

void leave_fiber(FiberContext* fiber, FiberContext* scheduler, bool finished) {
  // A finished fiber's fake stack is released by passing no place to save it.
  before_switch(finished ? nullptr : &fiber->sanitizer_fake_stack, *scheduler);
  qwen3_emulator_switch_stack(&fiber->stack_pointer, scheduler->stack_pointer);
  after_switch(fiber->sanitizer_fake_stack, &scheduler->stack_low, &scheduler->stack_bytes);
}

void forget_fiber_frames(const FiberStack& stack) {
#ifdef QWEN3_EMULATOR_ASAN
  __asan_unpoison_memory_region(stack.low(), stack.bytes());
#else
  (void)stack;
#endif
}

}  // namespace qwen3::emulator
