#pragma once
// Qwen3's mixer ("full_attention"): q, k and v from one GEMM over their adjacent weights,
// QK-norm fused with RoPE, causal GQA attention (within documents when the batch has them), and
// o_proj.
#include "core/model/residual_branch.h"

namespace qwen3 {

class AttentionMixer final : public ResidualBranch {
 public:
  void declare_params(ParamDeclarer& layer, const ModelConfig& config) const override;
  void declare_activations(ActivationDeclarer& layer, const ModelConfig& config) const override;
  void forward(const ModelViews& m, int layer, const TensorView& x, const TensorView& out,
               bool output_needed) const override;
  void backward(const ModelViews& m, int layer, const TensorView& d_out, const TensorView& x,
                const TensorView& d_x) const override;
};

}  // namespace qwen3
