#include "tests/emulator/kernel_test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/tensor/bf16.h"
#include "core/util/rng.h"
#include "tests/common/normalised_error.h"
#include "tests/emulator/emulator.h"

namespace qwen3::emulator_test {

Bf16Values round_to_bf16(const std::vector<float>& values) {
  Bf16Values out;
  out.bits.reserve(values.size());
  out.values.reserve(values.size());
  for (float x : values) {
    out.bits.push_back(float_to_bf16_bits(x));
    out.values.push_back(bf16_bits_to_float(out.bits.back()));
  }
  return out;
}

std::vector<float> normal_values(int64_t n, uint64_t stream, double std) {
  std::vector<float> values(static_cast<size_t>(n));
  fill_normal(values.data(), n, 0.0, std, kSeed, stream);
  return values;
}

Bf16Values random_bf16(int64_t n, uint64_t stream, double std) {
  return round_to_bf16(normal_values(n, stream, std));
}

std::vector<float> bf16_to_floats(const std::vector<uint16_t>& bits) {
  std::vector<float> values;
  values.reserve(bits.size());
  for (uint16_t b : bits)
    values.push_back(bf16_bits_to_float(b));
  return values;
}

std::vector<int32_t> random_ids(int64_t n, int32_t below, uint64_t stream) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    ids[size_t(i)] =
        static_cast<int32_t>(random_bits(kSeed, stream, uint64_t(i)) % uint64_t(below));
  return ids;
}

std::vector<int32_t> rope_positions(int64_t rows) {
  std::vector<int32_t> positions(static_cast<size_t>(rows));
  const std::vector<int32_t> far = random_ids(rows, 32768, 8);
  for (int64_t r = 0; r < rows; ++r)
    positions[size_t(r)] = r % 3 == 0 ? static_cast<int32_t>(r % 10) : far[size_t(r)];
  return positions;
}

void expect_close(const std::string& name, const std::vector<float>& ref,
                  const std::vector<float>& got, double tolerance) {
  ASSERT_EQ(ref.size(), got.size()) << name;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_TRUE(std::isfinite(got[i]))
        << name << "[" << i << "] is " << got[i] << ": not written, or computed from poison";
  const double error = test_data::normalised_error(ref, got);
  if (tolerance == 0)
    std::printf("[ emulated ] %s: normalised error %.3g (must be 0)\n", name.c_str(), error);
  else
    std::printf("[ emulated ] %s: normalised error %.3g (tolerance %.0e)\n", name.c_str(), error,
                tolerance);
  EXPECT_LE(error, tolerance) << name;
}

Outputs same_under_every_schedule(const std::function<Outputs()>& run) {
  Outputs first;
  for (emulator::Schedule schedule : emulator::kAllSchedules) {
    emulator::ScopedSchedule scoped(schedule);
    Outputs outputs = run();
    if (schedule == emulator::Schedule::kForward) {
      first = std::move(outputs);
      continue;
    }
    EXPECT_EQ(outputs.size(), first.size());
    for (const auto& [name, values] : first) {
      const std::vector<float>& other = outputs[name];
      EXPECT_EQ(other.size(), values.size()) << name;
      if (other.size() != values.size()) continue;
      for (size_t i = 0; i < values.size(); ++i) {
        if (std::memcmp(&values[i], &other[i], sizeof(float)) != 0) {
          ADD_FAILURE() << name << "[" << i << "] is " << values[i] << " under the forward "
                        << "schedule but " << other[i] << " under " << schedule_name(schedule);
          break;
        }
      }
    }
  }
  return first;
}

}  // namespace qwen3::emulator_test
