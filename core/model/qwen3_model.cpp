#include "core/model/qwen3_model.h"

#include <algorithm>
#include <utility>

#include "core/util/error.h"
#include "core/util/rng.h"

namespace qwen3 {

// What the branches see: this model's views, by its own accessors.
class Qwen3Model::BranchViews final : public ModelViews {
 public:
  explicit BranchViews(const Qwen3Model& model) : model_(model) {}
  Backend& backend() const override { return model_.backend_; }
  const ModelConfig& config() const override { return model_.config_; }
  const ParamLayout& params() const override { return model_.layout_; }
  const ActivationLayout& activations() const override { return *model_.acts_layout_; }
  TensorView param(int index) const override { return model_.param(index); }
  TensorView grad(int index) const override { return model_.grad(index); }
  TensorView param_group(int first, int last) const override {
    return model_.param_group(first, last);
  }
  TensorView grad_group(int first, int last) const override {
    return model_.grad_group(first, last);
  }
  TensorView act(int index) const override { return model_.act(index); }
  bool documents() const override { return model_.use_doc_ids_; }

 private:
  const Qwen3Model& model_;
};

Qwen3Model::Qwen3Model(const ModelConfig& config, Backend& backend, int64_t flat_multiple)
    : config_(config), backend_(backend), layout_(config) {
  QWEN3_CHECK(flat_multiple >= 1, "flat_multiple must be at least 1, got {}", flat_multiple);
  padded_size_ = (layout_.flat_size() + flat_multiple - 1) / flat_multiple * flat_multiple;
  params_ =
      backend_.allocate(static_cast<size_t>(padded_size_) * dtype_size(backend.storage_dtype()));
  grads_ = backend_.allocate(static_cast<size_t>(padded_size_) * dtype_size(grad_dtype_));
  loss_total_ = backend_.allocate(sizeof(double));
  backend_.fill_zero(params_padded());
  backend_.fill_zero(grads_padded());
  backend_.fill_zero(loss_total_->view(DType::F64, {1}));
  for (int l = 0; l < config_.num_hidden_layers; ++l) {
    mixers_.push_back(make_mixer(config_, l));
    mlps_.push_back(make_mlp(config_, l));
  }
  views_ = std::make_unique<BranchViews>(*this);
}

Qwen3Model::~Qwen3Model() = default;

void Qwen3Model::set_grad_dtype(DType dtype) {
  QWEN3_CHECK(dtype == DType::F32 || dtype == backend_.storage_dtype(),
              "gradients can be f32 or the {} backend's storage dtype {}, not {}", backend_.name(),
              dtype_name(backend_.storage_dtype()), dtype_name(dtype));
  if (dtype == grad_dtype_) return;
  grads_.reset();  // before the new one: the two need not be held at once
  grad_dtype_ = dtype;
  grads_ = backend_.allocate(static_cast<size_t>(padded_size_) * dtype_size(grad_dtype_));
  backend_.fill_zero(grads_padded());
}

TensorView Qwen3Model::param(int index) const {
  const ParamEntry& e = layout_[index];
  return params_->view(backend_.storage_dtype(), e.shape,
                       e.offset * dtype_size(backend_.storage_dtype()));
}

TensorView Qwen3Model::grad(int index) const {
  const ParamEntry& e = layout_[index];
  return grads_->view(grad_dtype_, e.shape, e.offset * dtype_size(grad_dtype_));
}

namespace {

// Entries [first, last] of the layout as one [Σ rows, cols] matrix: the fused projections' weights
// (q, k, v; gate, up), which the layout stores back to back.
Shape group_shape(const ParamLayout& layout, int first, int last) {
  int64_t rows = 0;
  for (int i = first; i <= last; ++i) {
    QWEN3_CHECK(i == first || layout[i].offset == layout[i - 1].offset + layout[i - 1].numel(),
                "{} does not follow {} without a gap, so the two are not one matrix",
                layout[i].name, layout[i - 1].name);
    rows += layout[i].shape[0];
  }
  return {rows, layout[first].shape[1]};
}

}  // namespace

TensorView Qwen3Model::param_group(int first, int last) const {
  return params_->view(backend_.storage_dtype(), group_shape(layout_, first, last),
                       layout_[first].offset * dtype_size(backend_.storage_dtype()));
}

TensorView Qwen3Model::grad_group(int first, int last) const {
  return grads_->view(grad_dtype_, group_shape(layout_, first, last),
                      layout_[first].offset * dtype_size(grad_dtype_));
}

TensorView Qwen3Model::params_flat() const {
  return params_->view(backend_.storage_dtype(), {layout_.flat_size()});
}

TensorView Qwen3Model::grads_flat() const {
  return grads_->view(grad_dtype_, {layout_.flat_size()});
}

TensorView Qwen3Model::params_padded() const {
  return params_->view(backend_.storage_dtype(), {padded_size_});
}

TensorView Qwen3Model::grads_padded() const {
  return grads_->view(grad_dtype_, {padded_size_});
}

void Qwen3Model::init_weights(uint64_t seed) {
  for (size_t i = 0; i < layout_.entries().size(); ++i) {
    const ParamEntry& e = layout_[static_cast<int>(i)];
    std::vector<float> values(static_cast<size_t>(e.numel()));
    if (e.attributes.init == InitRule::Ones)
      std::fill(values.begin(), values.end(), 1.0f);
    else
      fill_normal(values.data(), e.numel(), 0.0, config_.initializer_range, seed, i);
    backend_.upload(values.data(), param(static_cast<int>(i)));
  }
}

void Qwen3Model::set_rope_theta(double theta) {
  QWEN3_CHECK(theta > 1.0, "rope_theta must be greater than 1, got {}", theta);
  config_.rope_theta = theta;
}

void Qwen3Model::load_params(const std::vector<float>& flat) {
  QWEN3_CHECK(static_cast<int64_t>(flat.size()) == layout_.flat_size(),
              "load_params: got {} values, the layout holds {}", flat.size(), layout_.flat_size());
  backend_.upload(flat.data(), params_flat());
}

std::vector<float> Qwen3Model::params_to_host() const {
  std::vector<float> out(static_cast<size_t>(layout_.flat_size()));
  backend_.download(params_flat(), out.data());
  return out;
}

std::vector<float> Qwen3Model::grads_to_host() const {
  std::vector<float> out(static_cast<size_t>(layout_.flat_size()));
  backend_.download(grads_flat(), out.data());
  return out;
}

void Qwen3Model::zero_grads() {
  backend_.fill_zero(grads_padded());
}

TensorView Qwen3Model::act(int index) const {
  const ActivationEntry& e = (*acts_layout_)[index];
  return acts_->view(e.dtype, e.shape, e.byte_offset);
}

void Qwen3Model::set_memory_options(const MemoryOptions& options) {
  QWEN3_CHECK(options.lm_head_chunk_tokens >= 0,
              "lm_head_chunk_tokens must be positive, or 0 for automatic; got {}",
              options.lm_head_chunk_tokens);
  if (options.recompute_layers != memory_.recompute_layers ||
      options.lm_head_chunk_tokens != memory_.lm_head_chunk_tokens) {
    memory_ = options;
    acts_layout_.reset();  // laid out anew at the next forward
    forward_done_ = false;
  }
}

void Qwen3Model::reserve_activations(int64_t batch, int64_t seq) {
  QWEN3_CHECK(batch > 0 && seq > 0, "activations reserved for an empty shape [{}, {}]", batch, seq);
  ensure_activations(batch, seq);
  // The backend's RoPE angle table, sized for the stage too (made here for zero positions; each
  // micro-batch makes its own in place).
  const TensorView positions = act(acts_layout_->model().positions).reshaped({batch * seq});
  backend_.fill_zero(positions);
  backend_.set_rope_positions(positions, config_.rope_theta, config_.head_dim);
}

void Qwen3Model::ensure_activations(int64_t batch, int64_t seq) {
  if (acts_layout_) {
    const Shape& current = (*acts_layout_)[acts_layout_->model().tokens].shape;
    if (current[0] == batch && current[1] == seq) return;
  }
  acts_layout_ =
      std::make_unique<ActivationLayout>(config_, batch, seq, backend_.storage_dtype(), memory_);
  // A smaller shape (an evaluation's last micro-batch) lays out inside the buffer it has: an
  // allocation here would be a cudaFree and cudaMalloc inside a step, and cudaFree waits for the
  // whole device.
  if (acts_ && acts_->bytes() >= acts_layout_->total_bytes()) return;
  acts_.reset();  // free the old buffer before allocating the new one
  acts_ = backend_.allocate(acts_layout_->total_bytes());
}

std::vector<int32_t> Qwen3Model::upload_batch(const Batch& b) {
  QWEN3_CHECK(b.batch > 0 && b.seq > 0, "batch shape [{}, {}] is empty", b.batch, b.seq);
  QWEN3_CHECK(b.seq <= config_.max_position_embeddings,
              "sequence length {} exceeds max_position_embeddings {}", b.seq,
              config_.max_position_embeddings);
  const size_t n = static_cast<size_t>(b.batch * b.seq);
  QWEN3_CHECK(b.tokens.size() == n, "batch has {} tokens, expected {} x {}", b.tokens.size(),
              b.batch, b.seq);
  QWEN3_CHECK(b.labels.empty() != b.targets.empty(),
              "batch must have either labels or targets, not {}",
              b.labels.empty() ? "neither" : "both");
  const std::vector<int32_t>& given = b.targets.empty() ? b.labels : b.targets;
  QWEN3_CHECK(given.size() == n, "batch has {} {}, expected {} x {}", given.size(),
              b.targets.empty() ? "labels" : "targets", b.batch, b.seq);
  QWEN3_CHECK(b.positions.empty() || b.positions.size() == n,
              "batch has {} positions, expected none or {}", b.positions.size(), n);
  QWEN3_CHECK(b.doc_ids.empty() || b.doc_ids.size() == n,
              "batch has {} document ids, expected none or {}", b.doc_ids.size(), n);
  ensure_activations(b.batch, b.seq);
  const ModelActivations& m = acts_layout_->model();

  // HF's causal-LM shift: position t predicts labels[t + 1]; the last position predicts nothing.
  // Targets come shifted already.
  std::vector<int32_t> shifted(n), positions(n);
  for (int64_t r = 0; r < b.batch; ++r)
    for (int64_t t = 0; t < b.seq; ++t) {
      const size_t i = static_cast<size_t>(r * b.seq + t);
      if (!b.targets.empty())
        shifted[i] = b.targets[i];
      else
        shifted[i] = t + 1 < b.seq ? b.labels[i + 1] : kIgnoreIndex;
      positions[i] = b.positions.empty() ? static_cast<int32_t>(t) : b.positions[i];
    }
  backend_.upload(b.tokens.data(), act(m.tokens));
  backend_.upload(shifted.data(), act(m.labels_shifted));
  backend_.upload(positions.data(), act(m.positions));
  // The rotary angles once for the batch's forward and backward.
  backend_.set_rope_positions(act(m.positions).reshaped({int64_t(n)}), config_.rope_theta,
                              config_.head_dim);
  use_doc_ids_ = !b.doc_ids.empty();
  if (use_doc_ids_) {
    backend_.upload(b.doc_ids.data(), act(m.doc_ids));
    backend_.set_documents(b.doc_ids.data(), b.batch, b.seq);
  }
  return shifted;
}

bool Qwen3Model::head_chunked() const {
  const ModelActivations& m = acts_layout_->model();
  return acts_layout_->logits_rows() < (*acts_layout_)[m.final_norm].shape[0];
}

void Qwen3Model::head_logits(int64_t first, int64_t count) {
  const ModelActivations& m = acts_layout_->model();
  backend_.linear_forward(act(m.final_norm).rows(first, count), param(layout_.lm_head()),
                          act(m.logits).rows(0, count));
}

void Qwen3Model::head_backward(int64_t first, int64_t count) {
  const ModelActivations& m = acts_layout_->model();
  const TensorView d_hidden_rows = act(m.d_hidden).rows(first, count);
  backend_.linear_backward(act(m.logits).rows(0, count), act(m.final_norm).rows(first, count),
                           param(layout_.lm_head()), &d_hidden_rows, false,
                           grad(layout_.lm_head()));
}

void Qwen3Model::forward_layer(int l, bool recomputing) {
  Backend& be = backend_;
  const ModelActivations& m = acts_layout_->model();
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const LayerParams& p = layout_.layer(l);
  const LayerActivations& a = acts_layout_->layer(l);
  // The mixer's block. In the forward pass its input norm was fused into the add that produced
  // resid_in (the previous layer's last, or the embedding's own norm); a re-run starts from the
  // saved resid_in alone.
  if (recomputing)
    be.rmsnorm_forward(act(a.resid_in), param(p.input_layernorm), eps, act(a.ln1), act(a.ln1_rstd));
  mixers_[l]->forward(*views_, l, act(a.ln1), act(m.delta), true);
  // The MLP's block, its norm fused with the residual add that closes the mixer's.
  be.add_rmsnorm_forward(act(a.resid_in), act(m.delta), param(p.post_attention_layernorm), eps,
                         act(a.resid_mid), act(a.ln2), act(a.ln2_rstd));
  mlps_[l]->forward(*views_, l, act(a.ln2), act(m.delta), !recomputing);
  if (recomputing) return;
  // The closing residual add, fused with the norm that reads its result: the next layer's input
  // norm, or the final norm.
  if (l + 1 < config_.num_hidden_layers) {
    const LayerActivations& next = acts_layout_->layer(l + 1);
    be.add_rmsnorm_forward(act(a.resid_mid), act(m.delta),
                           param(layout_.layer(l + 1).input_layernorm), eps, act(next.resid_in),
                           act(next.ln1), act(next.ln1_rstd));
  } else {
    be.add_rmsnorm_forward(act(a.resid_mid), act(m.delta), param(layout_.final_norm()), eps,
                           act(m.resid_final), act(m.final_norm), act(m.final_rstd));
  }
}

int64_t Qwen3Model::forward_queued(const Batch& batch, std::optional<float> loss_scale) {
  const std::vector<int32_t> shifted = upload_batch(batch);
  Backend& be = backend_;
  const ModelConfig& c = config_;
  const ModelActivations& m = acts_layout_->model();
  const int64_t n = batch.batch * batch.seq;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const TensorView tokens = act(m.tokens).reshaped({n});

  const LayerActivations& first = acts_layout_->layer(0);
  be.embedding_forward(tokens, param(layout_.embed_tokens()), act(first.resid_in));
  be.rmsnorm_forward(act(first.resid_in), param(layout_.layer(0).input_layernorm), eps,
                     act(first.ln1), act(first.ln1_rstd));
  // Each layer ends with the next norm (the last with the final norm) fused into its residual add.
  for (int l = 0; l < c.num_hidden_layers; ++l)
    forward_layer(l, false);
  // The head and loss, a chunk of rows at a time where the logits would not fit whole; with a
  // loss scale, each chunk's logits become their gradient in the loss's pass and go straight
  // through the head's backward.
  const TensorView targets = act(m.labels_shifted).reshaped({n});
  const int64_t chunk = acts_layout_->logits_rows();
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t count = std::min(chunk, n - first);
    head_logits(first, count);
    const TensorView logits = act(m.logits).rows(0, count);
    const TensorView losses = act(m.token_losses).rows(first, count);
    const TensorView lse = act(m.logits_lse).rows(first, count);
    if (loss_scale) {
      be.cross_entropy_forward_backward(logits, targets.rows(first, count), kIgnoreIndex,
                                        *loss_scale, losses, lse, logits);
      head_backward(first, count);
    } else {
      be.cross_entropy_forward(logits, targets.rows(first, count), kIgnoreIndex, losses, lse);
    }
  }
  head_backward_scale_ = loss_scale;

