#include "core/kernels/cpu/qk_norm_rope.h"

#include <cstddef>
#include <vector>

#include "core/kernels/cpu/rmsnorm.h"
#include "core/kernels/cpu/rope.h"

namespace qwen3::cpu {

namespace {

// dst[r, 0:cols] = src[r, 0:cols], rows src_stride and dst_stride elements apart.
template <class T>
void copy_columns(const T* src, int64_t src_stride, int64_t rows, int64_t cols, T* dst,
                  int64_t dst_stride) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      dst[r * dst_stride + c] = src[r * src_stride + c];
}

}  // namespace

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

// The fused projection's parts are copied out and the packed op runs on them in place.
template <class T>
void qkv_norm_rope_forward(const T* qkv, const T* q_w, const T* k_w, const int32_t* positions,
                           int64_t rows, int64_t q_heads, int64_t kv_heads, int64_t head_dim, T eps,
                           double theta, T* q, T* k, T* v, T* q_rstd, T* k_rstd) {
  const int64_t width = (q_heads + 2 * kv_heads) * head_dim, q_cols = q_heads * head_dim,
                kv_cols = kv_heads * head_dim;
  copy_columns(qkv, width, rows, q_cols, q, q_cols);
  copy_columns(qkv + q_cols, width, rows, kv_cols, k, kv_cols);
  copy_columns(qkv + q_cols + kv_cols, width, rows, kv_cols, v, kv_cols);
  qk_norm_rope_forward(q, q_w, positions, rows, q_heads, head_dim, eps, theta, q, q_rstd);
  qk_norm_rope_forward(k, k_w, positions, rows, kv_heads, head_dim, eps, theta, k, k_rstd);
}

template <class T>
void qkv_norm_rope_backward(const T* dq, const T* dk, const T* dv, const T* qkv, const T* q_w,
                            const T* k_w, const T* q_rstd, const T* k_rstd,
                            const int32_t* positions, int64_t rows, int64_t q_heads,
                            int64_t kv_heads, int64_t head_dim, double theta, T* d_qkv, T* dq_w,
                            T* dk_w) {
  const int64_t width = (q_heads + 2 * kv_heads) * head_dim, q_cols = q_heads * head_dim,
                kv_cols = kv_heads * head_dim;
  // One part at a time: its input copied out, its gradient made packed, then put in place.
  const auto part = [&](const T* dy, int64_t offset, int64_t heads, const T* w, const T* rstd,
                        T* dw) {
    const int64_t cols = heads * head_dim;
    std::vector<T> x(static_cast<size_t>(rows * cols)), dx(x.size());
    copy_columns(qkv + offset, width, rows, cols, x.data(), cols);
    qk_norm_rope_backward(dy, x.data(), w, rstd, positions, rows, heads, head_dim, theta, dx.data(),
                          dw);
    copy_columns(dx.data(), cols, rows, cols, d_qkv + offset, width);
  };
  part(dq, 0, q_heads, q_w, q_rstd, dq_w);
  part(dk, q_cols, kv_heads, k_w, k_rstd, dk_w);
  copy_columns(dv, kv_cols, rows, kv_cols, d_qkv + q_cols + kv_cols, width);
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

template void qkv_norm_rope_forward<float>(const float*, const float*, const float*, const int32_t*,
                                           int64_t, int64_t, int64_t, int64_t, float, double,
                                           float*, float*, float*, float*, float*);
template void qkv_norm_rope_backward<float>(const float*, const float*, const float*, const float*,
                                            const float*, const float*, const float*, const float*,
                                            const int32_t*, int64_t, int64_t, int64_t, int64_t,
                                            double, float*, float*, float*);

}  // namespace qwen3::cpu
