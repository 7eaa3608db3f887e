#include <utility>

#include "core/cuda/check.h"
#include "core/cuda/memory.h"

namespace qwen3::cuda {

DeviceMemory::DeviceMemory(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&data_, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    cudaGetLastError();
    throw_error(fmt::format("cannot allocate {} bytes of GPU memory ({} of {} bytes free): {}",
                            bytes, free_bytes, total_bytes, cudaGetErrorString(status)));
  }
}

DeviceMemory::~DeviceMemory() {
  // Destructors must not throw; a failed cudaFree here means the context is already gone.
  if (data_) cudaFree(data_);
}

DeviceMemory::DeviceMemory(DeviceMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void copy_to_device(void* device_dst, const void* host_src, size_t bytes) {
  QWEN3_CUDA_CHECK(cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
  QWEN3_CUDA_CHECK(cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost));
}

void fill_bytes(void* device_dst, int byte_value, size_t bytes) {
  QWEN3_CUDA_CHECK(cudaMemset(device_dst, byte_value, bytes));
}

void synchronize_device() {
  QWEN3_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace qwen3::cuda
