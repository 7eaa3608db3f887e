#pragma once
// Device memory with an owner, and the copies between host and device.
#include <cstddef>

namespace qwen3::cuda {

class DeviceMemory {
 public:
  DeviceMemory() = default;
  // Allocates `bytes` on the current device; throws with the size and free memory on failure.
  explicit DeviceMemory(size_t bytes);
  ~DeviceMemory();
  DeviceMemory(DeviceMemory&& other) noexcept;
  DeviceMemory& operator=(DeviceMemory&& other) noexcept;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

void copy_to_device(void* device_dst, const void* host_src, size_t bytes);
void copy_to_host(void* host_dst, const void* device_src, size_t bytes);
void fill_bytes(void* device_dst, int byte_value, size_t bytes);
void synchronize_device();

}  // namespace qwen3::cuda
