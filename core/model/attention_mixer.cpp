#include "core/model/attention_mixer.h"

namespace qwen3 {

namespace {

constexpr const char* kQProj = "self_attn.q_proj";
constexpr const char* kKProj = "self_attn.k_proj";
constexpr const char* kVProj = "self_attn.v_proj";
constexpr const char* kQNorm = "self_attn.q_norm";
constexpr const char* kKNorm = "self_attn.k_norm";
constexpr const char* kOProj = "self_attn.o_proj";

// The branch's tensors in one layer, by layout index.
struct AttentionParams {
  AttentionParams(const ParamLayout& layout, int layer)
      : q_proj(layout.index(layer, kQProj)),
        v_proj(layout.index(layer, kVProj)),
        q_norm(layout.index(layer, kQNorm)),
        k_norm(layout.index(layer, kKNorm)),
        o_proj(layout.index(layer, kOProj)) {}
  int q_proj, v_proj, q_norm, k_norm, o_proj;  // q_proj..v_proj: one matrix
};

// The shapes both passes use: N tokens of Hq query and Hkv key/value heads of head_dim.
struct Heads {
  explicit Heads(const ModelViews& m)
      : n(m.activations()[m.activations().model().tokens].shape.numel()),
        q(m.config().num_attention_heads),
        kv(m.config().num_key_value_heads),
        dim(m.config().head_dim) {}
  int64_t n, q, kv, dim;
};

}  // namespace

void AttentionMixer::declare_params(ParamDeclarer& layer, const ModelConfig& c) const {
  const int64_t d = c.hidden_size, hd = c.head_dim;
  // q, k and v back to back, so that one GEMM reads them as one matrix.
  layer.add(kQProj, ParamKind::Linear, kDecoderMatrix, {c.q_dim(), d}, false);
  layer.add(kKProj, ParamKind::Linear, kDecoderMatrix, {c.kv_dim(), d}, false);
  layer.add(kVProj, ParamKind::Linear, kDecoderMatrix, {c.kv_dim(), d});
  // One head_dim-sized weight shared by all heads, as in HF's Qwen3RMSNorm(head_dim).
  layer.add(kQNorm, ParamKind::Norm, kNormWeight, {hd});
  layer.add(kKNorm, ParamKind::Norm, kNormWeight, {hd});
  layer.add(kOProj, ParamKind::Linear, kDecoderMatrix, {d, c.q_dim()});
}

void AttentionMixer::forward(const ModelViews& m, int layer, const TensorView& x,
                             const TensorView& out, bool) const {
  Backend& be = m.backend();
  const ModelConfig& c = m.config();
  const Heads h(m);
  const AttentionParams p(m.params(), layer);
  const LayerActivations& a = m.activations().layer(layer);
  const ModelActivations& ma = m.activations().model();
  const TensorView positions = m.act(ma.positions).reshaped({h.n});
  const TensorView doc_ids = m.act(ma.doc_ids);
  // q, k and v as one GEMM over their adjacent weights: rows of [q | k | v]; QK-norm over
  // head_dim (one weight shared by the heads of a projection) fused with RoPE, v copied out.
  const TensorView q_rope = m.act(a.q_rope), k_rope = m.act(a.k_rope), v = m.act(a.v);
  be.linear_forward(x, m.param_group(p.q_proj, p.v_proj), m.act(a.qkv));
  be.qkv_norm_rope_forward(m.act(a.qkv).reshaped({h.n, h.q + 2 * h.kv, h.dim}), m.param(p.q_norm),
                           m.param(p.k_norm), positions, static_cast<float>(c.rms_norm_eps),
                           c.rope_theta, q_rope.reshaped({h.n, h.q, h.dim}),
                           k_rope.reshaped({h.n, h.kv, h.dim}), v.reshaped({h.n, h.kv, h.dim}),
                           m.act(a.q_rstd), m.act(a.k_rstd));
  be.attention_forward(q_rope, k_rope, v, m.documents() ? &doc_ids : nullptr, m.act(a.attn),
                       m.act(a.attn_lse));
  // Recomputation needs o_proj's output too: the residual add after it gives the MLP's input.
  be.linear_forward(m.act(a.attn).reshaped({h.n, h.q * h.dim}), m.param(p.o_proj), out);
}

void AttentionMixer::backward(const ModelViews& m, int layer, const TensorView& d_out,
                              const TensorView& x, const TensorView& d_x) const {
  Backend& be = m.backend();
  const ModelConfig& c = m.config();
  const Heads h(m);
  const AttentionParams p(m.params(), layer);
  const LayerActivations& a = m.activations().layer(layer);
  const ModelActivations& ma = m.activations().model();
  const TensorView positions = m.act(ma.positions).reshaped({h.n});
  const TensorView doc_ids = m.act(ma.doc_ids);
  const TensorView d_attn = m.act(ma.d_attn), d_q = m.act(ma.d_q), d_k = m.act(ma.d_k),
                   d_v = m.act(ma.d_v);
  const TensorView d_attn_2d = d_attn.reshaped({h.n, h.q * h.dim});
  be.linear_backward(d_out, m.act(a.attn).reshaped({h.n, h.q * h.dim}), m.param(p.o_proj),
                     &d_attn_2d, false, m.grad(p.o_proj));
  be.attention_backward(d_attn, m.act(a.q_rope), m.act(a.k_rope), m.act(a.v), m.act(a.attn),
                        m.act(a.attn_lse), m.documents() ? &doc_ids : nullptr, d_q, d_k, d_v);
  // Back through RoPE and QK-norm (and v's copy) into the fused projection's gradient, then one
  // GEMM pair over the adjacent q/k/v weights.
  const TensorView d_qkv = m.act(ma.d_qkv);
  const Shape qkv_heads{h.n, h.q + 2 * h.kv, h.dim};
  be.qkv_norm_rope_backward(d_q.reshaped({h.n, h.q, h.dim}), d_k.reshaped({h.n, h.kv, h.dim}),
                            d_v.reshaped({h.n, h.kv, h.dim}), m.act(a.qkv).reshaped(qkv_heads),
                            m.param(p.q_norm), m.param(p.k_norm), m.act(a.q_rstd), m.act(a.k_rstd),
                            positions, c.rope_theta, d_qkv.reshaped(qkv_heads), m.grad(p.q_norm),
                            m.grad(p.k_norm));
  be.linear_backward(d_qkv, x, m.param_group(p.q_proj, p.v_proj), &d_x, false,
                     m.grad_group(p.q_proj, p.v_proj));
}

}  // namespace qwen3
