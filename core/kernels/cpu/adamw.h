#pragma once
// AdamW with decoupled weight decay (Loshchilov & Hutter), in PyTorch's order of operations so
// that a step matches torch.optim.AdamW to fp32 rounding:
//   w ← w · (1 − lr·wd)
//   m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
//   w ← w − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
// g is the raw gradient times grad_scale (the clipping coefficient).
#include <cstdint>

namespace qwen3::cpu {

// Scalars computed once per step in double by the caller and rounded to fp32, as PyTorch does.
struct AdamWKernelArgs {
  float decay_factor = 1;           // 1 − lr·wd
  float one_minus_beta1 = 0;        // 1 − β1
  float beta2 = 0;                  // β2
  float one_minus_beta2 = 0;        // 1 − β2
  float step_size = 0;              // lr / (1 − β1ᵗ)
  float bias_correction2_sqrt = 1;  // √(1 − β2ᵗ)
  float eps = 0;
  float grad_scale = 1;
};

// master[n], m[n], v[n] updated in place from grad[n].
void adamw_update(float* master, const float* grad, float* m, float* v, int64_t n,
                  const AdamWKernelArgs& args);

}  // namespace qwen3::cpu
