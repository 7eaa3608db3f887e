#pragma once
// Every activation the model keeps for its backward pass, plus its inputs and scratch, laid out in
// one flat buffer for a given (batch, seq). The same list drives allocation and the memory
// estimates of --describe, so the two cannot disagree.
#include <string>
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

// Indices into ActivationLayout::entries() of one decoder layer's saved tensors.
// N = batch · seq, shapes in comments. With recomputation every layer's entries but resid_in are
// the same shared working set.
struct LayerActivations {
  int resid_in;   // [N, d] residual stream entering the layer
  int ln1;        // [N, d] input_layernorm output
  int ln1_rstd;   // [N] f32
  int qkv;        // [N, (Hq + 2·Hkv)·hd] rows of [q | k | v], one GEMM's output (q, k before
                  // QK-norm)
  int q_rstd;     // [N·Hq] f32
  int k_rstd;     // [N·Hkv] f32
  int q_rope;     // [B, T, Hq, hd] after QK-norm and RoPE
  int k_rope;     // [B, T, Hkv, hd]
  int v;          // [B, T, Hkv, hd] v's columns of qkv, packed for attention
  int attn;       // [B, T, Hq, hd] attention output
  int attn_lse;   // [B, Hq, T] f32
  int resid_mid;  // [N, d] residual after attention
  int ln2;        // [N, d] post_attention_layernorm output
  int ln2_rstd;   // [N] f32
  int gate_up;    // [N, 2I] rows of [gate | up], one GEMM's output; the backward overwrites it
                  // with its gradient
  int act;        // [N, I] silu(gate) ⊙ up
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
  int delta;          // [N, d] o_proj / down_proj output before the residual add
  int d_resid;        // [N, d] gradient of the residual stream
  int d_hidden;       // [N, d] gradient of a norm output
  int d_attn;         // [N, Hq·hd]
  int d_q, d_k, d_v;  // [B, T, Hq, hd], [B, T, Hkv, hd] ×2: attention's input gradients
  int d_qkv;          // [N, (Hq + 2·Hkv)·hd] the fused projection's output gradient
  int d_act;          // [N, I]
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
  // Rows of the logits buffer: the micro-batch's tokens, or one head chunk.
  int64_t logits_rows() const { return entries_[model_.logits].shape[0]; }
  const ModelActivations& model() const { return model_; }
  size_t total_bytes() const { return total_bytes_; }
  // Bytes of one role, alignment excluded; `layers_only` restricts to decoder layers.
  size_t bytes_of(ActivationRole role, bool layers_only = false) const;

 private:
  int add(const std::string& name, DType dtype, Shape shape, ActivationRole role, bool in_layer);

  std::vector<ActivationEntry> entries_;
  std::vector<bool> in_layer_;
  std::vector<LayerActivations> layers_;
  ModelActivations model_{};
  size_t total_bytes_ = 0;
};

}  // namespace qwen3
