#include "core/model/swiglu_mlp.h"

namespace qwen3 {

void SwiGluMlp::forward(const ModelViews& m, int layer, const TensorView& x, const TensorView& out,
                        bool output_needed) const {
  Backend& be = m.backend();
  const LayerParams& p = m.params().layer(layer);
  const LayerActivations& a = m.activations().layer(layer);
  // Rows of [gate | up] from one GEMM; the backward needs them and silu(gate) ⊙ up.
  be.linear_forward(x, m.param_group(p.gate_proj, p.up_proj), m.act(a.gate_up));
  be.swiglu_forward(m.act(a.gate_up), m.act(a.act));
  if (output_needed) be.linear_forward(m.act(a.act), m.param(p.down_proj), out);
}

void SwiGluMlp::backward(const ModelViews& m, int layer, const TensorView& d_out,
                         const TensorView& x, const TensorView& d_x) const {
  Backend& be = m.backend();
  const LayerParams& p = m.params().layer(layer);
  const LayerActivations& a = m.activations().layer(layer);
  const TensorView d_act = m.act(m.activations().model().d_act), gate_up = m.act(a.gate_up);
  be.linear_backward(d_out, m.act(a.act), m.param(p.down_proj), &d_act, false, m.grad(p.down_proj));
  // [gate | up] rows become their gradient in place, then one GEMM pair over the adjacent weights.
  be.swiglu_backward(d_act, gate_up, gate_up);
  be.linear_backward(gate_up, x, m.param_group(p.gate_proj, p.up_proj), &d_x, false,
                     m.grad_group(p.gate_proj, p.up_proj));
}

}  // namespace qwen3
