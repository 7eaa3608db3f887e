#include "core/model/param_layout.h"

#include "core/model/residual_branch.h"
#include "core/util/error.h"

namespace qwen3 {

namespace {

// The attributes of the decoder's head (its norms are kNormWeight's).
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
  // layer's gradients form one slice (per-layer communication buckets): each residual block's
  // norm, then its branch's tensors.
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    components_.emplace_back();
    ParamDeclarer layer(*this, l);
    LayerParams lp;
    lp.input_layernorm = layer.add("input_layernorm", ParamKind::Norm, kNormWeight, {d});
    make_mixer(c, l)->declare_params(layer, c);
    lp.post_attention_layernorm =
        layer.add("post_attention_layernorm", ParamKind::Norm, kNormWeight, {d});
    make_mlp(c, l)->declare_params(layer, c);
    layers_.push_back(lp);
  }
  final_norm_ =
      add("model.norm.weight", "model.norm.weight", -1, ParamKind::Norm, kNormWeight, {d});
  lm_head_ = tied_ ? embed_
                   : add("lm_head.weight", "lm_head.weight", -1, ParamKind::Linear, kHead,
                         {c.vocab_size, d});
}

int ParamDeclarer::add(const std::string& component, ParamKind kind,
                       const ParamAttributes& attributes, Shape shape, bool padded) {
  const int index =
      layout_.add("model.layers." + std::to_string(layer_) + "." + component + ".weight", component,
                  layer_, kind, attributes, shape, padded);
  layout_.components_[static_cast<size_t>(layer_)][component] = index;
  return index;
}

int ParamLayout::index(int layer, std::string_view component) const {
  QWEN3_CHECK(layer >= 0 && layer < static_cast<int>(components_.size()),
              "the model has no layer {} (it has {})", layer, components_.size());
  const auto& components = components_[static_cast<size_t>(layer)];
  const auto it = components.find(component);
  QWEN3_CHECK(it != components.end(), "layer {} has no tensor '{}'", layer, component);
  return it->second;
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
