#include "core/cuda/device_peaks.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace qwen3::cuda {

namespace {

struct Entry {
  const char* pattern;  // matched case-insensitively as a substring of the device name
  const char* part;
  double tflops;  // dense bf16, tensor cores
  double tb_per_s;
};

// NVIDIA's datasheets; dense figures are half the "with sparsity" ones printed there. Order
// matters: a name is matched against the rows top to bottom, so each variant comes before the
// pattern it contains (the SXM H100 reports "NVIDIA H100 80GB HBM3", the PCIe card "NVIDIA H100
// PCIe", the GH200 "NVIDIA GH200 480GB", which contains no "H100" or "H200" at all).
const std::vector<Entry>& table() {
  static const std::vector<Entry> rows = {
      {"H100 PCIe", "H100 PCIe", 756.0, 2.0},
      {"H100 NVL", "H100 NVL", 835.0, 3.9},
      {"H100", "H100 SXM", 989.4, 3.35},
      {"H200 NVL", "H200 NVL", 835.0, 4.8},
      {"H200", "H200 SXM", 989.4, 4.8},
      {"H800 PCIe", "H800 PCIe", 756.0, 2.0},
      {"H800", "H800 SXM", 989.4, 3.35},
      {"H20", "H20", 148.0, 4.0},
      {"GH200", "GH200", 989.4, 4.0},
      {"A100-PCIE-40GB", "A100 PCIe 40GB", 312.0, 1.555},
      {"A100 80GB PCIe", "A100 PCIe 80GB", 312.0, 1.935},
      {"A100-SXM4-40GB", "A100 SXM 40GB", 312.0, 1.555},
      {"A100", "A100 SXM 80GB", 312.0, 2.039},
      {"A800", "A800", 312.0, 2.039},
      {"L40S", "L40S", 362.05, 0.864},
      {"L4", "L4", 121.0, 0.300},
      {"B200", "B200", 2250.0, 8.0},
  };
  return rows;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "L4" must not match "L40S": a pattern ending in a digit must not be followed by another digit
// (nor an "L40S" by anything alphanumeric).
bool contains_word(const std::string& name, const std::string& pattern) {
  for (size_t at = name.find(pattern); at != std::string::npos; at = name.find(pattern, at + 1)) {
    const size_t end = at + pattern.size();
    const bool starts_word = at == 0 || !std::isalnum(static_cast<unsigned char>(name[at - 1]));
    const bool ends_word =
        end == name.size() || !std::isalnum(static_cast<unsigned char>(name[end]));
    if (starts_word && ends_word) return true;
  }
  return false;
}

}  // namespace

std::optional<DevicePeaks> device_peaks(std::string_view device_name) {
  const std::string name = lower(device_name);
  for (const Entry& e : table())
    if (contains_word(name, lower(e.pattern)))
      return DevicePeaks{e.part, e.tflops * 1e12, e.tb_per_s * 1e12};
  return std::nullopt;
}

}  // namespace qwen3::cuda
