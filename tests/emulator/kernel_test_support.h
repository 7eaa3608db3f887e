#pragma once
// What the emulated kernel tests share: bf16-rounded random inputs, emulated device arrays, the
// comparison with the CPU reference, and running a launch under every schedule.
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/emulator/bf16.h"
#include "tests/emulator/device_memory.h"
#include "tests/emulator/emulator.h"

namespace qwen3::emulator_test {

constexpr uint64_t kSeed = 20260601;
// As the GPU parity tests: outputs stored in bf16 carry its 8-bit mantissa once or twice over;
// fp32 outputs differ from the reference by summation order only.
constexpr double kBf16Tolerance = 1e-2;
constexpr double kF32Tolerance = 1e-4;

// Values rounded to bf16: the bits a kernel reads, and the same values as floats for the
// reference.
struct Bf16Values {
  std::vector<uint16_t> bits;
  std::vector<float> values;
};

Bf16Values round_to_bf16(const std::vector<float>& values);
std::vector<float> normal_values(int64_t n, uint64_t stream, double std = 1.0);
Bf16Values random_bf16(int64_t n, uint64_t stream, double std = 1.0);
std::vector<float> bf16_to_floats(const std::vector<uint16_t>& bits);
// n ids in [0, below).
std::vector<int32_t> random_ids(int64_t n, int32_t below, uint64_t stream);
// RoPE positions for `rows` tokens that restart (documents) and reach 32K, where the angle is tens
// of thousands of radians and only an accurate sincosf keeps it.
std::vector<int32_t> rope_positions(int64_t rows);

// n elements of emulated device memory (device_memory.h: guard pages, poisoned margins).
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : size_(n), buffer_(n > 0 ? n * sizeof(T) : 1) {}
  explicit DeviceArray(const std::vector<T>& values) : DeviceArray(values.size()) {
    if (!values.empty()) std::memcpy(data(), values.data(), values.size() * sizeof(T));
  }
  // Every byte 0xFF (NaN as bf16 or fp32): what a kernel does not write stays NaN.
  static DeviceArray poisoned(size_t n) {
    DeviceArray array(n);
    std::memset(array.data(), 0xFF, n * sizeof(T));
    return array;
  }

  T* data() const { return static_cast<T*>(buffer_.data()); }
  size_t size() const { return size_; }
  // After all queued work: the host reads device memory only once the device is synchronised.
  std::vector<T> download() const {
    cudaDeviceSynchronize();
    std::vector<T> values(size_);
    if (size_ > 0) std::memcpy(values.data(), data(), size_ * sizeof(T));
    return values;
  }

 private:
  size_t size_;
  emulator::DeviceBuffer buffer_;
};

// A bf16 array as the launchers take it.
inline __nv_bfloat16* bf16s(const DeviceArray<uint16_t>& array) {
  return reinterpret_cast<__nv_bfloat16*>(array.data());
}

// Checks every element of `got` is finite (a NaN is an element the kernel did not write, or read
// from poison) and that the normalised error against `ref` is at most `tolerance`; prints the
// error, which the reports quote.
void expect_close(const std::string& name, const std::vector<float>& ref,
                  const std::vector<float>& got, double tolerance);

// Named outputs of one run, as floats (bf16 outputs widened exactly).
using Outputs = std::map<std::string, std::vector<float>>;

// Runs `run` under every emulator schedule and expects the same bits from each: a difference is a
// race, or a result that depends on the order of threads or blocks. Returns the forward
// schedule's outputs.
Outputs same_under_every_schedule(const std::function<Outputs()>& run);

// Runs `statement` (and the queued work it leaves), expecting a KernelFault whose message
// contains every one of `parts`.
template <class Statement>
void expect_fault(Statement statement, const std::vector<std::string>& parts) {
  try {
    statement();
    cudaDeviceSynchronize();  // a queued kernel faults when it runs
    ADD_FAILURE() << "no KernelFault";
  } catch (const emulator::KernelFault& fault) {
    const std::string message = fault.what();
    for (const std::string& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

}  // namespace qwen3::emulator_test
