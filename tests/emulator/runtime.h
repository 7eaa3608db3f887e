#pragma once
// The host side of the CUDA runtime that the kernels' launchers and the code around them call, for
// the emulator: "device" memory is host memory, kernel launches run on the emulator's fibers
// (device.h), and work queued on a stream runs in stream order but, by default, as late as the
// program's synchronisation allows (runtime_streams.cpp). The devices are H100-like
// (runtime_device.cpp).
// Only what the project and the tests use is here; enumerators have CUDA 13's values.
#include <cstddef>
#include <functional>

#include "tests/emulator/vector_types.h"

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
};
using cudaError = cudaError_t;

struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;

constexpr unsigned cudaStreamDefault = 0x00;
constexpr unsigned cudaStreamNonBlocking = 0x01;
constexpr unsigned cudaEventDefault = 0x00;
constexpr unsigned cudaEventBlockingSync = 0x01;
constexpr unsigned cudaEventDisableTiming = 0x02;

enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};

struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

// The fields the project reads, with the toolkit's names.
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  size_t sharedMemPerMultiprocessor;
  int warpSize;
  int maxThreadsPerBlock;
  int major;
  int minor;
  int multiProcessorCount;
  int memoryBusWidth;
  int l2CacheSize;
};

enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMemoryClockRate = 36,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

// Errors are sticky until read, as in CUDA; the emulator sets one only for invalid arguments to
// these calls (a faulting kernel throws qwen3::emulator::KernelFault from its launch instead).
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

// Allocations with guard pages and poisoned margins (device_memory.h).
cudaError_t cudaMalloc(void** pointer, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** pointer, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(pointer), bytes);
}
cudaError_t cudaFree(void* pointer);

// cudaMemcpy waits for the copy (and, on the legacy default stream, for the blocking streams'
// work before it). The others are queued: cudaMemcpyAsync reads a host source when it is called
// (the runtime stages pageable memory then, and the project relies on it) but writes a host
// destination only when the copy runs, which is stricter than the runtime's pageable shortcut:
// read a download only after synchronising its stream. cudaMemset is queued on the legacy stream.
// cudaFree waits for all queued work first, as the runtime does.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);

// Devices: QWEN3_EMULATED_DEVICES of them (default 8, an HGX node; 0 for a machine without a GPU),
// each an H100 SXM as the runtime reports it. Memory is one pool: cudaMemGetInfo's free bytes are
// the 80 GiB less every live allocation.
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* pointer);

// Streams and events: handles checked on every use (a destroyed one is
// cudaErrorInvalidResourceHandle). Work runs when a synchronisation needs it:
// cudaStreamSynchronize, cudaEventSynchronize, cudaDeviceSynchronize, a synchronous copy, cudaFree,
// a wait queued behind it on another stream that is itself run. A query of pending work says
// cudaErrorNotReady and lets the work run, so that polling ends.
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

namespace qwen3::emulator {
// Whether `stream` is the null stream or one created and not yet destroyed.
bool is_live_stream(cudaStream_t stream);

// When queued work runs. kLatest: only when a synchronisation makes it, so that a read the program
// did not order after the work sees memory the work has not written (new memory reads as NaN).
// kEager: at once, the earliest a GPU could. QWEN3_EMULATED_STREAM_ORDER=latest|eager sets the
// order a process starts with; latest is the default.
enum class StreamOrder { kLatest, kEager };
void set_stream_order(StreamOrder order);  // switching to kEager runs all queued work
StreamOrder stream_order();
const char* stream_order_name(StreamOrder order);

// The stream order for one scope (a test): what earlier code left queued runs first, and what the
// scope queued runs before the order is put back.
class ScopedStreamOrder {
 public:
  explicit ScopedStreamOrder(StreamOrder order);
  ~ScopedStreamOrder();
  ScopedStreamOrder(const ScopedStreamOrder&) = delete;
  ScopedStreamOrder& operator=(const ScopedStreamOrder&) = delete;

 private:
  StreamOrder saved_;
};

// Queues `work` on `stream` (nullptr: the legacy default stream) behind its earlier work and
// waits, with the legacy stream's implicit synchronisation. False for a dead stream handle.
bool enqueue(cudaStream_t stream, std::function<void()> work);
// Runs everything queued on `stream` (and what it waits for); false for a dead handle.
bool run_stream(cudaStream_t stream);
void run_all_queued_work();
size_t queued_operations();  // on all streams, waits included
// cudaMalloc and cudaFree calls so far, successful or not (the tests' own DeviceArrays allocate
// without them): what a step that should not allocate must leave unchanged.
size_t device_allocation_calls();

// Planted bugs, for the tests that show what the latest order catches. Dropped waits:
// cudaStreamWaitEvent on `stream` returns success and orders nothing. Skipped synchronisations:
// the next `count` cudaStreamSynchronize(stream) return at once, running nothing.
void plant_dropped_waits(cudaStream_t stream, bool drop);
void plant_skipped_synchronisations(cudaStream_t stream, int count);
}  // namespace qwen3::emulator

namespace qwen3::emulator::detail {
cudaError_t record_error(cudaError_t error);
cudaError_t set_kernel_attribute(const void* kernel, cudaFuncAttribute attribute, int value);
}  // namespace qwen3::emulator::detail

template <class... Parameters>
cudaError_t cudaFuncSetAttribute(void (*kernel)(Parameters...), cudaFuncAttribute attribute,
                                 int value) {
  return qwen3::emulator::detail::set_kernel_attribute(reinterpret_cast<const void*>(kernel),
                                                       attribute, value);
}
