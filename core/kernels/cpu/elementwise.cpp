#include "core/kernels/cpu/elementwise.h"

namespace qwen3::cpu {

template <class T>
void add_forward(const T* a, const T* b, int64_t n, T* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

template void add_forward<float>(const float*, const float*, int64_t, float*);
template void add_forward<double>(const double*, const double*, int64_t, double*);

}  // namespace qwen3::cpu
