// The emulator itself, on the small kernels of probe_kernels.cu: barriers, shuffles and votes as
// CUDA defines them, poisoned shared memory, races exposed by the schedules, and the faults it
// reports (deadlock, a shuffle missing a lane, writes and reads past a buffer, stack overflow,
// launch limits).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tests/emulator/emulator.h"
#include "tests/emulator/kernel_test_support.h"
#include "tests/emulator/probe_kernels.h"
#include "tests/emulator/runtime.h"

namespace {

using qwen3::emulator::KernelFault;
using qwen3::emulator::Schedule;
using qwen3::emulator::ScopedSchedule;
using qwen3::emulator_test::DeviceArray;
using qwen3::emulator_test::expect_fault;
namespace probes = qwen3::emulator_probes;

constexpr uint32_t kPoisonBits = 0xFFFFFFFFu;

uint32_t bits_of(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

std::vector<float> iota_floats(int n) {
  std::vector<float> values(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    values[size_t(i)] = float(i) * 0.5f + 1.0f;
  return values;
}

TEST(Emulator, BarrierOrdersSharedMemoryUnderEverySchedule) {
  const int threads = 96;
  const std::vector<float> in = iota_floats(threads);
  for (Schedule schedule : qwen3::emulator::kAllSchedules) {
    ScopedSchedule scoped(schedule);
    DeviceArray<float> in_dev(in), out = DeviceArray<float>::poisoned(threads);
    probes::rotate_through_shared(in_dev.data(), out.data(), threads, true);
    const std::vector<float> got = out.download();
    for (int i = 0; i < threads; ++i)
      ASSERT_EQ(got[size_t(i)], in[size_t((i + 1) % threads)])
          << i << " under " << schedule_name(schedule);
  }
}

TEST(Emulator, DynamicSharedMemory) {
  const int threads = 70;
  const std::vector<float> in = iota_floats(threads);
  DeviceArray<float> in_dev(in), out = DeviceArray<float>::poisoned(threads);
  probes::rotate_through_dynamic_shared(in_dev.data(), out.data(), threads);
  const std::vector<float> got = out.download();
  for (int i = 0; i < threads; ++i)
    EXPECT_EQ(got[size_t(i)], in[size_t((i + 1) % threads)]) << i;
}

// Without the barrier a thread reads a neighbour's slot before the neighbour wrote it: the poison
// shows whichever order the threads run in.
TEST(Emulator, MissingBarrierReadsPoison) {
  const int threads = 64;
  const std::vector<float> in = iota_floats(threads);
  for (Schedule schedule : qwen3::emulator::kAllSchedules) {
    ScopedSchedule scoped(schedule);
    DeviceArray<float> in_dev(in), out = DeviceArray<float>::poisoned(threads);
    probes::rotate_through_shared(in_dev.data(), out.data(), threads, false);
    int poisoned = 0;
    for (float x : out.download())
      poisoned += bits_of(x) == kPoisonBits;
    EXPECT_GT(poisoned, 0) << schedule_name(schedule);
  }
}

// A barrier missing between two rounds over one shared array: some schedule lets a round-2 write
// land before a round-1 read.
TEST(Emulator, MissingBarrierBetweenRoundsIsExposedBySomeSchedule) {
  const int threads = 128;
  const std::vector<float> in = iota_floats(threads);
  int wrong_schedules = 0;
  for (Schedule schedule : qwen3::emulator::kAllSchedules) {
    ScopedSchedule scoped(schedule);
    DeviceArray<float> in_dev(in), out = DeviceArray<float>::poisoned(threads);
    probes::reuse_shared_without_barrier(in_dev.data(), out.data(), threads);
    const std::vector<float> got = out.download();
    bool wrong = false;
    for (int i = 0; i < threads; ++i)
      wrong |= got[size_t(i)] != 3.0f * in[size_t((i + 32) % threads)];
    wrong_schedules += wrong;
  }
  EXPECT_GT(wrong_schedules, 0);
}

// What CUDA's programming guide defines for each lane, computed directly.
int expected_shuffle(const std::vector<int>& in, int k, int lane, int width) {
  const int base = lane / width * width;
  unsigned ballot = 0;
  bool any7 = false, all_non_negative = true;
  for (int l = 0; l < 32; ++l) {
    ballot |= unsigned(in[size_t(l)] & 1) << l;
    any7 |= in[size_t(l)] == 7;
    all_non_negative &= in[size_t(l)] >= 0;
  }
  switch (k) {
    case 0:
      return in[size_t(base + (7 * lane) % width)];
    case 1: {
      const int source = lane ^ 5;  // a later segment gives the lane's own value
      return in[size_t(source >= base + width ? lane : source)];
    }
    case 2:
      return in[size_t(lane + 3 < base + width ? lane + 3 : lane)];
    case 3:
      return in[size_t(lane - 3 >= base ? lane - 3 : lane)];
    case 4:
      return static_cast<int>(ballot);
    case 5:
      return any7;
    default:
      return all_non_negative;
  }
}

TEST(Emulator, ShufflesAndVotesAsCudaDefinesThem) {
  std::vector<int> in(32);
  for (int l = 0; l < 32; ++l)
    in[size_t(l)] = (l * 37 + 11) % 64;  // 7 (l = 4) among them, and odd and even values
  for (int width : {32, 16, 8, 4, 2, 1}) {
    DeviceArray<int> in_dev(in), out(7 * 32);
    probes::shuffles(in_dev.data(), out.data(), width);
    const std::vector<int> got = out.download();
    for (int k = 0; k < 7; ++k)
      for (int lane = 0; lane < 32; ++lane)
        ASSERT_EQ(got[size_t(k * 32 + lane)], expected_shuffle(in, k, lane, width))
            << "result " << k << ", lane " << lane << ", width " << width;
  }
}

TEST(Emulator, WarpSumsOfDoubles) {
  std::vector<double> in(64);
  for (int i = 0; i < 64; ++i)
    in[size_t(i)] = i + 0.5;
  DeviceArray<double> in_dev(in), out(64);
  probes::warp_sums(in_dev.data(), out.data());
  const std::vector<double> got = out.download();
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(got[size_t(i)], i < 32 ? 512.0 : 1536.0) << i;
}

TEST(Emulator, UnwrittenSharedMemoryReadsAsNaN) {
  const int threads = 40;
  DeviceArray<float> out(2 * threads);
  probes::read_unwritten_shared(out.data(), threads);
  for (float x : out.download())
    EXPECT_EQ(bits_of(x), kPoisonBits);
}

TEST(Emulator, ReturnedThreadsDoNotHoldUpBarriers) {
  const int threads = 64, returning = 20;
  for (Schedule schedule : qwen3::emulator::kAllSchedules) {
    ScopedSchedule scoped(schedule);
    DeviceArray<int> out = DeviceArray<int>::poisoned(threads);
    probes::barrier_after_early_return(out.data(), threads, returning);
    const std::vector<int> got = out.download();
    for (int i = returning; i < threads; ++i)
      ASSERT_EQ(got[size_t(i)], i + 1) << i << " under " << schedule_name(schedule);
  }
}

TEST(Emulator, DeadlockIsReported) {
  DeviceArray<int> sink(32);
  expect_fault([&] { probes::barrier_against_shuffle(sink.data()); },
               {"probe_kernels.cu:", "deadlock", "16 threads wait at __syncthreads",
                "16 in warp operations"});
}

TEST(Emulator, ShuffleWithAReturnedLaneIsReported) {
  DeviceArray<int> sink(32);
  expect_fault([&] { probes::shuffle_after_return(sink.data()); },
               {"thread (1, 0, 0)", "lanes 0x00000001, which have returned"});
}

// 100 floats end 112 bytes before the guard page: the write lands in the poisoned margin.
TEST(Emulator, WritePastTheEndOfABufferIsReported) {
  DeviceArray<float> out(100);
  expect_fault([&] { probes::write_one_past_end(out.data(), 100); },
               {"probe_kernels.cu:", "wrote at byte 400 of a 400-byte device buffer"});
}

TEST(Emulator, ReadPastTheEndOfABufferReadsNaN) {
  DeviceArray<float> in(std::vector<float>(100, 1.0f)), out(100);
  probes::read_one_past_end(in.data(), out.data(), 100);
  const std::vector<float> got = out.download();
  EXPECT_EQ(got[98], 1.0f);
  EXPECT_TRUE(std::isnan(got[99]));
}

// 64 floats fill their 256 bytes up to the guard page: the read past them faults.
TEST(EmulatorDeathTest, ReadIntoTheGuardPageNamesTheBufferAndThread) {
  DeviceArray<float> in(64), out(64);
  EXPECT_DEATH(
      {
        probes::read_one_past_end(in.data(), out.data(), 64);
        cudaDeviceSynchronize();
      },
      "guard page after a 256-byte device buffer.*probe_kernels.cu:.*thread \\(63, 0, 0\\)");
}

TEST(EmulatorDeathTest, StackOverflowNamesTheGuardPage) {
  DeviceArray<int> sink(32);
  EXPECT_DEATH(
      {
        probes::overflow_stack(sink.data());
        cudaDeviceSynchronize();
      },
      "overflowed its stack");
}

TEST(Emulator, DynamicSharedMemoryOverTheDefaultLimitNeedsTheAttribute) {
  const size_t bytes = size_t(64) << 10;
  DeviceArray<float> out(128);
  expect_fault([&] { probes::use_dynamic_shared(out.data(), bytes, false); },
               {"65536 bytes of dynamic shared memory", "cudaFuncSetAttribute"});
  probes::use_dynamic_shared(out.data(), bytes, true);
  // Thread t sums the values at floats - 1 - i for its strided i: n - 1 - t - 128·j.
  const int floats = static_cast<int>(bytes / sizeof(float));
  const std::vector<float> got = out.download();
  for (int t = 0; t < 128; ++t) {
    double want = 0;
    for (int i = t; i < floats; i += 128)
      want += floats - 1 - i;
    EXPECT_EQ(got[size_t(t)], float(want)) << t;
  }
  expect_fault([&] { probes::use_dynamic_shared(out.data(), size_t(200) << 10, true); },
               {"204800 bytes of dynamic shared memory"});
}

TEST(Emulator, TooManyThreadsPerBlockIsReported) {
  expect_fault([] { probes::too_many_threads(); }, {"probe_kernels.cu:", "2048 threads per block"});
}

TEST(Emulator, AtomicsAndScheduleOrder) {
  for (Schedule schedule : {Schedule::kForward, Schedule::kReverse}) {
    ScopedSchedule scoped(schedule);
    DeviceArray<int> counter(std::vector<int>{0}), first(std::vector<int>{-1});
    probes::count_atomically(counter.data(), first.data(), 5, 96);
    EXPECT_EQ(counter.download()[0], 5 * 96);
    EXPECT_EQ(first.download()[0], schedule == Schedule::kForward ? 0 : 5 * 96 - 1);
  }
}

TEST(Emulator, ThreeDimensionalCoordinates) {
  const int blocks = 2 * 3 * 2, threads = 4 * 2 * 2;
  DeviceArray<int> out = DeviceArray<int>::poisoned(blocks * threads);
  probes::coordinates(out.data());
  const std::vector<int> got = out.download();
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t)
      EXPECT_EQ(got[size_t(b * threads + t)], 1000000 * b + 1000 * t + 4 * 3);
}

// The runtime calls of runtime.h that the launchers and tests may make.
TEST(Emulator, RuntimeCalls) {
  void* a = nullptr;
  void* b = nullptr;
  ASSERT_EQ(cudaMalloc(&a, 64), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&b, 64), cudaSuccess);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 256, 0u);
  EXPECT_EQ(cudaMemsetAsync(a, 7, 64, nullptr), cudaSuccess);
  EXPECT_EQ(cudaMemcpyAsync(b, a, 64, cudaMemcpyDeviceToDevice, nullptr), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(nullptr), cudaSuccess);
  EXPECT_EQ(static_cast<unsigned char*>(b)[63], 7);
  EXPECT_EQ(cudaMemcpy(a, static_cast<char*>(a) + 8, 16, cudaMemcpyDeviceToDevice),
            cudaErrorInvalidValue);  // overlapping
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_STREQ(cudaGetErrorName(cudaErrorInvalidValue), "cudaErrorInvalidValue");
  EXPECT_EQ(cudaFree(a), cudaSuccess);
  EXPECT_EQ(cudaFree(a), cudaErrorInvalidDevicePointer);
  EXPECT_EQ(cudaFree(b), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevicePointer);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
