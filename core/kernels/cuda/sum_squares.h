#pragma once
// Deterministic sums on the device: Σ x² for the gradient norm, and the loss total.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace qwen3::cuda {

size_t sum_squares_workspace_bytes();
// *result (device, double) = Σ x[i]², x fp32 or bf16; accumulated in double over a fixed grid and
// then one fixed tree, so the sum is the same bits on every run.
void sum_squares(const void* x, bool x_bf16, int64_t n, double* result, void* workspace,
                 cudaStream_t stream);
// *total (device, double) += Σ x[i] over x fp32, in the same fixed order (the loss total, summed
// on the device so that the host need not wait for each micro-batch). Same workspace.
void sum_into(const float* x, int64_t n, double* total, void* workspace, cudaStream_t stream);

}  // namespace qwen3::cuda
