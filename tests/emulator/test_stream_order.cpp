// Known answers for the emulated streams, from the CUDA runtime's documented ordering rules:
// work on one stream runs in issue order; cudaStreamWaitEvent orders a stream after the event's
// record as it was at the call; the legacy default stream synchronises with blocking streams and
// not with non-blocking ones; a host destination of an asynchronous copy is written only once the
// copy has run. In the latest order a read the program did not order after the work sees memory
// the work has not written (NaN, as new memory reads); in the eager order, the same program sees
// it written. Both are legal schedules of the same program.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/emulator/device_memory.h"
#include "tests/emulator/probe_kernels.h"
#include "tests/emulator/runtime.h"

namespace {

namespace probes = qwen3::emulator_probes;
using qwen3::emulator::ScopedStreamOrder;
using qwen3::emulator::StreamOrder;

// Device floats, and the host reading them directly (legal only after a synchronisation; the
// tests read them before one on purpose, to see what has run).
struct Floats {
  explicit Floats(int n) : n(n) { EXPECT_EQ(cudaMalloc(&data, sizeof(float) * n), cudaSuccess); }
  ~Floats() { cudaFree(data); }
  float at(int i) const { return data[i]; }
  int n;
  float* data = nullptr;
};

cudaStream_t make_stream(unsigned flags) {
  cudaStream_t stream = nullptr;
  EXPECT_EQ(cudaStreamCreateWithFlags(&stream, flags), cudaSuccess);
  return stream;
}

TEST(EmulatedStreams, LatestOrderRunsWorkOnlyWhenSynchronised) {
  ScopedStreamOrder order(StreamOrder::kLatest);
  cudaStream_t stream = make_stream(cudaStreamNonBlocking);
  Floats x(8);
  ASSERT_EQ(cudaMemsetAsync(x.data, 0, sizeof(float) * 8, stream), cudaSuccess);
  probes::double_plus_one(x.data, 8, stream);
  EXPECT_TRUE(std::isnan(x.at(3))) << "queued work ran before anything waited for it";
  EXPECT_EQ(qwen3::emulator::queued_operations(), 2u);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(x.at(3), 1.0f);  // 2·0 + 1: the fill ran first
  EXPECT_EQ(qwen3::emulator::queued_operations(), 0u);
  cudaStreamDestroy(stream);
}

TEST(EmulatedStreams, EagerOrderRunsWorkWhenQueued) {
  ScopedStreamOrder order(StreamOrder::kEager);
  cudaStream_t stream = make_stream(cudaStreamNonBlocking);
  Floats x(8);
  ASSERT_EQ(cudaMemsetAsync(x.data, 0, sizeof(float) * 8, stream), cudaSuccess);
  probes::double_plus_one(x.data, 8, stream);
  probes::double_plus_one(x.data, 8, stream);
  EXPECT_EQ(x.at(7), 3.0f);  // 2·(2·0 + 1) + 1
  EXPECT_EQ(qwen3::emulator::queued_operations(), 0u);
  cudaStreamDestroy(stream);
}

// s2 copies what s1 computes, ordered by an event: synchronising s2 alone runs s1's work first.
// Without the wait, the copy reads the buffer before s1 has written it.
TEST(EmulatedStreams, AWaitOnAnEventOrdersAnotherStreamsWork) {
  ScopedStreamOrder order(StreamOrder::kLatest);
  cudaStream_t s1 = make_stream(cudaStreamNonBlocking), s2 = make_stream(cudaStreamNonBlocking);
  cudaEvent_t written = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), cudaSuccess);
  Floats a(4), ordered(4), unordered(4);
  cudaMemsetAsync(a.data, 0, sizeof(float) * 4, s1);
  probes::double_plus_one(a.data, 4, s1);
  ASSERT_EQ(cudaEventRecord(written, s1), cudaSuccess);
  ASSERT_EQ(
      cudaMemcpyAsync(unordered.data, a.data, sizeof(float) * 4, cudaMemcpyDeviceToDevice, s2),
      cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(s2, written, 0), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(ordered.data, a.data, sizeof(float) * 4, cudaMemcpyDeviceToDevice, s2),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s2), cudaSuccess);
  EXPECT_EQ(ordered.at(0), 1.0f);
  EXPECT_TRUE(std::isnan(unordered.at(0))) << "the copy before the wait saw s1's result";
  cudaEventDestroy(written);
  cudaStreamDestroy(s1);
  cudaStreamDestroy(s2);
}

// "cudaStreamWaitEvent waits for the most recent cudaEventRecord at the time of the call": a
// later record of the same event does not move what an earlier wait waits for.
TEST(EmulatedStreams, AWaitTakesTheEventAsRecordedAtTheCall) {
  ScopedStreamOrder order(StreamOrder::kLatest);
  cudaStream_t s1 = make_stream(cudaStreamNonBlocking), s2 = make_stream(cudaStreamNonBlocking);
  cudaEvent_t event = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess);
  Floats a(2), copy(2);
  cudaMemsetAsync(a.data, 0, sizeof(float) * 2, s1);
  cudaEventRecord(event, s1);
  cudaStreamWaitEvent(s2, event, 0);
  probes::double_plus_one(a.data, 2, s1);  // after the record the wait took
  cudaEventRecord(event, s1);
  cudaMemcpyAsync(copy.data, a.data, sizeof(float) * 2, cudaMemcpyDeviceToDevice, s2);
  ASSERT_EQ(cudaStreamSynchronize(s2), cudaSuccess);
  EXPECT_EQ(copy.at(1), 0.0f) << "the wait was moved by the later record";
  EXPECT_EQ(cudaEventQuery(event), cudaErrorNotReady);  // s1's kernel has not run
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "cudaErrorNotReady is not an error";
  EXPECT_EQ(cudaEventQuery(event), cudaSuccess);  // and a poll lets it run
  EXPECT_EQ(a.at(1), 1.0f);
  cudaEventDestroy(event);
  cudaStreamDestroy(s1);
  cudaStreamDestroy(s2);
}

