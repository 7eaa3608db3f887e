#include "core/kernels/cpu/swiglu.h"

#include <cmath>

namespace qwen3::cpu {

template <class T>
void swiglu_forward(const T* gate, const T* up, int64_t rows, int64_t cols, int64_t stride, T* h) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const T g = gate[r * stride + c];
      const T sigmoid = T(1) / (T(1) + std::exp(-g));
      h[r * cols + c] = g * sigmoid * up[r * stride + c];
    }
}

template <class T>
void swiglu_backward(const T* dh, const T* gate, const T* up, int64_t rows, int64_t cols,
                     int64_t stride, T* dgate, T* dup) {
  // silu'(x) = σ(x) · (1 + x · (1 − σ(x)))
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * stride + c;
      const T x = gate[i], up_i = up[i], d = dh[r * cols + c];
      const T sigmoid = T(1) / (T(1) + std::exp(-x));
      dgate[i] = d * up_i * sigmoid * (T(1) + x * (T(1) - sigmoid));
      dup[i] = d * (x * sigmoid);
    }
}

template void swiglu_forward<float>(const float*, const float*, int64_t, int64_t, int64_t, float*);
template void swiglu_forward<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                     double*);
template void swiglu_backward<float>(const float*, const float*, const float*, int64_t, int64_t,
                                     int64_t, float*, float*);
template void swiglu_backward<double>(const double*, const double*, const double*, int64_t, int64_t,
                                      int64_t, double*, double*);

}  // namespace qwen3::cpu
