#include "core/kernels/cpu/sum_squares.h"

#include <cstddef>
#include <vector>

namespace qwen3::cpu {

// 64 Ki elements per block: a few hundred partials for a 0.6B-parameter shard, each block long
// enough that the loop, not the scheduling, dominates.
constexpr int64_t kSumSquaresBlock = 1 << 16;

namespace {

template <bool kSquare>
double blocked_sum(const float* x, int64_t n) {
  const int64_t blocks = (n + kSumSquaresBlock - 1) / kSumSquaresBlock;
  std::vector<double> partials(static_cast<size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kSumSquaresBlock;
    const int64_t end = begin + kSumSquaresBlock < n ? begin + kSumSquaresBlock : n;
    double sum = 0.0;
    for (int64_t i = begin; i < end; ++i)
      sum += kSquare ? double(x[i]) * double(x[i]) : double(x[i]);
    partials[static_cast<size_t>(b)] = sum;
  }
  double total = 0.0;
  for (double p : partials)
    total += p;
  return total;
}

}  // namespace

double sum_squares(const float* x, int64_t n) {
  return blocked_sum<true>(x, n);
}

double sum(const float* x, int64_t n) {
  return blocked_sum<false>(x, n);
}

}  // namespace qwen3::cpu
