// The fused kernels (add_rmsnorm.cu, qk_norm_rope.cu) under the emulator, through their launchers:
// against the CPU reference kernels on the same bf16-rounded inputs, under every schedule, and
// against the unfused CUDA kernels they replace, whose arithmetic they promise to repeat.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/kernels/cpu/add_rmsnorm.h"
#include "core/kernels/cpu/qk_norm_rope.h"
#include "core/kernels/cpu/rmsnorm.h"
#include "core/kernels/cuda/elementwise.h"
#include "core/kernels/cuda/qk_norm_rope.h"
#include "core/kernels/cuda/add_rmsnorm.h"
#include "core/kernels/cuda/rmsnorm.h"
#include "core/kernels/cuda/rope.h"
#include "tests/emulator/kernel_test_support.h"

namespace qwen3::emulator_test {
namespace {

constexpr float kEps = 1e-6f;

// cols 200: not a multiple of the warp; rows 45: a partial last block of 8 rows.
TEST(EmulatedAddRmsnorm, ForwardInPlaceAndAsTheUnfusedPair) {
  const int64_t rows = 45, cols = 200, n = rows * cols;
  const Bf16Values a = random_bf16(n, 1, 3.0), b = random_bf16(n, 2), w = random_bf16(cols, 3);
  std::vector<float> ref_sum(n), ref_y(n), ref_rstd(rows);  // ref_rstd: of the exact sum
  qwen3::cpu::add_rmsnorm_forward<float>(a.values.data(), b.values.data(), w.values.data(), rows,
                                         cols, kEps, ref_sum.data(), ref_y.data(), ref_rstd.data());
  // The kernel stores the sum in bf16 and normalises what it stored, so its rstd is that of the
  // rounded sum: the reference statistic is taken of the same values.
  const Bf16Values stored_sum = round_to_bf16(ref_sum);
  std::vector<float> normed(n), ref_rstd_of_stored(rows);
  qwen3::cpu::rmsnorm_forward<float>(stored_sum.values.data(), w.values.data(), rows, cols, kEps,
                                     normed.data(), ref_rstd_of_stored.data());
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<uint16_t> a_dev(a.bits), b_dev(b.bits), w_dev(w.bits);
    DeviceArray<uint16_t> sum = DeviceArray<uint16_t>::poisoned(n),
                          y = DeviceArray<uint16_t>::poisoned(n);
    DeviceArray<float> rstd = DeviceArray<float>::poisoned(rows);
    qwen3::cuda::add_rmsnorm_forward(bf16s(a_dev), bf16s(b_dev), bf16s(w_dev), rows, cols, kEps,
                                     bf16s(sum), bf16s(y), rstd.data(), nullptr);
    // The unfused pair on the same inputs.
    DeviceArray<uint16_t> pair_sum = DeviceArray<uint16_t>::poisoned(n),
                          pair_y = DeviceArray<uint16_t>::poisoned(n);
    DeviceArray<float> pair_rstd = DeviceArray<float>::poisoned(rows);
    qwen3::cuda::add(bf16s(a_dev), bf16s(b_dev), n, bf16s(pair_sum), nullptr);
    qwen3::cuda::rmsnorm_forward(bf16s(pair_sum), bf16s(w_dev), rows, cols, kEps, bf16s(pair_y),
                                 pair_rstd.data(), nullptr);
    // The sum over the residual itself, as the model may run it.
    DeviceArray<uint16_t> y_in_place = DeviceArray<uint16_t>::poisoned(n);
    DeviceArray<float> rstd_in_place = DeviceArray<float>::poisoned(rows);
    qwen3::cuda::add_rmsnorm_forward(bf16s(a_dev), bf16s(b_dev), bf16s(w_dev), rows, cols, kEps,
                                     bf16s(a_dev), bf16s(y_in_place), rstd_in_place.data(),
                                     nullptr);
    return Outputs{{"sum", bf16_to_floats(sum.download())},
                   {"y", bf16_to_floats(y.download())},
                   {"rstd", rstd.download()},
                   {"pair sum", bf16_to_floats(pair_sum.download())},
                   {"pair y", bf16_to_floats(pair_y.download())},
                   {"pair rstd", pair_rstd.download()},
                   {"sum in place", bf16_to_floats(a_dev.download())},
                   {"y in place", bf16_to_floats(y_in_place.download())}};
  });
  expect_close("add_rmsnorm sum", ref_sum, got.at("sum"), kBf16Tolerance);
  expect_close("add_rmsnorm y", ref_y, got.at("y"), kBf16Tolerance);
  expect_close("add_rmsnorm rstd", ref_rstd_of_stored, got.at("rstd"), kF32Tolerance);
  EXPECT_EQ(got.at("sum"), got.at("pair sum"));
  EXPECT_EQ(got.at("y"), got.at("pair y"));
  EXPECT_EQ(got.at("rstd"), got.at("pair rstd"));
  EXPECT_EQ(got.at("sum in place"), got.at("sum"));
  EXPECT_EQ(got.at("y in place"), got.at("y"));
}

