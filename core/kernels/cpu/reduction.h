#pragma once
// Sums over rows (weight gradients of norms) are taken in fixed blocks of rows, each block summed
// in row order, then the block partials summed in block order. The result depends only on the
// data, not on the number of threads, so runs are reproducible on any machine size.
#include <cstdint>

namespace qwen3::cpu {

// 64 rows per block: few enough partials to keep the scratch small, enough blocks to balance.
constexpr int64_t kReductionBlockRows = 64;

inline int64_t reduction_blocks(int64_t rows) {
  return (rows + kReductionBlockRows - 1) / kReductionBlockRows;
}

// out[c] += sum over blocks b of partials[b * cols + c], in block order.
template <class T>
void add_block_partials(const T* partials, int64_t blocks, int64_t cols, T* out) {
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cols; ++c) {
    T sum = T(0);
    for (int64_t b = 0; b < blocks; ++b)
      sum += partials[b * cols + c];
    out[c] += sum;
  }
}

}  // namespace qwen3::cpu
