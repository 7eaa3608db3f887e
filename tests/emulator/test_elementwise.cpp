// The elementwise and optimizer kernels (elementwise.cu, swiglu.cu, adamw.cu, sum_squares.cu)
// under the emulator, through their launchers, against the CPU reference kernels on the same
// bf16-rounded inputs. Each runs under every schedule and must give the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/kernels/adamw_args.h"
#include "core/kernels/cpu/adamw.h"
#include "core/kernels/cpu/elementwise.h"
#include "core/kernels/cpu/sum_squares.h"
#include "core/kernels/cpu/swiglu.h"
#include "core/kernels/cuda/elementwise.h"
#include "core/kernels/cuda/adamw.h"
#include "core/kernels/cuda/sum_squares.h"
#include "core/kernels/cuda/swiglu.h"
#include "core/tensor/bf16.h"
#include "tests/emulator/kernel_test_support.h"

namespace qwen3::emulator_test {
namespace {

// Where the kernel does exactly the reference's fp32 operations (a copy, a conversion, one add,
// AdamW's sequence: the emulated build fuses no multiply-adds), the bits must match.
constexpr double kExact = 0.0;

// Odd, and more than one block of 256 threads.
constexpr int64_t kN = 5003;

std::vector<float> round_all_to_bf16(const std::vector<float>& values) {
  return round_to_bf16(values).values;
}

TEST(EmulatedElementwise, AddAndAddInPlace) {
  const Bf16Values a = random_bf16(kN, 1), b = random_bf16(kN, 2);
  std::vector<float> ref(kN);
  qwen3::cpu::add_forward<float>(a.values.data(), b.values.data(), kN, ref.data());
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<uint16_t> a_dev(a.bits), b_dev(b.bits), out = DeviceArray<uint16_t>::poisoned(kN);
    qwen3::cuda::add(bf16s(a_dev), bf16s(b_dev), kN, bf16s(out), nullptr);
    qwen3::cuda::add(bf16s(a_dev), bf16s(b_dev), kN, bf16s(a_dev), nullptr);
    return Outputs{{"out", bf16_to_floats(out.download())},
                   {"in place", bf16_to_floats(a_dev.download())}};
  });
  // One fp32 add rounded once to bf16, as the rounded reference.
  expect_close("add", round_all_to_bf16(ref), got.at("out"), kExact);
  EXPECT_EQ(got.at("in place"), got.at("out"));
}

// A block of columns between rows of different widths: 5 rows, 3 columns from column 4 of rows 11
// wide into column 2 of rows 7 wide; every other element of dst keeps its value.
TEST(EmulatedElementwise, CopyColumnsMovesOnlyTheirBlock) {
  const int64_t rows = 5, cols = 3, src_stride = 11, dst_stride = 7, src_col = 4, dst_col = 2;
  std::vector<uint16_t> src(size_t(rows * src_stride)), dst(size_t(rows * dst_stride));
  for (size_t i = 0; i < src.size(); ++i)
    src[i] = static_cast<uint16_t>(1000 + i);
  for (size_t i = 0; i < dst.size(); ++i)
    dst[i] = static_cast<uint16_t>(50000 + i);
  std::vector<uint16_t> want = dst;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      want[size_t(r * dst_stride + dst_col + c)] =
          static_cast<uint16_t>(1000 + r * src_stride + src_col + c);
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<uint16_t> src_dev(src), dst_dev(dst);
    qwen3::cuda::copy_columns(bf16s(src_dev) + src_col, src_stride, rows, cols,
                              bf16s(dst_dev) + dst_col, dst_stride, nullptr);
    return Outputs{{"dst", bf16_to_floats(dst_dev.download())}};
  });
  EXPECT_EQ(got.at("dst"), bf16_to_floats(want));
}

TEST(EmulatedElementwise, ConvertBetweenFp32AndBf16) {
  const std::vector<float> floats = normal_values(kN, 3, 10.0);
  const Bf16Values rounded = round_to_bf16(floats);
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<float> f32(floats), f32_out = DeviceArray<float>::poisoned(kN),
                                    f32_copy = DeviceArray<float>::poisoned(kN);
    DeviceArray<uint16_t> bf16(rounded.bits), bf16_out = DeviceArray<uint16_t>::poisoned(kN),
                                              bf16_copy = DeviceArray<uint16_t>::poisoned(kN);
    qwen3::cuda::convert(f32.data(), false, kN, bf16_out.data(), true, nullptr);
    qwen3::cuda::convert(bf16.data(), true, kN, f32_out.data(), false, nullptr);
    qwen3::cuda::convert(f32.data(), false, kN, f32_copy.data(), false, nullptr);
    qwen3::cuda::convert(bf16.data(), true, kN, bf16_copy.data(), true, nullptr);
    return Outputs{{"to bf16", bf16_to_floats(bf16_out.download())},
                   {"to fp32", f32_out.download()},
                   {"fp32 copy", f32_copy.download()},
                   {"bf16 copy", bf16_to_floats(bf16_copy.download())}};
  });
  expect_close("convert fp32 -> bf16", rounded.values, got.at("to bf16"), kExact);
  expect_close("convert bf16 -> fp32", rounded.values, got.at("to fp32"), kExact);
  expect_close("convert fp32 -> fp32", floats, got.at("fp32 copy"), kExact);
  expect_close("convert bf16 -> bf16", rounded.values, got.at("bf16 copy"), kExact);
}

