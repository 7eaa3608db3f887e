#pragma once
// Datasheet ceilings of the GPUs this trainer is run on, by the name the driver reports
// (cudaDeviceProp::name, nvidia-smi's "name"). MFU is achieved FLOP/s over the dense bf16
// tensor-core peak, and parts that share a compute capability differ by up to 30% (the H100 SXM
// and PCIe cards both report sm_90), so the peak is looked up by name, never by architecture.
// Plain C++: compiled in every build, so that benchmarks and tests can use it without a GPU.
#include <optional>
#include <string>
#include <string_view>

namespace qwen3::cuda {

struct DevicePeaks {
  std::string part;               // "H100 SXM", "H200 NVL", ...
  double bf16_dense_flops = 0;    // FLOP/s, dense (no 2:4 sparsity), fp32 accumulation
  double memory_bytes_per_s = 0;  // HBM/GDDR bandwidth from the datasheet
};

// The entry whose name pattern the device name contains, the most specific pattern first
// ("H100 PCIe" before "H100"); nullopt for a device not in the table (then print achieved
// TFLOP/s and say the peak is unknown, rather than guess).
std::optional<DevicePeaks> device_peaks(std::string_view device_name);

}  // namespace qwen3::cuda
