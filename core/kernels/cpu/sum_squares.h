#pragma once
// Σ x² (the building block of the global gradient norm) and Σ x (the loss total). Accumulated in
// double over fixed blocks of elements, the block partials added in block order: the result does
// not depend on the number of threads.
#include <cstdint>

namespace qwen3::cpu {

double sum_squares(const float* x, int64_t n);
double sum(const float* x, int64_t n);

}  // namespace qwen3::cpu
