#include "core/model/activations.h"

namespace qwen3 {

int64_t MemoryOptions::chunk_tokens(int64_t vocab) const {
  if (lm_head_chunk_tokens > 0) return lm_head_chunk_tokens;
  const int64_t tokens = kAutoLogitsElements / vocab;
  return tokens > 0 ? tokens : 1;
}

ActivationLayout::ActivationLayout(const ModelConfig& c, int64_t batch, int64_t seq, DType storage,
                                   const MemoryOptions& memory) {
  const int64_t n = batch * seq, d = c.hidden_size, hq = c.num_attention_heads,
                hkv = c.num_key_value_heads, hd = c.head_dim, inter = c.intermediate_size;
  const DType s = storage, f32 = DType::F32, i32 = DType::I32;
  const auto in = ActivationRole::Input, saved = ActivationRole::Saved,
             scratch = ActivationRole::Scratch;

  model_.tokens = add("tokens", i32, {batch, seq}, in, false);
  model_.labels_shifted = add("labels_shifted", i32, {batch, seq}, in, false);
  model_.positions = add("positions", i32, {batch, seq}, in, false);
  model_.doc_ids = add("doc_ids", i32, {batch, seq}, in, false);

  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    // Recomputing: layer 0 allocates the working set, later layers reuse it.
    const bool shared = memory.recompute_layers && l > 0;
    auto t = [&](const char* name, DType dtype, Shape shape) {
      return add(memory.recompute_layers ? std::string("recompute.") + name : p + name, dtype,
                 shape, memory.recompute_layers ? scratch : saved, true);
    };
    LayerActivations a;
    a.resid_in = add(p + "resid_in", s, {n, d}, saved, true);
    if (shared) {
      const int resid_in = a.resid_in;
      a = layers_[0];
      a.resid_in = resid_in;
      layers_.push_back(a);
      continue;
    }
    a.ln1 = t("ln1", s, {n, d});
    a.ln1_rstd = t("ln1_rstd", f32, {n});
    a.qkv = t("qkv", s, {n, (hq + 2 * hkv) * hd});
    a.q_rstd = t("q_rstd", f32, {n * hq});
    a.k_rstd = t("k_rstd", f32, {n * hkv});
    a.q_rope = t("q_rope", s, {batch, seq, hq, hd});
    a.k_rope = t("k_rope", s, {batch, seq, hkv, hd});
    a.v = t("v", s, {batch, seq, hkv, hd});
    a.attn = t("attn", s, {batch, seq, hq, hd});
    a.attn_lse = t("attn_lse", f32, {batch, hq, seq});
    a.resid_mid = t("resid_mid", s, {n, d});
    a.ln2 = t("ln2", s, {n, d});
    a.ln2_rstd = t("ln2_rstd", f32, {n});
    a.gate_up = t("gate_up", s, {n, 2 * inter});
    a.act = t("act", s, {n, inter});
    layers_.push_back(a);
  }

  model_.resid_final = add("resid_final", s, {n, d}, saved, false);
  model_.final_norm = add("final_norm", s, {n, d}, saved, false);
  model_.final_rstd = add("final_rstd", f32, {n}, saved, false);
  const int64_t chunk = memory.chunk_tokens(c.vocab_size);
  model_.logits =
      add("logits", s, {n <= chunk ? n : chunk, c.vocab_size}, n <= chunk ? saved : scratch, false);
  model_.token_losses = add("token_losses", f32, {n}, saved, false);
  model_.logits_lse = add("logits_lse", f32, {n}, saved, false);

  model_.delta = add("delta", s, {n, d}, scratch, false);
  model_.d_resid = add("d_resid", s, {n, d}, scratch, false);
  model_.d_hidden = add("d_hidden", s, {n, d}, scratch, false);
  model_.d_attn = add("d_attn", s, {batch, seq, hq, hd}, scratch, false);
  model_.d_q = add("d_q", s, {batch, seq, hq, hd}, scratch, false);
  model_.d_k = add("d_k", s, {batch, seq, hkv, hd}, scratch, false);
  model_.d_v = add("d_v", s, {batch, seq, hkv, hd}, scratch, false);
  model_.d_qkv = add("d_qkv", s, {n, (hq + 2 * hkv) * hd}, scratch, false);
  model_.d_act = add("d_act", s, {n, inter}, scratch, false);
}

int ActivationLayout::add(const std::string& name, DType dtype, Shape shape, ActivationRole role,
                          bool in_layer) {
  ActivationEntry e{name, dtype, shape, role, total_bytes_};
  total_bytes_ += (e.bytes() + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
  entries_.push_back(e);
  in_layer_.push_back(in_layer);
  return static_cast<int>(entries_.size()) - 1;
}

size_t ActivationLayout::bytes_of(ActivationRole role, bool layers_only) const {
  size_t total = 0;
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].role == role && (!layers_only || in_layer_[i])) total += entries_[i].bytes();
  return total;
}

}  // namespace qwen3
