#pragma once
// AdamW on this rank's fp32 shard of the master weights and moments.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/kernels/adamw_args.h"

namespace qwen3::cuda {

// master[n], m[n], v[n] fp32 updated in place from grad[n] (fp32, or bf16 when grad_bf16).
void adamw_update(float* master, const void* grad, bool grad_bf16, float* m, float* v, int64_t n,
                  const AdamWKernelArgs& args, cudaStream_t stream);

}  // namespace qwen3::cuda