// 40 tokens × 4 heads = 160 norm rows: three chunks of 64 for dw's partial sums, the last short.
TEST(EmulatedQkNormRope, ForwardBackwardInPlaceAndAsTheUnfusedPair) {
  const int64_t rows = 40, heads = 4;
  const std::vector<int32_t> positions = rope_positions(rows);
  for (int64_t head_dim : {64, 128}) {
    const double theta = 1e6;
    const int64_t n = rows * heads * head_dim;
    const Bf16Values x = random_bf16(n, 9, 3.0), w = random_bf16(head_dim, 10),
                     dy = random_bf16(n, 11), dw_start = random_bf16(head_dim, 12);
    std::vector<float> ref_y(n), ref_rstd(rows * heads), ref_dx(n), ref_dw = dw_start.values;
    qwen3::cpu::qk_norm_rope_forward<float>(x.values.data(), w.values.data(), positions.data(),
                                            rows, heads, head_dim, kEps, theta, ref_y.data(),
                                            ref_rstd.data());
    qwen3::cpu::qk_norm_rope_backward<float>(dy.values.data(), x.values.data(), w.values.data(),
                                             ref_rstd.data(), positions.data(), rows, heads,
                                             head_dim, theta, ref_dx.data(), ref_dw.data());
    const Outputs got = same_under_every_schedule([&] {
      DeviceArray<uint16_t> x_dev(x.bits), w_dev(w.bits), dy_dev(dy.bits), dw(dw_start.bits);
      DeviceArray<int32_t> positions_dev(positions);
      DeviceArray<uint16_t> y = DeviceArray<uint16_t>::poisoned(n),
                            dx = DeviceArray<uint16_t>::poisoned(n);
      DeviceArray<float> rstd = DeviceArray<float>::poisoned(rows * heads);
      qwen3::cuda::qk_norm_rope_forward(bf16s(x_dev), heads * head_dim, bf16s(w_dev),
                                        positions_dev.data(), rows, heads, head_dim, kEps, theta,
                                        bf16s(y), rstd.data(), nullptr);
      DeviceArray<uint8_t> workspace = DeviceArray<uint8_t>::poisoned(
          qwen3::cuda::qk_norm_rope_backward_workspace_bytes(rows, heads, head_dim));
      qwen3::cuda::qk_norm_rope_backward(bf16s(dy_dev), bf16s(x_dev), heads * head_dim,
                                         bf16s(w_dev), rstd.data(), positions_dev.data(), rows,
                                         heads, head_dim, theta, bf16s(dx), heads * head_dim,
                                         bf16s(dw), workspace.data(), nullptr);
      // The unfused pair: rmsnorm over (token, head) rows, then RoPE in place.
      DeviceArray<uint16_t> pair_y = DeviceArray<uint16_t>::poisoned(n);
      DeviceArray<float> pair_rstd = DeviceArray<float>::poisoned(rows * heads);
      qwen3::cuda::rmsnorm_forward(bf16s(x_dev), bf16s(w_dev), rows * heads, head_dim, kEps,
                                   bf16s(pair_y), pair_rstd.data(), nullptr);
      qwen3::cuda::rope(bf16s(pair_y), positions_dev.data(), rows, heads, head_dim, theta, false,
                        bf16s(pair_y), nullptr);
      // y over x and dx over dy, as the model runs them.
      DeviceArray<uint16_t> dw_again(dw_start.bits);
      qwen3::cuda::qk_norm_rope_backward(bf16s(dy_dev), bf16s(x_dev), heads * head_dim,
                                         bf16s(w_dev), rstd.data(), positions_dev.data(), rows,
                                         heads, head_dim, theta, bf16s(dy_dev), heads * head_dim,
                                         bf16s(dw_again), workspace.data(), nullptr);
      qwen3::cuda::qk_norm_rope_forward(bf16s(x_dev), heads * head_dim, bf16s(w_dev),
                                        positions_dev.data(), rows, heads, head_dim, kEps, theta,
                                        bf16s(x_dev), rstd.data(), nullptr);
      return Outputs{{"y", bf16_to_floats(y.download())},
                     {"rstd", rstd.download()},
                     {"dx", bf16_to_floats(dx.download())},
                     {"dw", bf16_to_floats(dw.download())},
                     {"pair y", bf16_to_floats(pair_y.download())},
                     {"pair rstd", pair_rstd.download()},
                     {"dx in place", bf16_to_floats(dy_dev.download())},
                     {"dw in place", bf16_to_floats(dw_again.download())},
                     {"y in place", bf16_to_floats(x_dev.download())}};
    });
    const std::string name = " head_dim " + std::to_string(head_dim);
    expect_close("qk_norm_rope y" + name, ref_y, got.at("y"), kBf16Tolerance);
    expect_close("qk_norm_rope rstd" + name, ref_rstd, got.at("rstd"), kF32Tolerance);
    expect_close("qk_norm_rope dx" + name, ref_dx, got.at("dx"), kBf16Tolerance);
    expect_close("qk_norm_rope dw" + name, ref_dw, got.at("dw"), kBf16Tolerance);
    EXPECT_EQ(got.at("y"), got.at("pair y")) << name;
    EXPECT_EQ(got.at("rstd"), got.at("pair rstd")) << name;
    EXPECT_EQ(got.at("dx in place"), got.at("dx")) << name;
    EXPECT_EQ(got.at("dw in place"), got.at("dw")) << name;
    EXPECT_EQ(got.at("y in place"), got.at("y")) << name;
  }
}

