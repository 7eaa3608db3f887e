#include <fmt/format.h>

#include "core/cuda/check.h"
#include "core/cuda/device.h"
#include "core/cuda/device_peaks.h"

namespace qwen3::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not blamed for it
    return 0;
  }
  return count;
}

std::string no_device_reason() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  cudaGetLastError();
  if (status != cudaSuccess)
    return std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
  return count == 0 ? "the CUDA runtime reports 0 devices" : "";
}

double peak_bf16_flops(const DeviceInfo& info) {
  const std::optional<DevicePeaks> peaks = device_peaks(info.name);
  return peaks ? peaks->bf16_dense_flops : 0.0;
}

DeviceInfo query_device(int index) {
  cudaDeviceProp prop{};
  QWEN3_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.total_memory_bytes = prop.totalGlobalMem;
  info.multiprocessors = prop.multiProcessorCount;
  info.memory_bus_bits = prop.memoryBusWidth;
  int clock_khz = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, index) != cudaSuccess) {
    cudaGetLastError();
    clock_khz = 0;
  }
  info.memory_clock_khz = clock_khz;
  return info;
}

std::string describe_devices() {
  const int count = device_count();
  if (count == 0) return "no CUDA device (" + no_device_reason() + ")";
  std::string out;
  for (int i = 0; i < count; ++i) {
    const DeviceInfo d = query_device(i);
    out += fmt::format("GPU {}: {} (sm_{}{}), {} SMs, {:.1f} GiB\n", d.index, d.name,
                       d.compute_major, d.compute_minor, d.multiprocessors,
                       double(d.total_memory_bytes) / (1024.0 * 1024.0 * 1024.0));
  }
  return out;
}

int select_device_for_local_rank(int local_rank) {
  const int count = device_count();
  QWEN3_CHECK(count > 0, "local rank {} needs a GPU, but none is visible ({})", local_rank,
              no_device_reason());
  QWEN3_CHECK(local_rank >= 0 && local_rank < count,
              "local rank {} has no GPU of its own: this node shows {} GPU(s); start at most {} "
              "ranks per node or check CUDA_VISIBLE_DEVICES",
              local_rank, count, count);
  QWEN3_CUDA_CHECK(cudaSetDevice(local_rank));
  return local_rank;
}

void memory_info(size_t* free_bytes, size_t* total_bytes) {
  QWEN3_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

}  // namespace qwen3::cuda
