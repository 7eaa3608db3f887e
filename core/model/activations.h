#pragma once
// Every activation the model keeps for its backward pass, plus its inputs and scratch, laid out in
// one flat buffer for a given (batch, seq). The same list drives allocation and the memory
// estimates of --describe, so the two cannot disagree.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/config.h"
#include "core/tensor/tensor.h"

namespace qwen3 {

enum class ActivationRole {
  Input,    // token ids, labels, positions, document ids
  Saved,    // produced in forward, read in backward
  Scratch,  // reused by every layer
};

struct ActivationEntry {
  std::string name;
  DType dtype;
  Shape shape;
  ActivationRole role;
  size_t byte_offset = 0;
  size_t bytes() const { return static_cast<size_t>(shape.numel()) * dtype_size(dtype); }
};

// Indices into ActivationLayout::entries() of the decoder's own tensors in one layer: the
// residual stream and the norms of its two blocks. N = batch · seq, shapes in comments. With
// recomputation every entry but resid_in is in the working set the layers share. The layer's
// branches declare the rest (ActivationDeclarer) and find them by name (ActivationLayout::index).
struct LayerActivations {
  int resid_in;   // [N, d] residual stream entering the layer
  int ln1;        // [N, d] input_layernorm output
  int ln1_rstd;   // [N] f32
  int resid_mid;  // [N, d] residual after the mixer's block
  int ln2;        // [N, d] post_attention_layernorm output
  int ln2_rstd;   // [N] f32
};

struct ModelActivations {
  int tokens, labels_shifted, positions, doc_ids;  // [B, T] i32
  int resid_final;                                 // [N, d]
  int final_norm;                                  // [N, d]
  int final_rstd;                                  // [N] f32
  int logits;        // [N or chunk, V]; overwritten by its gradient in backward
  int token_losses;  // [N] f32
  int logits_lse;    // [N] f32
  // scratch
  int delta;     // [N, d] a branch's output before the residual add
  int d_resid;   // [N, d] gradient of the residual stream
  int d_hidden;  // [N, d] gradient of a norm output
};

class ActivationLayout;

// What a layer's branch declares its activations through while the layout is built.
class ActivationDeclarer {
 public:
  ActivationDeclarer(ActivationLayout& layout, int layer, bool recompute, int64_t batch,
                     int64_t seq, DType storage)
      : layout_(layout),
        layer_(layer),
        recompute_(recompute),
        batch(batch),
        seq(seq),
        storage(storage) {}
  // A tensor of this layer that its backward reads: saved per layer, or with recomputation in
  // the working set the layers share (one entry per name).
  int saved(const std::string& name, DType dtype, Shape shape);
  // A tensor the backward works in, shared by every layer that declares the name.
  int scratch(const std::string& name, DType dtype, Shape shape);

 private:
  ActivationLayout& layout_;
  int layer_;
  bool recompute_;

 public:
  const int64_t batch, seq;  // the micro-batch's shape
  const DType storage;       // the backend's storage dtype
};

// How the model trades compute for activation memory.
struct MemoryOptions {
  // Keep only each layer's input; the backward pass re-runs a layer's forward just before its
  // backward, into one set of buffers all layers share. Saves ~(layers − 1)/layers of the layer
  // activations for one more forward pass (about a third more compute).
  bool recompute_layers = false;
  // Rows of logits the LM head and loss work on at once. When the micro-batch has more tokens,
  // the head runs in chunks of this many, so [tokens, vocab] is never held whole: in training
  // (the loss scale given to the forward) each chunk's loss, gradient and head backward follow
  // its logits at once; otherwise the backward recomputes each chunk's logits (one more head
  // GEMM). 0: automatic, chunks of at most kAutoLogitsElements logits.
  int64_t lm_head_chunk_tokens = 0;
  // 2^28 logits: 512 MiB in bf16 (1,766 tokens of Qwen3's 151,936-entry vocabulary), 1 GiB fp32.
  static constexpr int64_t kAutoLogitsElements = int64_t(1) << 28;
  // Tokens per head chunk for a vocabulary of `vocab` entries.
  int64_t chunk_tokens(int64_t vocab) const;
};

class ActivationLayout {
 public:
  ActivationLayout(const ModelConfig& config, int64_t batch, int64_t seq, DType storage,
                   const MemoryOptions& memory = {});

  // 256-byte alignment of every tensor, as for parameters.
  static constexpr size_t kAlignBytes = 256;

  const std::vector<ActivationEntry>& entries() const { return entries_; }
  const ActivationEntry& operator[](int index) const { return entries_[index]; }
  const LayerActivations& layer(int i) const { return layers_[i]; }
  // Layer `layer`'s activation `name` as its branch declared it ("qkv"); a scratch tensor by
  // name ("d_qkv"). Throw naming what is missing.
  int index(int layer, std::string_view name) const;
  int scratch(std::string_view name) const;
  // Rows of the logits buffer: the micro-batch's tokens, or one head chunk.
  int64_t logits_rows() const { return entries_[model_.logits].shape[0]; }
  const ModelActivations& model() const { return model_; }
  size_t total_bytes() const { return total_bytes_; }
  // Bytes of one role, alignment excluded; `layers_only` restricts to decoder layers.
  size_t bytes_of(ActivationRole role, bool layers_only = false) const;

 private:
  friend class ActivationDeclarer;
  int add(const std::string& name, DType dtype, Shape shape, ActivationRole role, bool in_layer);
  // The entry named `name` when there is one (of this dtype and shape, else it throws), or a new
  // one.
  int add_once(const std::string& name, DType dtype, Shape shape, ActivationRole role,
               bool in_layer);

  std::vector<ActivationEntry> entries_;
  std::vector<bool> in_layer_;
  std::vector<LayerActivations> layers_;
  // Transparent maps: found by string_view, with no string made.
  using NameIndex = std::map<std::string, int, std::less<>>;
  std::vector<NameIndex> layer_entries_;  // per layer: a branch's name -> index
  NameIndex scratch_entries_;
  NameIndex once_entries_;  // what add_once made, by full name
  ModelActivations model_{};
  size_t total_bytes_ = 0;
};

}  // namespace qwen3
