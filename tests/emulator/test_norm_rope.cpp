// RMSNorm (rmsnorm.cu) and RoPE (rope.cu) under the emulator, through their launchers, against
// the CPU reference kernels on the same bf16-rounded inputs, under every schedule.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/kernels/cpu/rmsnorm.h"
#include "core/kernels/cpu/rope.h"
#include "core/kernels/cuda/qk_norm_rope.h"
#include "core/kernels/cuda/rmsnorm.h"
#include "core/kernels/cuda/rope.h"
#include "tests/emulator/kernel_test_support.h"

namespace qwen3::emulator_test {
namespace {

constexpr float kEps = 1e-6f;

struct NormShape {
  int64_t rows, cols;
};

// Hidden states (cols 200: not a multiple of the warp, rows 45: a partial last block of 8 rows)
// and QK-norm's rows of one head.
const NormShape kNormShapes[] = {{45, 200}, {148, 128}};

TEST(EmulatedRmsnorm, Forward) {
  for (const NormShape& s : kNormShapes) {
    const Bf16Values x = random_bf16(s.rows * s.cols, 1, 3.0), w = random_bf16(s.cols, 2);
    std::vector<float> ref_y(x.values.size()), ref_rstd(s.rows);
    qwen3::cpu::rmsnorm_forward<float>(x.values.data(), w.values.data(), s.rows, s.cols, kEps,
                                       ref_y.data(), ref_rstd.data());
    const Outputs got = same_under_every_schedule([&] {
      DeviceArray<uint16_t> x_dev(x.bits), w_dev(w.bits),
          y = DeviceArray<uint16_t>::poisoned(x.bits.size());
      DeviceArray<float> rstd = DeviceArray<float>::poisoned(s.rows);
      qwen3::cuda::rmsnorm_forward(bf16s(x_dev), bf16s(w_dev), s.rows, s.cols, kEps, bf16s(y),
                                   rstd.data(), nullptr);
      return Outputs{{"y", bf16_to_floats(y.download())}, {"rstd", rstd.download()}};
    });
    const std::string shape = " " + std::to_string(s.rows) + "x" + std::to_string(s.cols);
    expect_close("rmsnorm y" + shape, ref_y, got.at("y"), kBf16Tolerance);
    expect_close("rmsnorm rstd" + shape, ref_rstd, got.at("rstd"), kF32Tolerance);
  }
}

// 300 rows: five chunks of 64 for dw's partial sums, the last one short.
TEST(EmulatedRmsnorm, BackwardWithAndWithoutAccumulationAndInPlace) {
  const int64_t rows = 300, cols = 200, n = rows * cols;
  const Bf16Values x = random_bf16(n, 3, 3.0), w = random_bf16(cols, 4), dy = random_bf16(n, 5);
  const Bf16Values dx_start = random_bf16(n, 6), dw_start = random_bf16(cols, 7);
  std::vector<float> y(n), rstd(rows);
  qwen3::cpu::rmsnorm_forward<float>(x.values.data(), w.values.data(), rows, cols, kEps, y.data(),
                                     rstd.data());
  for (bool accumulate : {false, true}) {
    std::vector<float> ref_dx = dx_start.values, ref_dw = dw_start.values;
    qwen3::cpu::rmsnorm_backward<float>(dy.values.data(), x.values.data(), w.values.data(),
                                        rstd.data(), rows, cols, ref_dx.data(), accumulate,
                                        ref_dw.data());
    const Outputs got = same_under_every_schedule([&] {
      DeviceArray<uint16_t> dy_dev(dy.bits), x_dev(x.bits), w_dev(w.bits), dw(dw_start.bits);
      DeviceArray<uint16_t> dx =
          accumulate ? DeviceArray<uint16_t>(dx_start.bits) : DeviceArray<uint16_t>::poisoned(n);
      DeviceArray<float> rstd_dev(rstd);
      DeviceArray<uint8_t> workspace =
          DeviceArray<uint8_t>::poisoned(qwen3::cuda::rmsnorm_backward_workspace_bytes(rows, cols));
      qwen3::cuda::rmsnorm_backward(bf16s(dy_dev), bf16s(x_dev), bf16s(w_dev), rstd_dev.data(),
                                    rows, cols, bf16s(dx), accumulate, bf16s(dw), workspace.data(),
                                    nullptr);
      Outputs outputs{{"dx", bf16_to_floats(dx.download())}, {"dw", bf16_to_floats(dw.download())}};
      if (!accumulate) {
        // dx may alias dy.
        DeviceArray<uint16_t> dw_again(dw_start.bits);
        qwen3::cuda::rmsnorm_backward(bf16s(dy_dev), bf16s(x_dev), bf16s(w_dev), rstd_dev.data(),
                                      rows, cols, bf16s(dy_dev), false, bf16s(dw_again),
                                      workspace.data(), nullptr);
        outputs["dx in place"] = bf16_to_floats(dy_dev.download());
        outputs["dw in place"] = bf16_to_floats(dw_again.download());
      }
      return outputs;
    });
    const std::string mode = accumulate ? " (accumulate)" : "";
    expect_close("rmsnorm dx" + mode, ref_dx, got.at("dx"), kBf16Tolerance);
    expect_close("rmsnorm dw" + mode, ref_dw, got.at("dw"), kBf16Tolerance);
    if (!accumulate) {
      EXPECT_EQ(got.at("dx in place"), got.at("dx"));
      EXPECT_EQ(got.at("dw in place"), got.at("dw"));
    }
  }
}

TEST(EmulatedRope, ForwardBackwardAndInPlace) {
  const int64_t rows = 24, heads = 4;
  const std::vector<int32_t> positions = rope_positions(rows);
  for (int64_t head_dim : {64, 128}) {
    for (double theta : {1e4, 1e6}) {
      const int64_t n = rows * heads * head_dim;
      const Bf16Values x = random_bf16(n, 9);
      std::vector<float> ref_forward(n), ref_backward(n);
      qwen3::cpu::rope_forward<float>(x.values.data(), positions.data(), rows, heads, head_dim,
                                      theta, ref_forward.data());
      qwen3::cpu::rope_backward<float>(x.values.data(), positions.data(), rows, heads, head_dim,
                                       theta, ref_backward.data());
      const Outputs got = same_under_every_schedule([&] {
        DeviceArray<uint16_t> x_dev(x.bits), forward = DeviceArray<uint16_t>::poisoned(n),
                                             backward = DeviceArray<uint16_t>::poisoned(n);
        DeviceArray<int32_t> positions_dev(positions);
        qwen3::cuda::rope(bf16s(x_dev), positions_dev.data(), rows, heads, head_dim, theta, false,
                          bf16s(forward), nullptr);
        qwen3::cuda::rope(bf16s(x_dev), positions_dev.data(), rows, heads, head_dim, theta, true,
                          bf16s(backward), nullptr);
        // y may alias x.
        qwen3::cuda::rope(bf16s(x_dev), positions_dev.data(), rows, heads, head_dim, theta, false,
                          bf16s(x_dev), nullptr);
        return Outputs{{"forward", bf16_to_floats(forward.download())},
                       {"backward", bf16_to_floats(backward.download())},
                       {"in place", bf16_to_floats(x_dev.download())}};
      });
      const std::string name =
          " head_dim " + std::to_string(head_dim) + " theta " + std::to_string(int64_t(theta));
      expect_close("rope forward" + name, ref_forward, got.at("forward"), kBf16Tolerance);
      expect_close("rope backward" + name, ref_backward, got.at("backward"), kBf16Tolerance);
      EXPECT_EQ(got.at("in place"), got.at("forward"));
    }
  }
}

// rope_table: entry (row, i) is (sin, cos) of position · inv_freq_i, computed as HF does in fp32
// (inv_freq = 1 / theta^(2i / head_dim)); checked against the host's sin and cos in double of that
// fp32 angle.
TEST(EmulatedRope, TableHoldsEachTokensSinAndCos) {
  const int64_t rows = 24, head_dim = 64, half = head_dim / 2;
  const std::vector<int32_t> positions = rope_positions(rows);
  const double theta = 1e6;
  DeviceArray<int32_t> positions_dev(positions);
  DeviceArray<float2> table = DeviceArray<float2>::poisoned(rows * half);
  qwen3::cuda::rope_table(positions_dev.data(), rows, head_dim, theta, table.data(), nullptr);
  const std::vector<float2> got = table.download();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < half; ++i) {
      const float inv_freq = 1.0f / std::pow(float(theta), float(2 * i) / float(head_dim));
      const double angle = double(float(positions[r]) * inv_freq);
      const float2 entry = got[r * half + i];
      ASSERT_NEAR(entry.x, std::sin(angle), 1e-6) << "sin, row " << r << " pair " << i;
      ASSERT_NEAR(entry.y, std::cos(angle), 1e-6) << "cos, row " << r << " pair " << i;
    }
}

// The rotations read from the batch's table give the bits they compute without one: rope forward
// and backward, QK-norm + RoPE forward and backward (dx and dw).
TEST(EmulatedRope, RotationsFromTheTableMatchAnglesComputedInPlace) {
  const int64_t rows = 40, heads = 4;
  const std::vector<int32_t> positions = rope_positions(rows);
  for (int64_t head_dim : {64, 128}) {
    const double theta = 1e6;
    const int64_t n = rows * heads * head_dim;
    const Bf16Values x = random_bf16(n, 21, 3.0), w = random_bf16(head_dim, 22),
                     dy = random_bf16(n, 23);
    auto run = [&](bool with_table) {
      DeviceArray<int32_t> positions_dev(positions);
      DeviceArray<float2> table = DeviceArray<float2>::poisoned(rows * head_dim / 2);
      qwen3::cuda::rope_table(positions_dev.data(), rows, head_dim, theta, table.data(), nullptr);
      const float2* angles = with_table ? table.data() : nullptr;
      DeviceArray<uint16_t> x_dev(x.bits), w_dev(w.bits), dy_dev(dy.bits);
      DeviceArray<uint16_t> forward = DeviceArray<uint16_t>::poisoned(n),
                            backward = DeviceArray<uint16_t>::poisoned(n),
                            y = DeviceArray<uint16_t>::poisoned(n),
                            dx = DeviceArray<uint16_t>::poisoned(n);
      DeviceArray<uint16_t> dw(std::vector<uint16_t>(size_t(head_dim), 0));
      DeviceArray<float> rstd = DeviceArray<float>::poisoned(rows * heads);
      DeviceArray<uint8_t> workspace = DeviceArray<uint8_t>::poisoned(
          qwen3::cuda::qk_norm_rope_backward_workspace_bytes(rows, heads, head_dim));
      qwen3::cuda::rope(bf16s(x_dev), positions_dev.data(), rows, heads, head_dim, theta, false,
                        bf16s(forward), nullptr, angles);
      qwen3::cuda::rope(bf16s(x_dev), positions_dev.data(), rows, heads, head_dim, theta, true,
                        bf16s(backward), nullptr, angles);
      qwen3::cuda::qk_norm_rope_forward(bf16s(x_dev), heads * head_dim, bf16s(w_dev),
                                        positions_dev.data(), rows, heads, head_dim, kEps, theta,
                                        bf16s(y), rstd.data(), nullptr, angles);
      qwen3::cuda::qk_norm_rope_backward(bf16s(dy_dev), bf16s(x_dev), heads * head_dim,
                                         bf16s(w_dev), rstd.data(), positions_dev.data(), rows,
                                         heads, head_dim, theta, bf16s(dx), heads * head_dim,
                                         bf16s(dw), workspace.data(), nullptr, angles);
      return Outputs{{"rope forward", bf16_to_floats(forward.download())},
                     {"rope backward", bf16_to_floats(backward.download())},
                     {"qk-norm rope y", bf16_to_floats(y.download())},
                     {"qk-norm rope dx", bf16_to_floats(dx.download())},
                     {"qk-norm rope dw", bf16_to_floats(dw.download())}};
    };
    const Outputs computed = run(false);
    const Outputs from_table = same_under_every_schedule([&] { return run(true); });
    for (const auto& [name, values] : computed)
      EXPECT_EQ(from_table.at(name), values) << name << ", head_dim " << head_dim;
  }
}

}  // namespace
}  // namespace qwen3::emulator_test