  // Ignored tokens' losses are 0, so the sum over all is the sum over the scored.
  be.accumulate_sum(act(m.token_losses), loss_total_->view(DType::F64, {1}));
  forward_done_ = true;
  return static_cast<int64_t>(
      std::count_if(shifted.begin(), shifted.end(), [](int32_t t) { return t != kIgnoreIndex; }));
}

double Qwen3Model::take_loss_total() {
  const TensorView total = loss_total_->view(DType::F64, {1});
  double host = 0.0;
  backend_.download(total, &host);
  backend_.fill_zero(total);
  return host;
}

LossSum Qwen3Model::forward(const Batch& batch) {
  LossSum result;
  result.tokens = forward_queued(batch);
  result.sum = take_loss_total();
  return result;
}

void Qwen3Model::backward_layer(int l) {
  Backend& be = backend_;
  const ModelActivations& m = acts_layout_->model();
  const TensorView d_resid = act(m.d_resid), d_hidden = act(m.d_hidden);
  const LayerParams& p = layout_.layer(l);
  const LayerActivations& a = acts_layout_->layer(l);
  // Each block's branch gives its norm's output gradient; the norm's backward adds its input
  // gradient into the residual stream's.
  mlps_[l]->backward(*views_, l, d_resid, act(a.ln2), d_hidden);
  be.rmsnorm_backward(d_hidden, act(a.resid_mid), param(p.post_attention_layernorm),
                      act(a.ln2_rstd), d_resid, true, grad(p.post_attention_layernorm));
  mixers_[l]->backward(*views_, l, d_resid, act(a.ln1), d_hidden);
  be.rmsnorm_backward(d_hidden, act(a.resid_in), param(p.input_layernorm), act(a.ln1_rstd), d_resid,
                      true, grad(p.input_layernorm));
}

