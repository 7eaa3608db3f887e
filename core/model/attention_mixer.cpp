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

// The branch's activations in one layer (saved) and its scratch, by layout index.
struct AttentionActivations {
  AttentionActivations(const ActivationLayout& acts, int layer)
      : qkv(acts.index(layer, "qkv")),
        q_rstd(acts.index(layer, "q_rstd")),
        k_rstd(acts.index(layer, "k_rstd")),
        q_rope(acts.index(layer, "q_rope")),
        k_rope(acts.index(layer, "k_rope")),
        v(acts.index(layer, "v")),
        attn(acts.index(layer, "attn")),
        attn_lse(acts.index(layer, "attn_lse")),
        d_attn(acts.scratch("d_attn")),
        d_q(acts.scratch("d_q")),
        d_k(acts.scratch("d_k")),
        d_v(acts.scratch("d_v")),
        d_qkv(acts.scratch("d_qkv")) {}
  int qkv;             // [N, (Hq + 2·Hkv)·hd] rows of [q | k | v], one GEMM's output
  int q_rstd, k_rstd;  // [N·Hq], [N·Hkv] f32
  int q_rope, k_rope;  // [B, T, Hq, hd], [B, T, Hkv, hd] after QK-norm and RoPE
  int v;               // [B, T, Hkv, hd] v's columns of qkv, packed for attention
  int attn;            // [B, T, Hq, hd] attention output
  int attn_lse;        // [B, Hq, T] f32
  // scratch: attention's input gradients, then the fused projection's output gradient
  int d_attn, d_q, d_k, d_v, d_qkv;
};

// What both passes read of the batch: N tokens of Hq query and Hkv key/value heads of head_dim,
// the positions, and the document ids when the batch has them.
struct BatchInputs {
  explicit BatchInputs(const ModelViews& m)
      : n(m.activations()[m.activations().model().tokens].shape.numel()),
        q(m.config().num_attention_heads),
        kv(m.config().num_key_value_heads),
        dim(m.config().head_dim),
        positions(m.act(m.activations().model().positions).reshaped({n})),
        doc_ids(m.act(m.activations().model().doc_ids)),
        documents(m.documents()) {}
  const TensorView* documents_or_null() const { return documents ? &doc_ids : nullptr; }
  int64_t n, q, kv, dim;
  TensorView positions, doc_ids;
  bool documents;
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

void AttentionMixer::declare_activations(ActivationDeclarer& layer, const ModelConfig& c) const {
  const int64_t b = layer.batch, t = layer.seq, n = b * t, hq = c.num_attention_heads,
                hkv = c.num_key_value_heads, hd = c.head_dim;
  const DType s = layer.storage, f32 = DType::F32;
  layer.saved("qkv", s, {n, (hq + 2 * hkv) * hd});
  layer.saved("q_rstd", f32, {n * hq});
  layer.saved("k_rstd", f32, {n * hkv});
  layer.saved("q_rope", s, {b, t, hq, hd});
  layer.saved("k_rope", s, {b, t, hkv, hd});
  layer.saved("v", s, {b, t, hkv, hd});
  layer.saved("attn", s, {b, t, hq, hd});
  layer.saved("attn_lse", f32, {b, hq, t});
  layer.scratch("d_attn", s, {b, t, hq, hd});
  layer.scratch("d_q", s, {b, t, hq, hd});
  layer.scratch("d_k", s, {b, t, hkv, hd});
  layer.scratch("d_v", s, {b, t, hkv, hd});
  layer.scratch("d_qkv", s, {n, (hq + 2 * hkv) * hd});
}

void AttentionMixer::forward(const ModelViews& m, int layer, const TensorView& x,
                             const TensorView& out, bool) const {
  Backend& be = m.backend();
  const ModelConfig& c = m.config();
  const BatchInputs h(m);
  const AttentionParams p(m.params(), layer);
  const AttentionActivations a(m.activations(), layer);
  // q, k and v as one GEMM over their adjacent weights: rows of [q | k | v]; QK-norm over
  // head_dim (one weight shared by the heads of a projection) fused with RoPE, v copied out.
  const TensorView q_rope = m.act(a.q_rope), k_rope = m.act(a.k_rope), v = m.act(a.v);
  be.linear_forward(x, m.param_group(p.q_proj, p.v_proj), m.act(a.qkv));
  be.qkv_norm_rope_forward(m.act(a.qkv).reshaped({h.n, h.q + 2 * h.kv, h.dim}), m.param(p.q_norm),
                           m.param(p.k_norm), h.positions, static_cast<float>(c.rms_norm_eps),
                           c.rope_theta, q_rope.reshaped({h.n, h.q, h.dim}),
                           k_rope.reshaped({h.n, h.kv, h.dim}), v.reshaped({h.n, h.kv, h.dim}),
                           m.act(a.q_rstd), m.act(a.k_rstd));
  be.attention_forward(q_rope, k_rope, v, h.documents_or_null(), m.act(a.attn), m.act(a.attn_lse));
  // Recomputation needs o_proj's output too: the residual add after it gives the MLP's input.
  be.linear_forward(m.act(a.attn).reshaped({h.n, h.q * h.dim}), m.param(p.o_proj), out);
}

void AttentionMixer::backward(const ModelViews& m, int layer, const TensorView& d_out,
                              const TensorView& x, const TensorView& d_x) const {
  Backend& be = m.backend();
  const ModelConfig& c = m.config();
  const BatchInputs h(m);
  const AttentionParams p(m.params(), layer);
  const AttentionActivations a(m.activations(), layer);
  const TensorView d_attn = m.act(a.d_attn), d_q = m.act(a.d_q), d_k = m.act(a.d_k),
                   d_v = m.act(a.d_v);
  const TensorView d_attn_2d = d_attn.reshaped({h.n, h.q * h.dim});
  be.linear_backward(d_out, m.act(a.attn).reshaped({h.n, h.q * h.dim}), m.param(p.o_proj),
                     &d_attn_2d, false, m.grad(p.o_proj));
  be.attention_backward(d_attn, m.act(a.q_rope), m.act(a.k_rope), m.act(a.v), m.act(a.attn),
                        m.act(a.attn_lse), h.documents_or_null(), d_q, d_k, d_v);
  // Back through RoPE and QK-norm (and v's copy) into the fused projection's gradient, then one
  // GEMM pair over the adjacent q/k/v weights.
  const TensorView d_qkv = m.act(a.d_qkv);
  const Shape qkv_heads{h.n, h.q + 2 * h.kv, h.dim};
  be.qkv_norm_rope_backward(d_q.reshaped({h.n, h.q, h.dim}), d_k.reshaped({h.n, h.kv, h.dim}),
                            d_v.reshaped({h.n, h.kv, h.dim}), m.act(a.qkv).reshaped(qkv_heads),
                            m.param(p.q_norm), m.param(p.k_norm), m.act(a.q_rstd), m.act(a.k_rstd),
                            h.positions, c.rope_theta, d_qkv.reshaped(qkv_heads), m.grad(p.q_norm),
                            m.grad(p.k_norm));
  be.linear_backward(d_qkv, x, m.param_group(p.q_proj, p.v_proj), &d_x, false,
                     m.grad_group(p.q_proj, p.v_proj));
}

}  // namespace qwen3
