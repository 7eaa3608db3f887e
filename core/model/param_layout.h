#pragma once
// Where every parameter lives in the one flat parameter buffer (and, at the same offsets, in the
// flat gradient buffer). Names are Hugging Face's state-dict keys, so checkpoints map 1:1.
// Sharding, checkpointing and communication all become slicing of these buffers.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/config.h"
#include "core/tensor/tensor.h"

namespace qwen3 {

// A tensor's category, as run files name it in rules over parameters (`no_decay: [norm,
// embedding]`); what the model, the optimizer and the FLOP count do with a tensor is in its
// attributes below, not inferred from this.
enum class ParamKind { Embedding, Linear, Norm };

// How a tensor starts: normal(0, initializer_range), or every element 1 (norm weights).
enum class InitRule { Normal, Ones };
// What the FLOP count makes of a tensor: the weight of a matrix product (6 FLOPs per weight per
// token, forward and backward), or nothing (norms; the embedding's lookup, unless it is the tied
// head too).
enum class FlopRole { Matmul, None };

struct ParamAttributes {
  InitRule init = InitRule::Normal;
  FlopRole flops = FlopRole::Matmul;
  // A 2-D weight inside the decoder layers: the tensors a matrix update rule (Muon)
  // orthogonalises, which the embedding and the head are not.
  bool hidden_matrix = true;
};

// The attributes of the decoder's matrices and of norm weights.
inline constexpr ParamAttributes kDecoderMatrix{InitRule::Normal, FlopRole::Matmul, true};
inline constexpr ParamAttributes kNormWeight{InitRule::Ones, FlopRole::None, false};

struct ParamEntry {
  std::string name;       // "model.layers.3.self_attn.q_proj.weight"
  std::string component;  // "self_attn.q_proj" (per-layer) or the full name (global)
  int layer = -1;         // -1 for tensors outside the decoder layers
  ParamKind kind = ParamKind::Linear;
  ParamAttributes attributes;
  Shape shape;
  int64_t offset = 0;  // in elements from the start of the flat buffer
  int64_t numel() const { return shape.numel(); }
};

// The decoder's own tensors in each layer, by index into ParamLayout::entries(): the norms that
// open its two residual blocks. The layer's branches declare the rest (residual_branch.h) and find
// them by component name (ParamLayout::index).
struct LayerParams {
  int input_layernorm, post_attention_layernorm;
};

class ParamLayout;

// What a layer's branch adds its tensors through while the layout is built.
class ParamDeclarer {
 public:
  ParamDeclarer(ParamLayout& layout, int layer) : layout_(layout), layer_(layer) {}
  // Adds "model.layers.{layer}.{component}.weight". `padded`: false inside a fused projection,
  // whose tensors follow each other without a gap so that one GEMM reads them as one matrix.
  int add(const std::string& component, ParamKind kind, const ParamAttributes& attributes,
          Shape shape, bool padded = true);

 private:
  ParamLayout& layout_;
  int layer_;
};

class ParamLayout {
 public:
  explicit ParamLayout(const ModelConfig& config);

  // Tensor starts are aligned to this many elements (256 bytes in fp32): every view starts on a
  // cache-line and vector-load boundary on both backends. The exceptions are the second and third
  // tensors of a fused projection (k_proj and v_proj after q_proj, up_proj after gate_proj),
  // which follow the first without a gap so that one GEMM reads the group as one matrix; where
  // the first's size is a multiple of 64 elements, as in every Qwen3 model, they are aligned too.
  static constexpr int64_t kAlignElements = 64;

  const std::vector<ParamEntry>& entries() const { return entries_; }
  const ParamEntry& operator[](int index) const { return entries_[index]; }
  // Throws, naming the tensor, when there is no such parameter.
  const ParamEntry& find(const std::string& name) const;
  bool contains(const std::string& name) const;

  const LayerParams& layer(int i) const { return layers_[i]; }
  // The index of layer `layer`'s tensor `component` ("self_attn.q_proj"); throws, naming both,
  // when the layer has none.
  int index(int layer, std::string_view component) const;
  // First element of layer i's tensors, which are contiguous and start with its input norm.
  int64_t layer_begin(int i) const { return entries_[layers_[i].input_layernorm].offset; }
  int embed_tokens() const { return embed_; }
  int final_norm() const { return final_norm_; }
  // The LM head's entry: the embedding itself when tie_word_embeddings.
  int lm_head() const { return lm_head_; }
  bool tied() const { return tied_; }

  int64_t flat_size() const { return flat_size_; }  // elements, alignment padding included
  int64_t unique_parameters() const;                // every stored parameter once
  int64_t parameters_if_untied() const;             // the tied head counted separately
  int64_t non_embedding_parameters() const;         // without the embedding and the LM head
  int64_t layer_parameters(int layer = 0) const;    // one decoder layer's
  int64_t decoder_parameters() const;               // every decoder layer's, summed

 private:
  friend class ParamDeclarer;
  int add(const std::string& name, const std::string& component, int layer, ParamKind kind,
          const ParamAttributes& attributes, Shape shape, bool padded = true);

  std::vector<ParamEntry> entries_;
  std::vector<LayerParams> layers_;
  // per layer: component -> index (transparent: found by string_view, with no string made)
  std::vector<std::map<std::string, int, std::less<>>> components_;
  int embed_ = -1, final_norm_ = -1, lm_head_ = -1;
  bool tied_ = true;
  int64_t flat_size_ = 0;
};

}  // namespace qwen3
