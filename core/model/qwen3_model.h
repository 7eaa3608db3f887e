#pragma once
// Qwen3ForCausalLM, forward and backward, written once against the Backend op interface.
// Parameters and gradients are two flat buffers with the same ParamLayout; activations are a third,
// sized for one (batch, seq) at a time. Parameters are in the backend's storage dtype, gradients
// in fp32 unless set_grad_dtype says the storage dtype.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "core/model/activations.h"
#include "core/model/batch.h"
#include "core/model/config.h"
#include "core/model/param_layout.h"
#include "core/model/residual_branch.h"
#include "core/ops/backend.h"

namespace qwen3 {

struct LossSum {
  double sum = 0.0;    // Σ token losses, in nats
  int64_t tokens = 0;  // tokens that were scored (labels not ignored)
  double mean() const { return tokens ? sum / double(tokens) : 0.0; }
};

class Qwen3Model {
 public:
  // The flat parameter and gradient buffers are allocated rounded up to a multiple of
  // `flat_multiple` elements, so that ZeRO can split them into equal shards; the tail stays zero.
  Qwen3Model(const ModelConfig& config, Backend& backend, int64_t flat_multiple = 1);
  ~Qwen3Model();

  // The dtype gradients accumulate in: F32 (the default), or the backend's storage dtype, which on
  // a bf16 backend halves the buffer and the bytes reduced but rounds the running sum at every
  // micro-batch, so contributions below half a bf16 step of the sum are lost. Changing it makes a
  // new, zeroed gradient buffer: call between steps (a training stage sets it at its start), and
  // take grads views again afterwards.
  void set_grad_dtype(DType dtype);
  DType grad_dtype() const { return grad_dtype_; }

  const ModelConfig& config() const { return config_; }
  // A training stage may change the RoPE base (Qwen3's long-context stage raises it to 1e6); the
  // saved config.json then carries the new value.
  void set_rope_theta(double theta);
  // Recomputation and LM-head chunking (activations.h). Takes effect at the next forward(); a
  // training stage sets it (its 32K-token stage recomputes).
  void set_memory_options(const MemoryOptions& options);
  const MemoryOptions& memory_options() const { return memory_; }
  // Lays out and allocates the activations for micro-batches up to [batch, seq] now, under the
  // current memory options: a stage does this at its start, so no step allocates them (a smaller
  // micro-batch, such as an evaluation's last, lays out inside the same buffer).
  void reserve_activations(int64_t batch, int64_t seq);
  const ParamLayout& layout() const { return layout_; }
  Backend& backend() const { return backend_; }

  TensorView param(int index) const;  // by ParamLayout index
  TensorView grad(int index) const;
  // Layout entries [first, last], stored back to back, as one [Σ rows, cols] matrix (a fused
  // projection's weights: gate_proj and up_proj, q_proj to v_proj).
  TensorView param_group(int first, int last) const;
  TensorView grad_group(int first, int last) const;
  TensorView params_flat() const;  // [flat_size]
  TensorView grads_flat() const;
  TensorView params_padded() const;  // [padded_size]: flat_size rounded up to flat_multiple
  TensorView grads_padded() const;
  int64_t padded_size() const { return padded_size_; }

  // Hugging Face's initialisation, seeded: normal(0, initializer_range) for embedding and linear
  // weights, 1 for norm weights. Tensor i draws from stream i, so it does not depend on the others.
  void init_weights(uint64_t seed);
  // Whole flat buffers as host fp32 (alignment padding included).
  void load_params(const std::vector<float>& flat);
  std::vector<float> params_to_host() const;
  std::vector<float> grads_to_host() const;
  void zero_grads();

