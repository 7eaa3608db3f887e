// The emulated devices of runtime.h: H100 SXM 80 GB as the CUDA runtime describes one.
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/emulator/device_memory.h"
#include "tests/emulator/runtime.h"

namespace {

using qwen3::emulator::detail::record_error;

// NVIDIA's figures for the H100 SXM5 80 GB: 132 SMs, 5,120-bit HBM3 at 2.619 GHz, 50 MiB of L2,
// 228 KiB of shared memory per SM of which a block may opt in to 227 KiB.
constexpr size_t kTotalMemory = size_t(80) << 30;
constexpr int kMultiprocessors = 132;
constexpr int kMemoryClockKhz = 2619000;
constexpr size_t kSharedPerBlockOptin = 227 * 1024;

int current_device = 0;

int emulated_device_count() {
  const char* value = std::getenv("QWEN3_EMULATED_DEVICES");
  if (value == nullptr || *value == '\0') return 8;  // one HGX node
  return std::atoi(value);
}

bool valid_device(int device) {
  return device >= 0 && device < emulated_device_count();
}

}  // namespace

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return record_error(cudaErrorInvalidValue);
  *count = emulated_device_count();
  return *count > 0 ? cudaSuccess : record_error(cudaErrorNoDevice);
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return record_error(cudaErrorInvalidValue);
  if (emulated_device_count() == 0) return record_error(cudaErrorNoDevice);
  *device = current_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (emulated_device_count() == 0) return record_error(cudaErrorNoDevice);
  if (!valid_device(device)) return record_error(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return record_error(cudaErrorInvalidValue);
  if (!valid_device(device)) return record_error(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof(*prop));
  std::strncpy(prop->name, "NVIDIA H100 80GB HBM3", sizeof(prop->name) - 1);
  prop->totalGlobalMem = kTotalMemory;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = kSharedPerBlockOptin;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = kMultiprocessors;
  prop->memoryBusWidth = 5120;
  prop->l2CacheSize = 50 << 20;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (value == nullptr) return record_error(cudaErrorInvalidValue);
  if (!valid_device(device)) return record_error(cudaErrorInvalidDevice);
  switch (attribute) {
    case cudaDevAttrMultiProcessorCount:
      *value = kMultiprocessors;
      return cudaSuccess;
    case cudaDevAttrMemoryClockRate:
      *value = kMemoryClockKhz;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
      *value = 9;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
      *value = 0;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = int(kSharedPerBlockOptin);
      return cudaSuccess;
  }
  return record_error(cudaErrorInvalidValue);
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return record_error(cudaErrorInvalidValue);
  if (emulated_device_count() == 0) return record_error(cudaErrorNoDevice);
  const size_t used = qwen3::emulator::live_device_bytes();
  *total_bytes = kTotalMemory;
  *free_bytes = used < kTotalMemory ? kTotalMemory - used : 0;
  return cudaSuccess;
}

// Device memory is any byte of a live allocation; anything else is host memory CUDA never saw.
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* pointer) {
  if (attributes == nullptr) return record_error(cudaErrorInvalidValue);
  const bool on_device = qwen3::emulator::device_bytes_from(pointer) > 0;
  attributes->type = on_device ? cudaMemoryTypeDevice : cudaMemoryTypeUnregistered;
  attributes->device =
      on_device ? current_device : -1;  // CUDA leaves it unspecified for host memory
  attributes->devicePointer = on_device ? const_cast<void*>(pointer) : nullptr;
  attributes->hostPointer = on_device ? nullptr : const_cast<void*>(pointer);
  return cudaSuccess;
}
