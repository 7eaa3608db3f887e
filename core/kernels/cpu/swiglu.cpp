#include "core/kernels/cpu/swiglu.h"

#include <cmath>

namespace qwen3::cpu {

template <class T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* h) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T sigmoid = T(1) / (T(1) + std::exp(-gate[i]));
    h[i] = gate[i] * sigmoid * up[i];
  }
}

template <class T>
void swiglu_backward(const T* dh, const T* gate, const T* up, int64_t n, T* dgate, T* dup) {
  // silu'(x) = σ(x) · (1 + x · (1 − σ(x)))
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T x = gate[i];
    const T sigmoid = T(1) / (T(1) + std::exp(-x));
    const T silu = x * sigmoid;
    const T up_i = up[i];
    dgate[i] = dh[i] * up_i * sigmoid * (T(1) + x * (T(1) - sigmoid));
    dup[i] = dh[i] * silu;
  }
}

template void swiglu_forward<float>(const float*, const float*, int64_t, float*);
template void swiglu_forward<double>(const double*, const double*, int64_t, double*);
template void swiglu_backward<float>(const float*, const float*, const float*, int64_t, float*,
                                     float*);
template void swiglu_backward<double>(const double*, const double*, const double*, int64_t, double*,
                                      double*);

}  // namespace qwen3::cpu
