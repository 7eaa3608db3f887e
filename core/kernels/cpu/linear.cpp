#include "core/kernels/cpu/linear.h"

#include "core/kernels/cpu/gemm.h"

namespace qwen3::cpu {

template <class T>
void linear_forward(const T* x, const T* w, int64_t rows, int64_t in, int64_t out, T* y) {
  gemm<T>(false, true, rows, out, in, T(1), x, in, w, in, T(0), y, out);
}

template <class T>
void linear_backward(const T* dy, const T* x, const T* w, int64_t rows, int64_t in, int64_t out,
                     T* dx, bool accumulate_dx, T* dw) {
  if (dx) gemm<T>(false, false, rows, in, out, T(1), dy, out, w, in, T(accumulate_dx), dx, in);
  gemm<T>(true, false, out, in, rows, T(1), dy, out, x, in, T(1), dw, in);
}

template void linear_forward<float>(const float*, const float*, int64_t, int64_t, int64_t, float*);
template void linear_forward<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                     double*);
template void linear_backward<float>(const float*, const float*, const float*, int64_t, int64_t,
                                     int64_t, float*, bool, float*);
template void linear_backward<double>(const double*, const double*, const double*, int64_t, int64_t,
                                      int64_t, double*, bool, double*);

}  // namespace qwen3::cpu
