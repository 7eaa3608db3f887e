// The CUDA runtime's memory calls of runtime.h, on host memory; copies and fills are queued on
// streams (runtime_streams.cpp).
#include "tests/emulator/runtime.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "tests/emulator/device_memory.h"

namespace {

cudaError_t last_error = cudaSuccess;

}  // namespace

cudaError_t qwen3::emulator::detail::record_error(cudaError_t error) {
  if (error != cudaSuccess) last_error = error;
  return error;
}

namespace {

cudaError_t record(cudaError_t error) {
  return qwen3::emulator::detail::record_error(error);
}

bool overlap(const void* a, const void* b, size_t bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return bytes > 0 && x < y + bytes && y < x + bytes;
}

bool valid_kind(cudaMemcpyKind kind) {
  return kind >= cudaMemcpyHostToHost && kind <= cudaMemcpyDefault;
}

}  // namespace

cudaError_t cudaGetLastError() {
  const cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() {
  return last_error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
      return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection:
      return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection:
      return "invalid copy direction for memcpy";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
  }
  return "unknown error";
}

namespace {
size_t allocation_calls = 0;
}  // namespace

size_t qwen3::emulator::device_allocation_calls() {
  return allocation_calls;
}

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  ++allocation_calls;
  if (pointer == nullptr) return record(cudaErrorInvalidValue);
  try {
    *pointer = qwen3::emulator::allocate_device_memory(bytes);
  } catch (const std::bad_alloc&) {
    return record(cudaErrorMemoryAllocation);
  }
  return cudaSuccess;
}

cudaError_t cudaFree(void* pointer) {
  ++allocation_calls;
  if (pointer == nullptr) return cudaSuccess;
  qwen3::emulator::run_all_queued_work();  // queued work may still use the memory
  try {
    qwen3::emulator::free_device_memory(pointer);
  } catch (const std::invalid_argument&) {
    return record(cudaErrorInvalidDevicePointer);
  }
  return cudaSuccess;
}

namespace {

// A copy's checks, at the call as on a GPU: overlapping copies are undefined in CUDA and refused;
// a side the kind says is device memory must be that many bytes of a live allocation.
cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (!valid_kind(kind)) return record(cudaErrorInvalidMemcpyDirection);
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return record(cudaErrorInvalidValue);
  if (overlap(dst, src, bytes)) return record(cudaErrorInvalidValue);
  const bool device_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool device_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if (device_src && qwen3::emulator::device_bytes_from(src) < bytes)
    return record(cudaErrorInvalidValue);
  if (device_dst && qwen3::emulator::device_bytes_from(dst) < bytes)
    return record(cudaErrorInvalidValue);
  return cudaSuccess;
}

// The bytes a copy writes: a host source is read now (staged, as the runtime stages pageable
// memory), a device source when the copy runs.
std::function<void()> copy_work(void* dst, const void* src, size_t bytes) {
  if (qwen3::emulator::device_bytes_from(src) >= bytes)
    return [dst, src, bytes] { std::memcpy(dst, src, bytes); };
  auto staged = std::make_shared<std::vector<unsigned char>>(
      static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + bytes);
  return [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); };
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t status = check_copy(dst, src, bytes, kind); status != cudaSuccess) return status;
  if (bytes == 0) return cudaSuccess;
  qwen3::emulator::enqueue(nullptr, copy_work(dst, src, bytes));
  qwen3::emulator::run_stream(nullptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (!qwen3::emulator::is_live_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  if (cudaError_t status = check_copy(dst, src, bytes, kind); status != cudaSuccess) return status;
  if (bytes > 0) qwen3::emulator::enqueue(stream, copy_work(dst, src, bytes));
  return cudaSuccess;
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  return cudaMemsetAsync(dst, value, bytes, nullptr);
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (!qwen3::emulator::is_live_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || qwen3::emulator::device_bytes_from(dst) < bytes)
    return record(cudaErrorInvalidValue);
  qwen3::emulator::enqueue(stream, [dst, value, bytes] { std::memset(dst, value, bytes); });
  return cudaSuccess;
}
