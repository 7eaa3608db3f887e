#pragma once
// What tests set and catch around emulated launches: the order threads run in, and the error a
// faulting kernel raises. The kernels themselves see device.h.
#include <stdexcept>

namespace qwen3::emulator {

// The order the emulator runs a launch's blocks and threads in. A thread runs until it waits (at
// __syncthreads, in a warp shuffle or vote) or returns; then the next runnable one goes. Every
// order is one a GPU may produce, so a kernel whose results differ between them has a race.
enum class Schedule {
  kForward,  // blocks in index order; the block's threads take turns, lowest index first
  kReverse,  // blocks and threads from the highest index down
  // Each warp runs until all its lanes wait at __syncthreads (or have returned) before the next
  // warp starts: a warp finishes its work on shared memory before the others have begun theirs.
  kWarpByWarp,
  kWarpByWarpReverse,  // the same, warps and lanes from the highest index down
};

constexpr Schedule kAllSchedules[] = {Schedule::kForward, Schedule::kReverse, Schedule::kWarpByWarp,
                                      Schedule::kWarpByWarpReverse};

const char* schedule_name(Schedule schedule);
void set_schedule(Schedule schedule);
Schedule current_schedule();

// Sets a schedule for its lifetime.
class ScopedSchedule {
 public:
  explicit ScopedSchedule(Schedule schedule) : previous_(current_schedule()) {
    set_schedule(schedule);
  }
  ~ScopedSchedule() { set_schedule(previous_); }
  ScopedSchedule(const ScopedSchedule&) = delete;
  ScopedSchedule& operator=(const ScopedSchedule&) = delete;

 private:
  Schedule previous_;
};

// Thrown from a launch (or the launcher around it) when the emulator finds the kernel at fault:
// an invalid launch configuration, a deadlock, a warp operation missing lanes, shared memory over
// the limit, a write outside a device buffer. The message names the launch site, block and
// thread.
class KernelFault : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace qwen3::emulator
