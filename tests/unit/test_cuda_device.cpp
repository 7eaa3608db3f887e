// Device utilities. Without a GPU (CI) the device tests skip, saying why; the error-reporting
// test runs everywhere, since cudaGetErrorString needs no device.
#include <gtest/gtest.h>

#include <vector>

#include "core/cuda/check.h"
#include "core/cuda/device.h"
#include "core/cuda/memory.h"

namespace {

cudaError_t failing_call() {
  return cudaErrorInvalidValue;
}

TEST(CudaCheck, FailureNamesCallFileLineAndStatus) {
  qwen3::set_process_rank(3);
  try {
    QWEN3_CUDA_CHECK(failing_call());
    FAIL() << "QWEN3_CUDA_CHECK did not throw";
  } catch (const qwen3::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("[rank 3]"), std::string::npos) << message;
    EXPECT_NE(message.find("failing_call()"), std::string::npos) << message;
    EXPECT_NE(message.find("cudaErrorInvalidValue"), std::string::npos) << message;
    EXPECT_NE(message.find("test_cuda_device.cpp:"), std::string::npos) << message;
  }
  qwen3::set_process_rank(-1);
}

TEST(CudaDevice, AllocateCopyAndFill) {
  if (qwen3::cuda::device_count() == 0)
    GTEST_SKIP() << "no CUDA device here (" << qwen3::cuda::no_device_reason()
                 << "); this test runs on a GPU machine";
  qwen3::cuda::select_device_for_local_rank(0);
  const std::vector<float> host{1.0f, -2.5f, 3.25f, 1e-20f};
  qwen3::cuda::DeviceMemory memory(host.size() * sizeof(float));
  qwen3::cuda::copy_to_device(memory.data(), host.data(), memory.bytes());
  std::vector<float> back(host.size());
  qwen3::cuda::copy_to_host(back.data(), memory.data(), memory.bytes());
  EXPECT_EQ(back, host);
  qwen3::cuda::fill_bytes(memory.data(), 0, memory.bytes());
  qwen3::cuda::copy_to_host(back.data(), memory.data(), memory.bytes());
  EXPECT_EQ(back, std::vector<float>(host.size(), 0.0f));
  EXPECT_FALSE(qwen3::cuda::describe_devices().empty());
}

TEST(CudaDevice, TooFewGpusForLocalRankIsAClearError) {
  const int count = qwen3::cuda::device_count();
  if (count == 0) GTEST_SKIP() << "no CUDA device here (" << qwen3::cuda::no_device_reason() << ")";
  try {
    qwen3::cuda::select_device_for_local_rank(count);
    FAIL() << "expected an error for local rank " << count;
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("local rank"), std::string::npos) << e.what();
  }
}

}  // namespace