  // Runs the forward pass and keeps what backward needs. The micro-batch's summed loss over
  // scored tokens is added to a running total on the device, without waiting for it; returns the
  // number of scored tokens (known on the host). A training step queues its micro-batches this
  // way and reads the total once, at its end.
  //
  // With `loss_scale` (training, where the scale is known before the forward) the LM head's
  // backward runs here too, fused with the loss: chunk by chunk the logits are made, turned into
  // their loss and gradient in one pass, and give their rows of the final norm's gradient and
  // their part of the head's weight gradient at once, so no chunk's logits are made twice or kept.
  // backward() then starts at the final norm and must be given the same scale.
  int64_t forward_queued(const Batch& batch, std::optional<float> loss_scale = std::nullopt);
  // The summed loss queued since the last call, in nats; waits for the device, then restarts the
  // total at zero.
  double take_loss_total();
  // forward_queued, then take_loss_total: this micro-batch's loss (with any total not yet taken).
  // The caller normalises (by this micro-batch, or a global token count).
  LossSum forward(const Batch& batch);
  // Adds d(loss_scale · LossSum.sum)/dθ into the gradient buffer. Call after forward(); it consumes
  // the logits, which hold their gradient afterwards.
  void backward(float loss_scale);
  // Called by backward() as the gradients become final, so that their reduction can start while
  // the rest of the pass runs: `final_from` means this backward adds nothing more to any element of
  // the padded gradient buffer at flat index >= final_from. The ops that wrote those elements are
  // queued (on the backend's stream), not necessarily finished. The calls come after the head and
  // the final norm (the final norm's offset; a tied head is the embedding, not final yet), after
  // each layer, last to first (the layer's first offset), and after the embedding (0). An empty
  // function (the default) turns the calls off.
  using GradientsFinalHook = std::function<void(int64_t final_from)>;
  void set_gradients_final_hook(GradientsFinalHook hook);

  // [batch · seq, vocab] logits of the last forward(), before backward(). Only where the head ran
  // in one piece (the micro-batch fits one chunk).
  std::vector<float> logits_to_host() const;
  // [batch · seq] per-token losses of the last forward() (0 where ignored).
  std::vector<float> token_losses_to_host() const;

 private:
  TensorView act(int index) const;
  void ensure_activations(int64_t batch, int64_t seq);
  // What the layers' branches see of this model (residual_branch.h).
  class BranchViews;
  // One decoder layer's forward from its resid_in and ln1: its mixer and MLP branches, each
  // closed by the residual add fused with the norm that reads its result (the MLP's, then the
  // next layer's input norm or the final norm). `recomputing`: the backward pass re-runs the
  // layer from its saved resid_in alone, so ln1 is computed here and the output, already there,
  // is not written.
  void forward_layer(int l, bool recomputing);
  // One decoder layer's backward: d_resid holds the gradient of its output and becomes that of
  // its input.
  void backward_layer(int l);
  // Rows [first, first + count) of the head: logits = final_norm · Wᵀ into the logits buffer.
  void head_logits(int64_t first, int64_t count);
  // The same rows' head backward from their logits' gradient (in the logits buffer): d_hidden's
  // rows, and the head's weight gradient added to.
  void head_backward(int64_t first, int64_t count);
  bool head_chunked() const;
  // Uploads tokens, shifted labels, positions and document ids; returns the shifted labels, which
  // the host needs to count scored tokens.
  std::vector<int32_t> upload_batch(const Batch& batch);
  // Calls the gradients-final hook, if one is set.
  void announce_gradients_final(int64_t final_from);

  ModelConfig config_;
  Backend& backend_;
  ParamLayout layout_;
  // Each layer's branches, built from (config, layer index) by the layer's kind.
  std::vector<std::unique_ptr<ResidualBranch>> mixers_, mlps_;
  std::unique_ptr<BranchViews> views_;
  int64_t padded_size_ = 0;
  std::unique_ptr<Buffer> params_, grads_;
  DType grad_dtype_ = DType::F32;
  std::unique_ptr<Buffer> loss_total_;  // [1] f64: summed loss of the micro-batches queued
  std::unique_ptr<ActivationLayout> acts_layout_;
  std::unique_ptr<Buffer> acts_;
  MemoryOptions memory_;
  bool use_doc_ids_ = false;
  bool forward_done_ = false;
  // The loss scale the last forward ran the head's backward with, if it did.
  std::optional<float> head_backward_scale_;
  GradientsFinalHook gradients_final_hook_;
};

}  // namespace qwen3
