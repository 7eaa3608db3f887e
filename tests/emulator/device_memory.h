#pragma once
// Host memory standing in for device allocations, laid out to make stray accesses show: each
// allocation starts 256-byte aligned (as cudaMalloc's) and ends less than 256 bytes below an
// inaccessible guard page, so running past it faults at once; the bytes between the guard pages
// and the allocation are poisoned with a signalling-NaN pattern (bf16 0xFF81, fp32 0xFF81FF81),
// so reading them gives NaN, and writing them, even a NaN computed from them, is found by
// check_device_memory_margins after every launch.
#include <cstddef>
#include <string>

#include "tests/emulator/runtime.h"

namespace qwen3::emulator {

void* allocate_device_memory(size_t bytes);
// Throws std::invalid_argument for a pointer allocate_device_memory did not return.
void free_device_memory(void* pointer);

// Bytes of the live allocation holding `pointer` from it to the allocation's end; 0 where it is in
// none (host memory, a freed buffer, a guard margin). Stand-in libraries check their operands with
// it.
size_t device_bytes_from(const void* pointer);

// Bytes of all live allocations (cudaMemGetInfo subtracts them from the device's memory).
size_t live_device_bytes();

// Throws KernelFault naming the allocation and `context` if a poisoned margin byte changed (the
// margin is poisoned again first, so one overrun is reported once).
void check_device_memory_margins(const std::string& context);

// An allocation that frees itself.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : data_(allocate_device_memory(bytes)), bytes_(bytes) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept : data_(other.data_), bytes_(other.bytes_) {
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = other.data_;
      bytes_ = other.bytes_;
      other.data_ = nullptr;
      other.bytes_ = 0;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void reset() {
    if (data_ != nullptr) cudaFree(data_);  // after the queued work that may use it, as CUDA
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace qwen3::emulator
