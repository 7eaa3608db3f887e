#include "core/model/swiglu_mlp.h"

namespace qwen3 {

namespace {

constexpr const char* kGateProj = "mlp.gate_proj";
constexpr const char* kUpProj = "mlp.up_proj";
constexpr const char* kDownProj = "mlp.down_proj";

// The branch's tensors in one layer, by layout index.
struct MlpParams {
  MlpParams(const ParamLayout& layout, int layer)
      : gate_proj(layout.index(layer, kGateProj)),
        up_proj(layout.index(layer, kUpProj)),
        down_proj(layout.index(layer, kDownProj)) {}
  int gate_proj, up_proj, down_proj;  // gate_proj, up_proj: one matrix
};

// The branch's activations in one layer (saved) and its scratch, by layout index.
struct MlpActivations {
  MlpActivations(const ActivationLayout& acts, int layer)
      : gate_up(acts.index(layer, "gate_up")),
        act(acts.index(layer, "act")),
        d_act(acts.scratch("d_act")) {}
  int gate_up;  // [N, 2I] rows of [gate | up], one GEMM's output; the backward overwrites it with
                // its gradient
  int act;      // [N, I] silu(gate) ⊙ up
  int d_act;    // scratch [N, I]
};

}  // namespace

void SwiGluMlp::declare_activations(ActivationDeclarer& layer, const ModelConfig& c) const {
  const int64_t n = layer.batch * layer.seq, inter = c.intermediate_size;
  layer.saved("gate_up", layer.storage, {n, 2 * inter});
  layer.saved("act", layer.storage, {n, inter});
  layer.scratch("d_act", layer.storage, {n, inter});
}

void SwiGluMlp::declare_params(ParamDeclarer& layer, const ModelConfig& c) const {
  const int64_t d = c.hidden_size, inter = c.intermediate_size;
  // gate and up back to back, so that one GEMM reads them as one matrix.
  layer.add(kGateProj, ParamKind::Linear, kDecoderMatrix, {inter, d}, false);
  layer.add(kUpProj, ParamKind::Linear, kDecoderMatrix, {inter, d});
  layer.add(kDownProj, ParamKind::Linear, kDecoderMatrix, {d, inter});
}

void SwiGluMlp::forward(const ModelViews& m, int layer, const TensorView& x, const TensorView& out,
                        bool output_needed) const {
  Backend& be = m.backend();
  const MlpParams p(m.params(), layer);
  const MlpActivations a(m.activations(), layer);
  // Rows of [gate | up] from one GEMM; the backward needs them and silu(gate) ⊙ up.
  be.linear_forward(x, m.param_group(p.gate_proj, p.up_proj), m.act(a.gate_up));
  be.swiglu_forward(m.act(a.gate_up), m.act(a.act));
  if (output_needed) be.linear_forward(m.act(a.act), m.param(p.down_proj), out);
}

void SwiGluMlp::backward(const ModelViews& m, int layer, const TensorView& d_out,
                         const TensorView& x, const TensorView& d_x) const {
  Backend& be = m.backend();
  const MlpParams p(m.params(), layer);
  const MlpActivations a(m.activations(), layer);
  const TensorView d_act = m.act(a.d_act), gate_up = m.act(a.gate_up);
  be.linear_backward(d_out, m.act(a.act), m.param(p.down_proj), &d_act, false, m.grad(p.down_proj));
  // [gate | up] rows become their gradient in place, then one GEMM pair over the adjacent weights.
  be.swiglu_backward(d_act, gate_up, gate_up);
  be.linear_backward(gate_up, x, m.param_group(p.gate_proj, p.up_proj), &d_x, false,
                     m.grad_group(p.gate_proj, p.up_proj));
}

}  // namespace qwen3
