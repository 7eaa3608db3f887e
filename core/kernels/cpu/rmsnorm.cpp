#include "core/kernels/cpu/rmsnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/kernels/cpu/reduction.h"

namespace qwen3::cpu {

template <class T>
void rmsnorm_forward(const T* x, const T* w, int64_t rows, int64_t cols, T eps, T* y, T* rstd) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double sum_sq =
        0.0;  // double: the reference should be the most accurate party in a parity test
    for (int64_t c = 0; c < cols; ++c)
      sum_sq += double(xr[c]) * double(xr[c]);
    const T inv = T(1.0 / std::sqrt(sum_sq / double(cols) + double(eps)));
    rstd[r] = inv;
    for (int64_t c = 0; c < cols; ++c)
      yr[c] = w[c] * (xr[c] * inv);
  }
}

template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, int64_t rows,
                      int64_t cols, T* dx, bool accumulate_dx, T* dw) {
  // With x̂ = x·rstd and g = dy·w:  dx = rstd · (g − x̂ · mean(g·x̂)),  dw = Σ_rows dy·x̂.
  const int64_t blocks = reduction_blocks(rows);
  std::vector<T> partials(static_cast<size_t>(blocks * cols), T(0));
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    T* dw_block = partials.data() + b * cols;
    const int64_t r1 = std::min(rows, (b + 1) * kReductionBlockRows);
    for (int64_t r = b * kReductionBlockRows; r < r1; ++r) {
      const T* dyr = dy + r * cols;
      const T* xr = x + r * cols;
      T* dxr = dx + r * cols;
      const T inv = rstd[r];
      double dot = 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        const T xhat = xr[c] * inv;
        dot += double(dyr[c] * w[c]) * double(xhat);
        dw_block[c] += dyr[c] * xhat;
      }
      const T mean_dot = T(dot / double(cols));
      for (int64_t c = 0; c < cols; ++c) {
        const T grad = inv * (dyr[c] * w[c] - xr[c] * inv * mean_dot);
        dxr[c] = accumulate_dx ? dxr[c] + grad : grad;
      }
    }
  }
  add_block_partials(partials.data(), blocks, cols, dw);
}

template void rmsnorm_forward<float>(const float*, const float*, int64_t, int64_t, float, float*,
                                     float*);
template void rmsnorm_forward<double>(const double*, const double*, int64_t, int64_t, double,
                                      double*, double*);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*,
                                      int64_t, int64_t, float*, bool, float*);
template void rmsnorm_backward<double>(const double*, const double*, const double*, const double*,
                                       int64_t, int64_t, double*, bool, double*);

}  // namespace qwen3::cpu
