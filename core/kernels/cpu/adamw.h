#pragma once
// AdamW on fp32 master weights; the formula and its scalars are in core/kernels/adamw_args.h.
#include <cstdint>

#include "core/kernels/adamw_args.h"

namespace qwen3::cpu {

// master[n], m[n], v[n] updated in place from grad[n].
void adamw_update(float* master, const float* grad, float* m, float* v, int64_t n,
                  const AdamWKernelArgs& args);

}  // namespace qwen3::cpu
