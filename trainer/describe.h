#pragma once
// `qwen3-train --describe MODEL.yaml`: the parameter table and the memory a replica needs.
#include <string>

#include "core/model/config.h"

namespace qwen3 {

// Bytes per parameter of each training precision. fp32: everything fp32. Mixed: bf16 weights for
// compute and for the all-gather, fp32 master weights and AdamW moments in the optimizer, and
// gradients in fp32 (the default, `grad_dtype: fp32`, as Megatron and torchtitan keep them) or
// bf16 (`grad_dtype: bf16`: the 2 + 2 + 12 bytes per parameter of the ZeRO paper's accounting).
struct PrecisionPlan {
  const char* name;
  int weight_bytes;  // the weights the forward pass reads
  int master_bytes;  // fp32 copy the optimizer updates (0 when the weights already are fp32)
  int gradient_bytes;
  int optimizer_bytes;  // AdamW's m and v, fp32

  constexpr int bytes_per_parameter() const {
    return weight_bytes + master_bytes + gradient_bytes + optimizer_bytes;
  }
};

constexpr PrecisionPlan kFp32Plan{"fp32", 4, 0, 4, 8};
constexpr PrecisionPlan kMixedPlan{"bf16, fp32 grads", 2, 4, 4, 8};
constexpr PrecisionPlan kMixedBf16GradsPlan{"bf16, bf16 grads", 2, 4, 2, 8};

// The whole report. `source` is the YAML path, printed in the header.
std::string describe_model(const ModelConfig& config, const std::string& source);

}  // namespace qwen3