TEST(EmulatedElementwise, AccumulateFp32AndBf16) {
  const std::vector<float> sums = normal_values(kN, 4), f32_src = normal_values(kN, 5);
  const Bf16Values bf16_src = random_bf16(kN, 6);
  std::vector<float> ref_f32(kN), ref_bf16(kN);
  qwen3::cpu::add_forward<float>(sums.data(), f32_src.data(), kN, ref_f32.data());
  qwen3::cpu::add_forward<float>(sums.data(), bf16_src.values.data(), kN, ref_bf16.data());
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<float> from_f32(sums), from_bf16(sums), src(f32_src);
    DeviceArray<uint16_t> src_bf16(bf16_src.bits);
    qwen3::cuda::accumulate(src.data(), false, kN, from_f32.data(), nullptr);
    qwen3::cuda::accumulate(src_bf16.data(), true, kN, from_bf16.data(), nullptr);
    return Outputs{{"fp32", from_f32.download()}, {"bf16", from_bf16.download()}};
  });
  expect_close("accumulate fp32", ref_f32, got.at("fp32"), kExact);
  expect_close("accumulate bf16", ref_bf16, got.at("bf16"), kExact);
}

// Rows of [gate | up] side by side (stride 2 · cols), as the model keeps them; 37 columns, so rows
// do not line up with the grid's strides. The backward in place over its input too.
TEST(EmulatedElementwise, SwigluForwardBackwardAndInPlace) {
  const int64_t rows = kN / 37, cols = 37, n = rows * cols;
  const Bf16Values gate_up = random_bf16(2 * n, 7, 2.0), dh = random_bf16(n, 9);
  std::vector<float> ref_h(n), ref_d(2 * n);
  const float* g = gate_up.values.data();
  qwen3::cpu::swiglu_forward<float>(g, g + cols, rows, cols, 2 * cols, ref_h.data());
  qwen3::cpu::swiglu_backward<float>(dh.values.data(), g, g + cols, rows, cols, 2 * cols,
                                     ref_d.data(), ref_d.data() + cols);
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<uint16_t> gu(gate_up.bits), d(dh.bits);
    DeviceArray<uint16_t> h = DeviceArray<uint16_t>::poisoned(n),
                          d_gu = DeviceArray<uint16_t>::poisoned(2 * n);
    qwen3::cuda::swiglu_forward(bf16s(gu), bf16s(gu) + cols, rows, cols, 2 * cols, bf16s(h),
                                nullptr);
    qwen3::cuda::swiglu_backward(bf16s(d), bf16s(gu), bf16s(gu) + cols, rows, cols, 2 * cols,
                                 bf16s(d_gu), bf16s(d_gu) + cols, nullptr);
    DeviceArray<uint16_t> in_place(gate_up.bits);
    qwen3::cuda::swiglu_backward(bf16s(d), bf16s(in_place), bf16s(in_place) + cols, rows, cols,
                                 2 * cols, bf16s(in_place), bf16s(in_place) + cols, nullptr);
    return Outputs{{"h", bf16_to_floats(h.download())},
                   {"d_gate_up", bf16_to_floats(d_gu.download())},
                   {"d_gate_up in place", bf16_to_floats(in_place.download())}};
  });
  expect_close("swiglu h", ref_h, got.at("h"), kBf16Tolerance);
  expect_close("swiglu d_gate_up", ref_d, got.at("d_gate_up"), kBf16Tolerance);
  EXPECT_EQ(got.at("d_gate_up in place"), got.at("d_gate_up"));
}