void Qwen3Model::backward(float loss_scale) {
  QWEN3_CHECK(forward_done_,
              "backward() needs a forward() first (each forward feeds one backward)");
  forward_done_ = false;
  Backend& be = backend_;
  const ModelConfig& c = config_;
  const ModelActivations& m = acts_layout_->model();
  const Shape& bt = (*acts_layout_)[m.tokens].shape;
  const int64_t n = bt[0] * bt[1];
  const TensorView tokens = act(m.tokens).reshaped({n});
  const TensorView d_resid = act(m.d_resid), d_hidden = act(m.d_hidden);

  // Loss and head, chunk by chunk, unless the forward ran them: each chunk's logits (recomputed
  // when the head is chunked) become their own gradient, then give d_hidden's rows and add into
  // the head's gradient.
  if (head_backward_scale_) {
    QWEN3_CHECK(*head_backward_scale_ == loss_scale,
                "backward({}) after a forward that ran the head's backward with loss scale {}: "
                "give both the same scale",
                loss_scale, *head_backward_scale_);
  } else {
    const TensorView targets = act(m.labels_shifted).reshaped({n});
    const int64_t chunk = acts_layout_->logits_rows();
    const bool recompute_logits = head_chunked();
    for (int64_t first = 0; first < n; first += chunk) {
      const int64_t count = std::min(chunk, n - first);
      if (recompute_logits) head_logits(first, count);
      const TensorView logits = act(m.logits).rows(0, count);
      be.cross_entropy_backward(logits, act(m.logits_lse).rows(first, count),
                                targets.rows(first, count), kIgnoreIndex, loss_scale, logits);
      head_backward(first, count);
    }
  }
  head_backward_scale_.reset();
  be.rmsnorm_backward(d_hidden, act(m.resid_final), param(layout_.final_norm()), act(m.final_rstd),
                      d_resid, false, grad(layout_.final_norm()));
  // The final norm and an untied head lie at the end of the buffer; a tied head's gradient went
  // into the embedding, which the last call covers.
  announce_gradients_final(layout_[layout_.final_norm()].offset);

  for (int l = c.num_hidden_layers - 1; l >= 0; --l) {
    // The layer's activations are re-made from its saved input, then consumed. The last layer's
    // are still in the working set from the forward pass.
    if (memory_.recompute_layers && l + 1 < c.num_hidden_layers) forward_layer(l, true);
    backward_layer(l);
    announce_gradients_final(layout_.layer_begin(l));
  }
  be.embedding_backward(tokens, d_resid, grad(layout_.embed_tokens()));
  announce_gradients_final(0);
}

