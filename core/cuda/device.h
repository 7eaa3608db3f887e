#pragma once
// Which GPUs this process sees, and binding a rank to one of them.
#include <cstddef>
#include <string>

namespace qwen3::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  size_t total_memory_bytes = 0;
  int multiprocessors = 0;
  int memory_bus_bits = 0;
  int memory_clock_khz = 0;  // 0 where the runtime no longer reports it
};

// GPUs visible to this process; 0 (not an error) when there is no driver or no device, so that
// callers can skip GPU work with a clear message.
int device_count();
// Why device_count() is 0, e.g. "cudaErrorNoDevice: no CUDA-capable device is detected".
std::string no_device_reason();

DeviceInfo query_device(int index);
// Dense bf16 tensor-core peak in FLOP/s, for MFU, from the datasheet table by device name
// (device_peaks.h); 0 for a device not in it (MFU is then not shown).
double peak_bf16_flops(const DeviceInfo& info);

// One line per visible device, for logs.
std::string describe_devices();

// Binds the calling thread to GPU `local_rank` (one rank per GPU on each node). Throws when the
// node has fewer GPUs than ranks, naming both counts.
int select_device_for_local_rank(int local_rank);

// Free and total bytes on the current device.
void memory_info(size_t* free_bytes, size_t* total_bytes);

}  // namespace qwen3::cuda