// A synchronous cudaMemcpy on the legacy stream waits for work queued on blocking streams, not on
// streams created with cudaStreamNonBlocking.
TEST(EmulatedStreams, TheLegacyStreamWaitsForBlockingStreamsOnly) {
  ScopedStreamOrder order(StreamOrder::kLatest);
  cudaStream_t blocking = make_stream(cudaStreamDefault);
  cudaStream_t non_blocking = make_stream(cudaStreamNonBlocking);
  Floats a(2), b(2);
  cudaMemsetAsync(a.data, 0, sizeof(float) * 2, blocking);
  cudaMemsetAsync(b.data, 0, sizeof(float) * 2, non_blocking);
  std::vector<float> host(2, -1.0f);
  ASSERT_EQ(cudaMemcpy(host.data(), a.data, sizeof(float) * 2, cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(host[0], 0.0f);
  ASSERT_EQ(cudaMemcpy(host.data(), b.data, sizeof(float) * 2, cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_TRUE(std::isnan(host[0])) << "the legacy stream waited for a non-blocking stream";
  cudaStreamDestroy(blocking);
  cudaStreamDestroy(non_blocking);
}

// cudaMemcpyAsync to the host writes it when the copy runs; from the host it reads the source at
// the call (the runtime stages pageable memory), so changing the source afterwards is safe.
TEST(EmulatedStreams, AsyncCopiesReadTheHostAtTheCallAndWriteItWhenRun) {
  ScopedStreamOrder order(StreamOrder::kLatest);
  cudaStream_t stream = make_stream(cudaStreamNonBlocking);
  Floats x(3);
  std::vector<float> up{1.0f, 2.0f, 3.0f}, down(3, -1.0f);
  cudaMemcpyAsync(x.data, up.data(), sizeof(float) * 3, cudaMemcpyHostToDevice, stream);
  up[1] = 50.0f;
  cudaMemcpyAsync(down.data(), x.data, sizeof(float) * 3, cudaMemcpyDeviceToHost, stream);
  EXPECT_EQ(down[1], -1.0f) << "the host read before synchronising saw the download";
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(down, (std::vector<float>{1.0f, 2.0f, 3.0f}));
  cudaStreamDestroy(stream);
}

// cudaFree and cudaStreamDestroy let queued work finish first; cudaEventElapsedTime on an event
// whose work has not run is cudaErrorNotReady.
TEST(EmulatedStreams, FreeDestroyAndTimingWaitForQueuedWork) {
  ScopedStreamOrder order(StreamOrder::kLatest);
  cudaStream_t stream = make_stream(cudaStreamNonBlocking);
  cudaEvent_t start = nullptr, end = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&end);
  float* scratch = nullptr;
  cudaMalloc(&scratch, sizeof(float) * 4);
  std::vector<float> host(4, -1.0f);
  cudaEventRecord(start, stream);
  cudaMemsetAsync(scratch, 0, sizeof(float) * 4, stream);
  cudaMemcpyAsync(host.data(), scratch, sizeof(float) * 4, cudaMemcpyDeviceToHost, stream);
  cudaEventRecord(end, stream);
  float ms = -1.0f;
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, end), cudaErrorNotReady);
  cudaGetLastError();
  ASSERT_EQ(cudaFree(scratch), cudaSuccess);
  EXPECT_EQ(host[2], 0.0f) << "cudaFree did not let the queued copy run first";
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, end), cudaSuccess);
  Floats y(1);
  cudaMemsetAsync(y.data, 0, sizeof(float), stream);  // queued, then run by the destroy
  EXPECT_EQ(qwen3::emulator::queued_operations(), 1u);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  EXPECT_EQ(qwen3::emulator::queued_operations(), 0u);
  EXPECT_EQ(y.at(0), 0.0f);
  cudaEventDestroy(start);
  cudaEventDestroy(end);
}

TEST(EmulatedStreams, CopiesAndFillsAreCheckedAgainstTheirAllocation) {
  Floats x(4);
  std::vector<float> host(8);
  EXPECT_EQ(cudaMemcpy(host.data(), x.data, sizeof(float) * 8, cudaMemcpyDeviceToHost),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemsetAsync(x.data + 1, 0, sizeof(float) * 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(
      cudaMemcpyAsync(x.data, host.data(), sizeof(float) * 4, cudaMemcpyDeviceToDevice, nullptr),
      cudaErrorInvalidValue)
      << "a host pointer passed as the device source";
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(qwen3::emulator::queued_operations(), 0u) << "a refused call queued work";
}

}  // namespace