void Qwen3Model::set_gradients_final_hook(GradientsFinalHook hook) {
  gradients_final_hook_ = std::move(hook);
}

void Qwen3Model::announce_gradients_final(int64_t final_from) {
  if (gradients_final_hook_) gradients_final_hook_(final_from);
}

std::vector<float> Qwen3Model::logits_to_host() const {
  QWEN3_CHECK(forward_done_, "logits are available after forward() and before backward()");
  QWEN3_CHECK(!head_backward_scale_,
              "the forward ran with a loss scale, so the logits buffer holds their gradient: "
              "read logits after a forward without one");
  QWEN3_CHECK(
      !head_chunked(),
      "the LM head ran in chunks of {} tokens, so the whole batch's logits were never held; "
      "raise lm_head_chunk_tokens to read them",
      acts_layout_->logits_rows());
  const TensorView logits = act(acts_layout_->model().logits);
  std::vector<float> out(static_cast<size_t>(logits.numel()));
  backend_.download(logits, out.data());
  return out;
}

std::vector<float> Qwen3Model::token_losses_to_host() const {
  QWEN3_CHECK(acts_layout_ != nullptr, "token losses are available after forward()");
  const TensorView losses = act(acts_layout_->model().token_losses);
  std::vector<float> out(static_cast<size_t>(losses.numel()));
  backend_.download(losses, out.data());
  return out;
}

}  // namespace qwen3
