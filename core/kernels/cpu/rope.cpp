#include "core/kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace qwen3::cpu {

namespace {

// HF computes inv_freq = 1 / theta^(2i / head_dim) and the angle position · inv_freq in fp32, then
// cos and sin in fp32. Doing the same in T keeps fp32 runs within an ulp of HF's angles, which
// matters at 32K positions where the angle is large.
template <class T>
void rotate(const T* x, const int32_t* positions, int64_t rows, int64_t heads, int64_t head_dim,
            double theta, T sin_sign, T* y) {
  const int64_t half = head_dim / 2;
  std::vector<T> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = T(1) / std::pow(T(theta), T(2 * i) / T(head_dim));
#pragma omp parallel
  {
    std::vector<T> cos_row(static_cast<size_t>(half)), sin_row(static_cast<size_t>(half));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T pos = T(positions[r]);
      for (int64_t i = 0; i < half; ++i) {
        const T angle = pos * inv_freq[i];
        cos_row[i] = std::cos(angle);
        sin_row[i] = sin_sign * std::sin(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        const T* xr = x + (r * heads + h) * head_dim;
        T* yr = y + (r * heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const T a = xr[i], b = xr[i + half];
          yr[i] = a * cos_row[i] - b * sin_row[i];
          yr[i + half] = b * cos_row[i] + a * sin_row[i];
        }
      }
    }
  }
}

}  // namespace

template <class T>
void rope_forward(const T* x, const int32_t* positions, int64_t rows, int64_t heads,
                  int64_t head_dim, double theta, T* y) {
  rotate<T>(x, positions, rows, heads, head_dim, theta, T(1), y);
}

template <class T>
void rope_backward(const T* dy, const int32_t* positions, int64_t rows, int64_t heads,
                   int64_t head_dim, double theta, T* dx) {
  // A rotation's transpose is the rotation by −θ.
  rotate<T>(dy, positions, rows, heads, head_dim, theta, T(-1), dx);
}

template void rope_forward<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, double,
                                  float*);
template void rope_forward<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, double,
                                   double*);
template void rope_backward<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, double,
                                   float*);
template void rope_backward<double>(const double*, const int32_t*, int64_t, int64_t, int64_t,
                                    double, double*);

}  // namespace qwen3::cpu
