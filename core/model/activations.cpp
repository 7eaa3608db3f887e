#include "core/model/activations.h"

#include "core/model/residual_branch.h"
#include "core/util/error.h"

namespace qwen3 {

int64_t MemoryOptions::chunk_tokens(int64_t vocab) const {
  if (lm_head_chunk_tokens > 0) return lm_head_chunk_tokens;
  const int64_t tokens = kAutoLogitsElements / vocab;
  return tokens > 0 ? tokens : 1;
}

ActivationLayout::ActivationLayout(const ModelConfig& c, int64_t batch, int64_t seq, DType storage,
                                   const MemoryOptions& memory) {
  const int64_t n = batch * seq, d = c.hidden_size;
  const DType s = storage, f32 = DType::F32, i32 = DType::I32;
  const auto in = ActivationRole::Input, saved = ActivationRole::Saved,
             scratch = ActivationRole::Scratch;

  model_.tokens = add("tokens", i32, {batch, seq}, in, false);
  model_.labels_shifted = add("labels_shifted", i32, {batch, seq}, in, false);
  model_.positions = add("positions", i32, {batch, seq}, in, false);
  model_.doc_ids = add("doc_ids", i32, {batch, seq}, in, false);

  for (int l = 0; l < c.num_hidden_layers; ++l) {
    layer_entries_.emplace_back();
    ActivationDeclarer layer(*this, l, memory.recompute_layers, batch, seq, storage);
    LayerActivations a;
    // Kept per layer even when recomputing: the re-run starts from it.
    a.resid_in = add("layers." + std::to_string(l) + ".resid_in", s, {n, d}, saved, true);
    a.ln1 = layer.saved("ln1", s, {n, d});
    a.ln1_rstd = layer.saved("ln1_rstd", f32, {n});
    make_mixer(c, l)->declare_activations(layer, c);
    a.resid_mid = layer.saved("resid_mid", s, {n, d});
    a.ln2 = layer.saved("ln2", s, {n, d});
    a.ln2_rstd = layer.saved("ln2_rstd", f32, {n});
    make_mlp(c, l)->declare_activations(layer, c);
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
}

int ActivationDeclarer::saved(const std::string& name, DType dtype, Shape shape) {
  const int index = recompute_ ? layout_.add_once("recompute." + name, dtype, shape,
                                                  ActivationRole::Scratch, true)
                               : layout_.add("layers." + std::to_string(layer_) + "." + name, dtype,
                                             shape, ActivationRole::Saved, true);
  layout_.layer_entries_[static_cast<size_t>(layer_)][name] = index;
  return index;
}

int ActivationDeclarer::scratch(const std::string& name, DType dtype, Shape shape) {
  const int index = layout_.add_once(name, dtype, shape, ActivationRole::Scratch, false);
  layout_.scratch_entries_[name] = index;
  return index;
}

int ActivationLayout::index(int layer, std::string_view name) const {
  QWEN3_CHECK(layer >= 0 && layer < static_cast<int>(layer_entries_.size()),
              "no layer {} among the activations' {}", layer, layer_entries_.size());
  const auto& entries = layer_entries_[static_cast<size_t>(layer)];
  const auto it = entries.find(name);
  QWEN3_CHECK(it != entries.end(), "layer {} declared no activation '{}'", layer, name);
  return it->second;
}

int ActivationLayout::scratch(std::string_view name) const {
  const auto it = scratch_entries_.find(name);
  QWEN3_CHECK(it != scratch_entries_.end(), "no layer declared the scratch tensor '{}'", name);
  return it->second;
}

int ActivationLayout::add_once(const std::string& name, DType dtype, Shape shape,
                               ActivationRole role, bool in_layer) {
  const auto it = once_entries_.find(name);
  if (it == once_entries_.end())
    return once_entries_[name] = add(name, dtype, shape, role, in_layer);
  const ActivationEntry& e = entries_[static_cast<size_t>(it->second)];
  QWEN3_CHECK(e.dtype == dtype && e.shape == shape,
              "activation '{}' declared twice, as {} {} and as {} {}", name, dtype_name(e.dtype),
              e.shape.str(), dtype_name(dtype), shape.str());
  return it->second;
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
