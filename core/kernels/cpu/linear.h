#pragma once
// Bias-free linear layer with HF's weight layout w[out, in]: y = x · wᵀ.
#include <cstdint>

namespace qwen3::cpu {

// x[rows, in], w[out, in] -> y[rows, out]
template <class T>
void linear_forward(const T* x, const T* w, int64_t rows, int64_t in, int64_t out, T* y);

// dy[rows, out]. dx[rows, in] = dy · w (added to dx when accumulate_dx; skipped when dx is null).
// dw[out, in] += dyᵀ · x.
template <class T>
void linear_backward(const T* dy, const T* x, const T* w, int64_t rows, int64_t in, int64_t out,
                     T* dx, bool accumulate_dx, T* dw);

}  // namespace qwen3::cpu
