#pragma once
// Qwen3's MLP: down(silu(gate(x)) ⊙ up(x)), gate and up as one GEMM over their adjacent weights.
#include "core/model/residual_branch.h"

namespace qwen3 {

class SwiGluMlp final : public ResidualBranch {
 public:
  void declare_params(ParamDeclarer& layer, const ModelConfig& config) const override;
  void declare_activations(ActivationDeclarer& layer, const ModelConfig& config) const override;
  void forward(const ModelViews& m, int layer, const TensorView& x, const TensorView& out,
               bool output_needed) const override;
  void backward(const ModelViews& m, int layer, const TensorView& d_out, const TensorView& x,
                const TensorView& d_x) const override;
};

}  // namespace qwen3
