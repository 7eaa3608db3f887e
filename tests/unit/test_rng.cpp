// The counter-based generator behind initialisation and test data.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/util/rng.h"

namespace {

TEST(Rng, NormalHasRequestedMomentsAndIsReproducible) {
  const int64_t n = 200000;
  std::vector<float> a(n), b(n);
  qwen3::fill_normal(a.data(), n, 0.0, 0.02, 5, 3);
  qwen3::fill_normal(b.data(), n, 0.0, 0.02, 5, 3);
  EXPECT_EQ(a, b);
  double mean = 0, var = 0;
  for (float x : a)
    mean += x;
  mean /= n;
  for (float x : a)
    var += (x - mean) * (x - mean);
  const double stddev = std::sqrt(var / n);
  EXPECT_NEAR(mean, 0.0, 5 * 0.02 / std::sqrt(double(n)));  // 5 standard errors
  EXPECT_NEAR(stddev, 0.02, 0.02 * 0.01);
}

TEST(Rng, StreamsAndSeedsDiffer) {
  std::vector<float> a(64), b(64), c(64);
  qwen3::fill_normal(a.data(), 64, 0, 1, 5, 3);
  qwen3::fill_normal(b.data(), 64, 0, 1, 5, 4);
  qwen3::fill_normal(c.data(), 64, 0, 1, 6, 3);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

TEST(Rng, PrefixDoesNotDependOnLength) {
  std::vector<float> shorter(33), longer(100);
  qwen3::fill_normal(shorter.data(), 33, 0, 1, 9, 1);
  qwen3::fill_normal(longer.data(), 100, 0, 1, 9, 1);
  for (int i = 0; i < 33; ++i)
    EXPECT_EQ(shorter[i], longer[i]) << i;
}

}  // namespace