TEST(EmulatedOptimizer, AdamwWithFp32AndBf16Gradients) {
  const int64_t n = 3001;
  const std::vector<float> master = normal_values(n, 10), m = normal_values(n, 11, 0.01);
  std::vector<float> v = normal_values(n, 12, 0.001);
  for (float& x : v)
    x = x * x;  // second moments are not negative
  const std::vector<float> grad_f32 = normal_values(n, 13, 0.1);
  const Bf16Values grad_bf16 = random_bf16(n, 14, 0.1);
  const qwen3::AdamWKernelArgs args = qwen3::make_adamw_args(1e-3, 0.9, 0.95, 1e-8, 0.1, 0.5, 7);
  for (bool bf16_grad : {false, true}) {
    const std::vector<float>& grad = bf16_grad ? grad_bf16.values : grad_f32;
    std::vector<float> ref_master = master, ref_m = m, ref_v = v;
    qwen3::cpu::adamw_update(ref_master.data(), grad.data(), ref_m.data(), ref_v.data(), n, args);
    const Outputs got = same_under_every_schedule([&] {
      DeviceArray<float> master_dev(master), m_dev(m), v_dev(v), g32(grad_f32);
      DeviceArray<uint16_t> g16(grad_bf16.bits);
      const void* g = bf16_grad ? static_cast<const void*>(g16.data()) : g32.data();
      qwen3::cuda::adamw_update(master_dev.data(), g, bf16_grad, m_dev.data(), v_dev.data(), n,
                                args, nullptr);
      return Outputs{
          {"master", master_dev.download()}, {"m", m_dev.download()}, {"v", v_dev.download()}};
    });
    const std::string grad_name = bf16_grad ? " (bf16 grad)" : " (fp32 grad)";
    expect_close("adamw master" + grad_name, ref_master, got.at("master"), kExact);
    expect_close("adamw m" + grad_name, ref_m, got.at("m"), kExact);
    expect_close("adamw v" + grad_name, ref_v, got.at("v"), kExact);
  }
}

// Σ x² in double: against the reference's double sum, which adds in another order.
double emulated_sum_squares(const void* x, bool x_bf16, int64_t n) {
  DeviceArray<uint8_t> workspace =
      DeviceArray<uint8_t>::poisoned(qwen3::cuda::sum_squares_workspace_bytes());
  DeviceArray<double> result = DeviceArray<double>::poisoned(1);
  qwen3::cuda::sum_squares(x, x_bf16, n, result.data(), workspace.data(), nullptr);
  return result.download()[0];
}

TEST(EmulatedOptimizer, SumSquares) {
  // 300,001 elements: more than the fixed grid's 1,024 × 256 threads, so the grid-stride loop
  // takes a second turn; and the empty and tiny cases.
  for (int64_t n : {int64_t(300001), int64_t(5), int64_t(0)}) {
    const std::vector<float> f32 = normal_values(n, 15);
    const Bf16Values bf16 = random_bf16(n, 16);
    const double ref_f32 = qwen3::cpu::sum_squares(f32.data(), n);
    const double ref_bf16 = qwen3::cpu::sum_squares(bf16.values.data(), n);
    DeviceArray<float> f32_dev(f32);
    DeviceArray<uint16_t> bf16_dev(bf16.bits);
    const double got_f32 = emulated_sum_squares(f32_dev.data(), false, n);
    const double got_bf16 = emulated_sum_squares(bf16_dev.data(), true, n);
    std::printf("[ emulated ] sum_squares n=%lld: relative error %.3g (fp32), %.3g (bf16)\n",
                static_cast<long long>(n), n ? std::abs(got_f32 - ref_f32) / ref_f32 : 0.0,
                n ? std::abs(got_bf16 - ref_bf16) / ref_bf16 : 0.0);
    EXPECT_NEAR(got_f32, ref_f32, 1e-12 * ref_f32) << n;
    EXPECT_NEAR(got_bf16, ref_bf16, 1e-12 * ref_bf16) << n;
  }
}

// The loss total: Σ x added onto a running double, twice, as two micro-batches do.
TEST(EmulatedOptimizer, SumIntoAccumulates) {
  const int64_t n = 300001;
  const std::vector<float> first = normal_values(n, 18, 3.0), second = normal_values(n, 19, 3.0);
  const double ref = 0.5 + qwen3::cpu::sum(first.data(), n) + qwen3::cpu::sum(second.data(), n);
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<float> first_dev(first), second_dev(second);
    DeviceArray<double> total(std::vector<double>{0.5});
    DeviceArray<uint8_t> workspace =
        DeviceArray<uint8_t>::poisoned(qwen3::cuda::sum_squares_workspace_bytes());
    qwen3::cuda::sum_into(first_dev.data(), n, total.data(), workspace.data(), nullptr);
    qwen3::cuda::sum_into(second_dev.data(), n, total.data(), workspace.data(), nullptr);
    const double value = total.download()[0];
    // As two floats, so that the comparison of schedules sees 48 of the double's 53 bits.
    const float high = static_cast<float>(value);
    return Outputs{{"total", {high, static_cast<float>(value - double(high))}}};
  });
  const double value = double(got.at("total")[0]) + double(got.at("total")[1]);
  std::printf("[ emulated ] sum_into n=%lld: relative error %.3g\n", static_cast<long long>(n),
              std::abs(value - ref) / std::abs(ref));
  EXPECT_NEAR(value, ref, 1e-9 * std::abs(ref));
}

TEST(EmulatedOptimizer, SumSquaresIsTheSameUnderEverySchedule) {
  const int64_t n = 70001;
  const Bf16Values x = random_bf16(n, 17);
  same_under_every_schedule([&] {
    DeviceArray<uint16_t> x_dev(x.bits);
    return Outputs{{"sum", {static_cast<float>(emulated_sum_squares(x_dev.data(), true, n))}}};
  });
}

}  // namespace
}  // namespace qwen3::emulator_test
