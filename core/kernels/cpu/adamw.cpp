#include "core/kernels/cpu/adamw.h"

#include <cmath>

namespace qwen3::cpu {

void adamw_update(float* master, const float* grad, float* m, float* v, int64_t n,
                  const AdamWKernelArgs& a) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * a.grad_scale;
    float w = master[i] * a.decay_factor;
    // PyTorch writes the first moment as a lerp towards g: m + (1 − β1)(g − m).
    const float mi = m[i] + a.one_minus_beta1 * (g - m[i]);
    const float vi = v[i] * a.beta2 + a.one_minus_beta2 * g * g;
    const float denom = std::sqrt(vi) / a.bias_correction2_sqrt + a.eps;
    w -= a.step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
    master[i] = w;
  }
}

}  // namespace qwen3::cpu
