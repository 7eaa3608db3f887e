#include "core/kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>

namespace qwen3::cpu {

template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                           int32_t ignore_index, T* losses, T* lse) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * vocab;
    const T max_logit = *std::max_element(row, row + vocab);
    double sum = 0.0;
    for (int64_t v = 0; v < vocab; ++v)
      sum += std::exp(double(row[v] - max_logit));
    lse[r] = max_logit + T(std::log(sum));
    losses[r] = targets[r] == ignore_index ? T(0) : lse[r] - row[targets[r]];
  }
}

template <class T>
void cross_entropy_backward(const T* logits, const T* lse, const int32_t* targets, int64_t rows,
                            int64_t vocab, int32_t ignore_index, T scale, T* dlogits) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * vocab;
    T* drow = dlogits + r * vocab;
    if (targets[r] == ignore_index) {
      std::fill(drow, drow + vocab, T(0));
      continue;
    }
    for (int64_t v = 0; v < vocab; ++v)
      drow[v] = scale * std::exp(row[v] - lse[r]);
    drow[targets[r]] -= scale;
  }
}

template void cross_entropy_forward<float>(const float*, const int32_t*, int64_t, int64_t, int32_t,
                                           float*, float*);
template void cross_entropy_forward<double>(const double*, const int32_t*, int64_t, int64_t,
                                            int32_t, double*, double*);
template void cross_entropy_backward<float>(const float*, const float*, const int32_t*, int64_t,
                                            int64_t, int32_t, float, float*);
template void cross_entropy_backward<double>(const double*, const double*, const int32_t*, int64_t,
                                             int64_t, int32_t, double, double*);

}  // namespace qwen3::cpu
