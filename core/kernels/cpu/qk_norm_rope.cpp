#include "core/kernels/cpu/qk_norm_rope.h"

#include "core/kernels/cpu/rmsnorm.h"
#include "core/kernels/cpu/rope.h"

namespace qwen3::cpu {

// The reference is the two ops in sequence: norm rows are (row, head) pairs of head_dim values.
template <class T>
void qk_norm_rope_forward(const T* x, const T* w, const int32_t* positions, int64_t rows,
                          int64_t heads, int64_t head_dim, T eps, double theta, T* y, T* rstd) {
  rmsnorm_forward(x, w, rows * heads, head_dim, eps, y, rstd);
  rope_forward(y, positions, rows, heads, head_dim, theta, y);
}

// The rotation's transpose takes dy back to the norm's output; rmsnorm_backward then runs in place
// on it (it reads a row of its dy before writing that row of dx).
template <class T>
void qk_norm_rope_backward(const T* dy, const T* x, const T* w, const T* rstd,
                           const int32_t* positions, int64_t rows, int64_t heads, int64_t head_dim,
                           double theta, T* dx, T* dw) {
  rope_backward(dy, positions, rows, heads, head_dim, theta, dx);
  rmsnorm_backward(dx, x, w, rstd, rows * heads, head_dim, dx, false, dw);
}

template void qk_norm_rope_forward<float>(const float*, const float*, const int32_t*, int64_t,
                                          int64_t, int64_t, float, double, float*, float*);
template void qk_norm_rope_forward<double>(const double*, const double*, const int32_t*, int64_t,
                                           int64_t, int64_t, double, double, double*, double*);
template void qk_norm_rope_backward<float>(const float*, const float*, const float*, const float*,
                                           const int32_t*, int64_t, int64_t, int64_t, double,
                                           float*, float*);
template void qk_norm_rope_backward<double>(const double*, const double*, const double*,
                                            const double*, const int32_t*, int64_t, int64_t,
                                            int64_t, double, double*, double*);

}  // namespace qwen3::cpu
