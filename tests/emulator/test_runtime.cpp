// Known answers for the emulated runtime's devices, memory queries, streams and events, from the
// CUDA runtime API's documentation (return codes, sticky errors, the H100 SXM's published figures),
// independent of the code that calls them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/emulator/device_memory.h"
#include "tests/emulator/runtime.h"

namespace {

class DeviceCount {  // QWEN3_EMULATED_DEVICES for one test
 public:
  explicit DeviceCount(const char* count) { setenv("QWEN3_EMULATED_DEVICES", count, 1); }
  ~DeviceCount() { unsetenv("QWEN3_EMULATED_DEVICES"); }
};

TEST(EmulatedRuntime, DevicesAreH100s) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_EQ(count, 8);
  cudaDeviceProp prop;
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 7), cudaSuccess);
  EXPECT_STREQ(prop.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(prop.major * 10 + prop.minor, 90);
  EXPECT_EQ(prop.multiProcessorCount, 132);
  EXPECT_EQ(prop.sharedMemPerBlock, 48u * 1024);
  EXPECT_EQ(prop.sharedMemPerBlockOptin, 227u * 1024);
  EXPECT_EQ(prop.totalGlobalMem, size_t(80) << 30);
  int value = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_EQ(value, 132);
  ASSERT_EQ(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0),
            cudaSuccess);
  EXPECT_EQ(value, 227 * 1024);
  ASSERT_EQ(cudaDeviceGetAttribute(&value, cudaDevAttrMemoryClockRate, 0), cudaSuccess);
  EXPECT_GT(value, 0);
}

TEST(EmulatedRuntime, DeviceOrdinalsAreChecked) {
  ASSERT_EQ(cudaSetDevice(3), cudaSuccess);
  int device = -1;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  EXPECT_EQ(device, 3);
  // An ordinal past the count: cudaErrorInvalidDevice, and it stays until read (sticky).
  EXPECT_EQ(cudaSetDevice(8), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  cudaDeviceProp prop;
  EXPECT_EQ(cudaGetDeviceProperties(&prop, -1), cudaErrorInvalidDevice);
  cudaGetLastError();
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  EXPECT_EQ(device, 3) << "a refused cudaSetDevice changed the current device";
  cudaSetDevice(0);
}

TEST(EmulatedRuntime, NoDeviceMachine) {
  DeviceCount none("0");
  int count = -1;
  EXPECT_EQ(cudaGetDeviceCount(&count), cudaErrorNoDevice);
  EXPECT_EQ(count, 0);
  EXPECT_EQ(cudaSetDevice(0), cudaErrorNoDevice);
  EXPECT_STREQ(cudaGetErrorName(cudaErrorNoDevice), "cudaErrorNoDevice");
  EXPECT_STREQ(cudaGetErrorString(cudaErrorNoDevice), "no CUDA-capable device is detected");
  cudaGetLastError();
}

TEST(EmulatedRuntime, MemoryInfoCountsLiveAllocations) {
  size_t free_before = 0, total = 0, free_after = 0, free_freed = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  EXPECT_EQ(total, size_t(80) << 30);
  void* p = nullptr;
  const size_t bytes = size_t(3) << 20;
  ASSERT_EQ(cudaMalloc(&p, bytes), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  EXPECT_EQ(free_before - free_after, bytes);
  ASSERT_EQ(cudaFree(p), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free_freed, &total), cudaSuccess);
  EXPECT_EQ(free_freed, free_before);
}

TEST(EmulatedRuntime, NewMemoryReadsAsNaN) {
  float* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 64 * sizeof(float)), cudaSuccess);
  std::vector<float> host(64, 0.0f);
  ASSERT_EQ(cudaMemcpy(host.data(), p, 64 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (float v : host)
    EXPECT_NE(v, v) << "fresh device memory must read as NaN, got " << v;
  cudaFree(p);
}

TEST(EmulatedRuntime, PointerAttributesTellDeviceFromHost) {
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 1000), cudaSuccess);
  cudaPointerAttributes attributes{};
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, static_cast<char*>(p) + 999), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeDevice);
  std::vector<char> host(16);
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, host.data()), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeUnregistered);
  EXPECT_EQ(attributes.hostPointer, host.data());
  cudaFree(p);
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, p), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeUnregistered) << "a freed buffer is not device memory";
}

TEST(EmulatedRuntime, StreamHandlesAreChecked) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(cudaStreamQuery(stream), cudaSuccess);
  float* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 16), cudaSuccess);
  EXPECT_EQ(cudaMemsetAsync(p, 0, 16, stream), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  // A destroyed stream: every use is cudaErrorInvalidResourceHandle.
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaMemsetAsync(p, 0, 16, stream), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaStreamDestroy(nullptr), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaStreamCreateWithFlags(&stream, 0x80), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  // The null stream is always valid.
  EXPECT_EQ(cudaStreamSynchronize(nullptr), cudaSuccess);
  cudaFree(p);
}

TEST(EmulatedRuntime, EventsFollowTheDocumentedReturnCodes) {
  cudaEvent_t timed = nullptr, untimed = nullptr, other = nullptr;
  ASSERT_EQ(cudaEventCreate(&timed), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&other), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming), cudaSuccess);
  float ms = -1.0f;
  // Not recorded yet: no time to subtract.
  EXPECT_EQ(cudaEventElapsedTime(&ms, timed, other), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventQuery(timed), cudaSuccess);  // it captured no work
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(timed, stream), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(other, stream), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(untimed, stream), cudaSuccess);
  EXPECT_EQ(cudaStreamWaitEvent(nullptr, untimed, 0), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(other), cudaSuccess);
  ASSERT_EQ(cudaEventElapsedTime(&ms, timed, other), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  // Either event created with cudaEventDisableTiming: cudaErrorInvalidResourceHandle.
  EXPECT_EQ(cudaEventElapsedTime(&ms, timed, untimed), cudaErrorInvalidResourceHandle);
  ASSERT_EQ(cudaEventDestroy(untimed), cudaSuccess);
  EXPECT_EQ(cudaEventRecord(untimed, stream), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaStreamWaitEvent(stream, untimed, 0), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventDestroy(untimed), cudaErrorInvalidResourceHandle);
  cudaGetLastError();
  cudaEventDestroy(timed);
  cudaEventDestroy(other);
  cudaStreamDestroy(stream);
}

}  // namespace
