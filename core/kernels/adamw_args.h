#pragma once
// AdamW's per-step scalars, shared by the CPU and CUDA kernels so both backends round them alike.
// AdamW with decoupled weight decay (Loshchilov & Hutter), in PyTorch's order of operations so
// that a step matches torch.optim.AdamW to fp32 rounding:
//   w ← w · (1 − lr·wd)
//   m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
//   w ← w − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
// g is the raw gradient times grad_scale (the clipping coefficient).
#include <cmath>
#include <cstdint>

namespace qwen3 {

// Scalars computed once per step in double and rounded to fp32, as PyTorch does.
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

inline AdamWKernelArgs make_adamw_args(double lr, double beta1, double beta2, double eps,
                                       double weight_decay, double grad_scale, int64_t step) {
  AdamWKernelArgs args;
  args.decay_factor = static_cast<float>(1.0 - lr * weight_decay);
  args.one_minus_beta1 = static_cast<float>(1.0 - beta1);
  args.beta2 = static_cast<float>(beta2);
  args.one_minus_beta2 = static_cast<float>(1.0 - beta2);
  const double t = static_cast<double>(step);
  args.step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, t)));
  args.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, t)));
  args.eps = static_cast<float>(eps);
  args.grad_scale = static_cast<float>(grad_scale);
  return args;
}

}  // namespace qwen3
