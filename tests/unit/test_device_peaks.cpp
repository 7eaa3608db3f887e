// MFU's two halves: the peak table against NVIDIA's datasheet figures, by the names the driver
// reports, and the FLOPs counted per token (6N + 12·L·H·hd·S) against Qwen3-0.6B's counted by hand.
#include <gtest/gtest.h>

#include "core/cuda/device_peaks.h"
#include "core/model/config.h"
#include "trainer/metrics.h"

namespace {

using qwen3::cuda::device_peaks;

double tflops(const char* name) {
  const auto peaks = device_peaks(name);
  return peaks ? peaks->bf16_dense_flops / 1e12 : -1.0;
}

TEST(DevicePeaks, HopperPartsSharingSm90AreTold) {
  EXPECT_DOUBLE_EQ(tflops("NVIDIA H100 80GB HBM3"), 989.4);  // SXM
  EXPECT_DOUBLE_EQ(tflops("NVIDIA H100 PCIe"), 756.0);
  EXPECT_DOUBLE_EQ(tflops("NVIDIA H100 NVL"), 835.0);
  EXPECT_DOUBLE_EQ(tflops("NVIDIA H200"), 989.4);
  EXPECT_DOUBLE_EQ(tflops("NVIDIA H200 NVL"), 835.0);
  EXPECT_DOUBLE_EQ(tflops("NVIDIA GH200 480GB"), 989.4);
  EXPECT_DOUBLE_EQ(tflops("NVIDIA H20"), 148.0);
}

TEST(DevicePeaks, AmpereAndAdaParts) {
  EXPECT_DOUBLE_EQ(tflops("NVIDIA A100-SXM4-80GB"), 312.0);
  EXPECT_DOUBLE_EQ(tflops("NVIDIA A100-PCIE-40GB"), 312.0);
  EXPECT_DOUBLE_EQ(tflops("NVIDIA L40S"), 362.05);
  EXPECT_DOUBLE_EQ(tflops("NVIDIA L4"), 121.0);
}

TEST(DevicePeaks, BandwidthFollowsTheMemoryNotTheChip) {
  EXPECT_DOUBLE_EQ(device_peaks("NVIDIA H200")->memory_bytes_per_s, 4.8e12);
  EXPECT_DOUBLE_EQ(device_peaks("NVIDIA H100 80GB HBM3")->memory_bytes_per_s, 3.35e12);
  EXPECT_DOUBLE_EQ(device_peaks("NVIDIA A100-SXM4-40GB")->memory_bytes_per_s, 1.555e12);
  EXPECT_DOUBLE_EQ(device_peaks("NVIDIA A100 80GB PCIe")->memory_bytes_per_s, 1.935e12);
}

TEST(DevicePeaks, NamesAreMatchedAsWholeWordsIgnoringCase) {
  EXPECT_EQ(device_peaks("NVIDIA L40S")->part, "L40S");      // not the L4
  EXPECT_EQ(device_peaks("NVIDIA H200")->part, "H200 SXM");  // not the H20
  EXPECT_EQ(device_peaks("nvidia h100 pcie")->part, "H100 PCIe");
}

TEST(DevicePeaks, UnknownDevicesHaveNoPeak) {
  EXPECT_FALSE(device_peaks("NVIDIA GeForce GTX 1080").has_value());
  EXPECT_FALSE(device_peaks("").has_value());
  EXPECT_FALSE(device_peaks("cpu").has_value());
}

TEST(MfuFlops, Qwen3SixTenthsOfABillionAtFourThousandTokens) {
  const qwen3::ModelConfig config =
      qwen3::load_model_config(QWEN3_SOURCE_DIR "/configs/models/qwen3-0.6b.yaml");
  // Matrix weights: 596,049,920 parameters less the norms (28 · (2 · 1024 + 2 · 128) + 1024).
  const double matmul = 596049920.0 - (28.0 * (2 * 1024 + 2 * 128) + 1024);
  const double attention = 12.0 * 28 * 16 * 128 * 4096;
  EXPECT_DOUBLE_EQ(qwen3::train_flops_per_token(config, 4096), 6 * matmul + attention);
  EXPECT_DOUBLE_EQ(
      qwen3::train_flops_per_token(config, 32768) - qwen3::train_flops_per_token(config, 4096),
      12.0 * 28 * 16 * 128 * (32768 - 4096));
}

}  // namespace