// q's or k's heads read in place from the rows of the fused q/k/v projection (a row stride wider
// than the heads): the bits of the packed run, and the backward writes its gradient into those
// columns alone. 40 tokens × 4 heads, 2 heads' columns before them and 3 after in each row.
TEST(EmulatedQkNormRope, HeadsInAWiderRowGiveThePackedBits) {
  const int64_t rows = 40, heads = 4, before = 2, after = 3;
  const std::vector<int32_t> positions = rope_positions(rows);
  for (int64_t head_dim : {64, 128}) {
    const double theta = 1e6;
    const int64_t packed = heads * head_dim, width = (before + heads + after) * head_dim,
                  offset = before * head_dim;
    const Bf16Values wide = random_bf16(rows * width, 13, 3.0), w = random_bf16(head_dim, 14),
                     dy = random_bf16(rows * packed, 15), around = random_bf16(rows * width, 16);
    std::vector<uint16_t> x_bits(size_t(rows * packed));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < packed; ++c)
        x_bits[size_t(r * packed + c)] = wide.bits[size_t(r * width + offset + c)];
    const Outputs got = same_under_every_schedule([&] {
      DeviceArray<uint16_t> x_dev(x_bits), wide_dev(wide.bits), w_dev(w.bits), dy_dev(dy.bits);
      DeviceArray<int32_t> positions_dev(positions);
      DeviceArray<uint16_t> y = DeviceArray<uint16_t>::poisoned(rows * packed),
                            y_wide = DeviceArray<uint16_t>::poisoned(rows * packed),
                            dx = DeviceArray<uint16_t>::poisoned(rows * packed),
                            dx_wide(around.bits);
      DeviceArray<uint16_t> dw(std::vector<uint16_t>(size_t(head_dim), 0)),
          dw_wide(std::vector<uint16_t>(size_t(head_dim), 0));
      DeviceArray<float> rstd = DeviceArray<float>::poisoned(rows * heads),
                         rstd_wide = DeviceArray<float>::poisoned(rows * heads);
      DeviceArray<uint8_t> workspace = DeviceArray<uint8_t>::poisoned(
          qwen3::cuda::qk_norm_rope_backward_workspace_bytes(rows, heads, head_dim));
      qwen3::cuda::qk_norm_rope_forward(bf16s(x_dev), packed, bf16s(w_dev), positions_dev.data(),
                                        rows, heads, head_dim, kEps, theta, bf16s(y), rstd.data(),
                                        nullptr);
      qwen3::cuda::qk_norm_rope_forward(bf16s(wide_dev) + offset, width, bf16s(w_dev),
                                        positions_dev.data(), rows, heads, head_dim, kEps, theta,
                                        bf16s(y_wide), rstd_wide.data(), nullptr);
      qwen3::cuda::qk_norm_rope_backward(
          bf16s(dy_dev), bf16s(x_dev), packed, bf16s(w_dev), rstd.data(), positions_dev.data(),
          rows, heads, head_dim, theta, bf16s(dx), packed, bf16s(dw), workspace.data(), nullptr);
      qwen3::cuda::qk_norm_rope_backward(bf16s(dy_dev), bf16s(wide_dev) + offset, width,
                                         bf16s(w_dev), rstd.data(), positions_dev.data(), rows,
                                         heads, head_dim, theta, bf16s(dx_wide) + offset, width,
                                         bf16s(dw_wide), workspace.data(), nullptr);
      return Outputs{{"y", bf16_to_floats(y.download())},
                     {"y wide", bf16_to_floats(y_wide.download())},
                     {"rstd", rstd.download()},
                     {"rstd wide", rstd_wide.download()},
                     {"dx", bf16_to_floats(dx.download())},
                     {"dx wide", bf16_to_floats(dx_wide.download())},
                     {"dw", bf16_to_floats(dw.download())},
                     {"dw wide", bf16_to_floats(dw_wide.download())}};
    });
    const std::string name = " head_dim " + std::to_string(head_dim);
    EXPECT_EQ(got.at("y wide"), got.at("y")) << name;
    EXPECT_EQ(got.at("rstd wide"), got.at("rstd")) << name;
    EXPECT_EQ(got.at("dw wide"), got.at("dw")) << name;
    const std::vector<float>&dx = got.at("dx"), &dx_wide = got.at("dx wide");
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c) {
        const bool inside = c >= offset && c < offset + packed;
        const float want =
            inside ? dx[size_t(r * packed + c - offset)] : around.values[size_t(r * width + c)];
        ASSERT_EQ(dx_wide[size_t(r * width + c)], want)
            << name << ", row " << r << " column " << c << (inside ? "" : " (not dx's)");
      }
  }
}

}  // namespace
}  // namespace qwen3::emulator_test
