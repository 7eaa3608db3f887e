#include "core/model/param_layout.h"

#include "core/util/error.h"

namespace qwen3 {

namespace {

// The attributes of Qwen3's tensors: decoder matrices, norm weights, the embedding and the head.
constexpr ParamAttributes kMatrix{InitRule::Normal, FlopRole::Matmul, true};
constexpr ParamAttributes kNorm{InitRule::Ones, FlopRole::None, false};
constexpr ParamAttributes kHead{InitRule::Normal, FlopRole::Matmul, false};
// The embedding's lookup is no product; as the tied head it is one.
constexpr ParamAttributes embedding_attributes(bool tied) {
  return {InitRule::Normal, tied ? FlopRole::Matmul : FlopRole::None, false};
}

}  // namespace

ParamLayout::ParamLayout(const ModelConfig& c) : tied_(c.tie_word_embeddings) {
  const int64_t d = c.hidden_size, hd = c.head_dim, inter = c.intermediate_size;
  embed_ = add("model.embed_tokens.weight", "model.embed_tokens.weight", -1, ParamKind::Embedding,
               embedding_attributes(tied_), {c.vocab_size, d});
  // Each layer's tensors are contiguous and in the order the forward pass uses them, so that a
  // layer's gradients form one slice (per-layer communication buckets later).
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    // `padded`: false inside a fused projection (q, k, v; gate, up), whose weights follow each
    // other without a gap, so that one GEMM reads them as one matrix.
    auto layer_tensor = [&](const char* component, ParamKind kind, Shape shape,
                            bool padded = true) {
      return add(p + component + ".weight", component, l, kind,
                 kind == ParamKind::Norm ? kNorm : kMatrix, shape, padded);
    };
    LayerParams lp;
    lp.input_layernorm = layer_tensor("input_layernorm", ParamKind::Norm, {d});
    lp.q_proj = layer_tensor("self_attn.q_proj", ParamKind::Linear, {c.q_dim(), d}, false);
    lp.k_proj = layer_tensor("self_attn.k_proj", ParamKind::Linear, {c.kv_dim(), d}, false);
    lp.v_proj = layer_tensor("self_attn.v_proj", ParamKind::Linear, {c.kv_dim(), d});
    // One head_dim-sized weight shared by all heads, as in HF's Qwen3RMSNorm(head_dim).
    lp.q_norm = layer_tensor("self_attn.q_norm", ParamKind::Norm, {hd});
    lp.k_norm = layer_tensor("self_attn.k_norm", ParamKind::Norm, {hd});
    lp.o_proj = layer_tensor("self_attn.o_proj", ParamKind::Linear, {d, c.q_dim()});
    lp.post_attention_layernorm = layer_tensor("post_attention_layernorm", ParamKind::Norm, {d});
    lp.gate_proj = layer_tensor("mlp.gate_proj", ParamKind::Linear, {inter, d}, false);
    lp.up_proj = layer_tensor("mlp.up_proj", ParamKind::Linear, {inter, d});
    lp.down_proj = layer_tensor("mlp.down_proj", ParamKind::Linear, {d, inter});
    layers_.push_back(lp);
  }
  final_norm_ = add("model.norm.weight", "model.norm.weight", -1, ParamKind::Norm, kNorm, {d});
  lm_head_ = tied_ ? embed_
                   : add("lm_head.weight", "lm_head.weight", -1, ParamKind::Linear, kHead,
                         {c.vocab_size, d});
}

int ParamLayout::add(const std::string& name, const std::string& component, int layer,
                     ParamKind kind, const ParamAttributes& attributes, Shape shape, bool padded) {
  ParamEntry e;
  e.name = name;
  e.component = component;
  e.layer = layer;
  e.kind = kind;
  e.attributes = attributes;
  e.shape = shape;
  e.offset = flat_size_;
  // The end rounded up, so the next tensor starts aligned (unless it continues a fused group).
  flat_size_ += e.numel();
  if (padded) flat_size_ = (flat_size_ + kAlignElements - 1) / kAlignElements * kAlignElements;
  entries_.push_back(e);
  return static_cast<int>(entries_.size()) - 1;
}

bool ParamLayout::contains(const std::string& name) const {
  for (const ParamEntry& e : entries_)
    if (e.name == name) return true;
  return false;
}

const ParamEntry& ParamLayout::find(const std::string& name) const {
  for (const ParamEntry& e : entries_)
    if (e.name == name) return e;
  if (name == "lm_head.weight" && tied_) return entries_[embed_];
  throw_error("the model has no parameter named '" + name + "'");
}

int64_t ParamLayout::unique_parameters() const {
  int64_t total = 0;
  for (const ParamEntry& e : entries_)
    total += e.numel();
  return total;
}

int64_t ParamLayout::parameters_if_untied() const {
  return unique_parameters() + (tied_ ? entries_[embed_].numel() : 0);
}

int64_t ParamLayout::non_embedding_parameters() const {
  return unique_parameters() - entries_[embed_].numel() - (tied_ ? 0 : entries_[lm_head_].numel());
}

int64_t ParamLayout::layer_parameters(int layer) const {
  int64_t total = 0;
  for (const ParamEntry& e : entries_)
    if (e.layer == layer) total += e.numel();
  return total;
}

int64_t ParamLayout::decoder_parameters() const {
  int64_t total = 0;
  for (const ParamEntry& e : entries_)
    if (e.layer >= 0) total += e.numel();
  return total;
}

}  // namespace qwen3
