#pragma once
// The op interface every backend implements. The model is written once against it.
//
//  * CPU (cpu_backend.cpp): fp32 storage and arithmetic, OpenMP + BLAS. The reference.
//  * CUDA (cuda_backend.h): bf16 storage for weights and activations, fp32 accumulation.
//
// Public methods check devices, dtypes and shapes once, here, for every backend, then call the
// backend's *_impl. Activations and weights use storage_dtype(); per-row statistics (rstd, lse,
// losses) are always F32; token ids, positions, targets and document ids are I32. Weight
// gradients (dw, dtable), which accumulate over micro-batches, are F32 or storage_dtype().
// Shapes use N = batch · seq tokens, d = hidden size.
#include <memory>
#include <string>

#include "core/tensor/tensor.h"

namespace qwen3 {

// One AdamW step's hyper-parameters. `step` counts updates from 1 (bias correction);
// grad_scale multiplies the gradient first (the clipping coefficient).
struct AdamWHyper {
  double lr = 0.0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
  double grad_scale = 1.0;
  int64_t step = 1;
};

// Owning memory on a backend's device.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* data() = 0;
  virtual size_t bytes() const = 0;
  virtual Device device() const = 0;
  // A view of `shape` elements of `dtype` starting `byte_offset` bytes in; bounds-checked.
  TensorView view(DType dtype, Shape shape, size_t byte_offset = 0);
};

// Bytes held in a backend's live Buffers now, and the most held at once since the backend was
// made or since reset_peak_memory(): the allocator-level figure (PyTorch's
// torch.cuda.max_memory_allocated counts the same way). Library workspaces (cuBLASLt's, NCCL's),
// the CUDA context and host copies are not in it.
struct MemoryStats {
  size_t current_bytes = 0;
  size_t peak_bytes = 0;
};

// The attention kernels a stage asks for (its `attention` key) and the shape it will run them at.
//   auto:  cuDNN's fused attention where the backend has it and it takes the shape, else flash
//   cudnn: cuDNN's (where it cannot, flash, with a warning)
//   flash: the backend's own kernels
struct AttentionRequest {
  std::string kernels = "auto";
  int64_t batch = 0, seq = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  bool documents = false;  // document masking (doc ids given)
};

// What the backend will run for a request: a name for the stage banner ("cudnn 9.25.0",
// "flash", "cpu reference"), and where that is not what was asked, why; `warn` when the
// request deserves a warning (cuDNN present but too old or refusing the shape, or asked for by
// name and absent).
struct AttentionChoice {
  std::string kernels;
  std::string note;
  bool warn = false;
};

class Backend {
 public:
  Backend();
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Device device() const = 0;
  // dtype of weights, gradients and activations on this backend.
  virtual DType storage_dtype() const = 0;

  // Memory on this backend's device, counted in memory_stats().
  std::unique_ptr<Buffer> allocate(size_t bytes);
  MemoryStats memory_stats() const;
  void reset_peak_memory();
  // The count behind memory_stats(), shared with the Buffers it counts so that one freed after
  // its backend is still subtracted (defined in backend.cpp).
  struct MemoryCounter;
  // Host side is float for F32/BF16 views and int32_t for I32 views; conversion happens here.
  void upload(const void* host, const TensorView& dst);
  void download(const TensorView& src, void* host);
  void fill_zero(const TensorView& dst);
  virtual void synchronize() = 0;
  // The stream ops are queued on (a cudaStream_t), so that collectives on device buffers can be
  // queued behind them; null for host backends.
  virtual void* stream() const { return nullptr; }
  // A second stream owned by the backend (a cudaStream_t) for work that should run beside the
  // ops, such as the gradient reduction during the backward pass; null for host backends, whose
  // work runs in call order on the host. Nothing orders the two streams except the two calls
  // below, which order them on the device without the host waiting:
  //   side_waits_for_main(): work queued on side_stream() from now on starts after everything
  //                          queued on stream() so far.
  //   main_waits_for_side(): ops queued from now on start after everything queued on
  //                          side_stream() so far.
  // No-ops on host backends. synchronize() waits for both streams.
  virtual void* side_stream() const { return nullptr; }
  virtual void side_waits_for_main() {}
  virtual void main_waits_for_side() {}

  // tokens[N] i32, table[V, d] -> out[N, d]
  void embedding_forward(const TensorView& tokens, const TensorView& table, const TensorView& out);
  // dtable[V, d] (F32 or storage) += scatter of dout[N, d] by tokens, deterministic
  void embedding_backward(const TensorView& tokens, const TensorView& dout,
                          const TensorView& dtable);

  // x[N, in], w[out, in] -> y[N, out] = x · wᵀ
  void linear_forward(const TensorView& x, const TensorView& w, const TensorView& y);
  // dx[N, in] (=, or += when accumulate_dx; skipped when dx is null), dw[out, in] (F32 or
  // storage) +=
  void linear_backward(const TensorView& dy, const TensorView& x, const TensorView& w,
                       const TensorView* dx, bool accumulate_dx, const TensorView& dw);

  // x[R, C], w[C] -> y[R, C], rstd[R] f32. QK-norm is this op on [N · heads, head_dim].
  void rmsnorm_forward(const TensorView& x, const TensorView& w, float eps, const TensorView& y,
                       const TensorView& rstd);
  // dx[R, C] (= or +=), dw[C] (F32 or storage) +=
  void rmsnorm_backward(const TensorView& dy, const TensorView& x, const TensorView& w,
                        const TensorView& rstd, const TensorView& dx, bool accumulate_dx,
                        const TensorView& dw);

  // The residual add fused with the norm that reads it: sum[R, C] = a + b (may alias a or b),
  // y[R, C] = rmsnorm(sum) · w, rstd[R] f32. Its backward is rmsnorm_backward with accumulate_dx,
  // which adds the norm's input gradient into the residual stream's in the same pass.
  void add_rmsnorm_forward(const TensorView& a, const TensorView& b, const TensorView& w, float eps,
                           const TensorView& sum, const TensorView& y, const TensorView& rstd);

  // Attention's inputs from the fused q/k/v projection, QK-norm fused with RoPE:
  // qkv[N, Hq + 2·Hkv, head_dim], rows of [q heads | k heads | v heads] (one GEMM over the adjacent
  // weights), q_w, k_w[head_dim], positions[N] i32
  //   -> q[N, Hq, head_dim] = rope(rmsnorm(q heads) · q_w), k[N, Hkv, head_dim] likewise with
  //      k_w, v[N, Hkv, head_dim] the v heads copied out packed, q_rstd[N·Hq], k_rstd[N·Hkv] f32
  void qkv_norm_rope_forward(const TensorView& qkv, const TensorView& q_w, const TensorView& k_w,
                             const TensorView& positions, float eps, double theta,
                             const TensorView& q, const TensorView& k, const TensorView& v,
                             const TensorView& q_rstd, const TensorView& k_rstd);
  // dq, dk, dv: the gradients at the forward's q, k, v -> d_qkv[N, Hq + 2·Hkv, head_dim]
  // overwritten (the projection's output gradient), dq_w, dk_w[head_dim] (F32 or storage) +=
  void qkv_norm_rope_backward(const TensorView& dq, const TensorView& dk, const TensorView& dv,
                              const TensorView& qkv, const TensorView& q_w, const TensorView& k_w,
                              const TensorView& q_rstd, const TensorView& k_rstd,
                              const TensorView& positions, double theta, const TensorView& d_qkv,
                              const TensorView& dq_w, const TensorView& dk_w);

  // The batch's positions[N] i32 (restarting at documents) and RoPE base, for the rotations that
  // follow (qkv_norm_rope_*, rope_*) at this head_dim: a backend may make their angles here once
  // (the CUDA backend: a [N, head_dim / 2] table) for the forward and backward to share. The ops
  // still take positions and theta; given others, or after positions is written again, they
  // compute the angles themselves.
  void set_rope_positions(const TensorView& positions, double theta, int64_t head_dim);

  // x[N, heads, head_dim], positions[N] i32 -> y (may alias x)
  void rope_forward(const TensorView& x, const TensorView& positions, double theta,
                    const TensorView& y);
  void rope_backward(const TensorView& dy, const TensorView& positions, double theta,
                     const TensorView& dx);

  // Chooses the attention kernels the ops below run from now on; the trainer calls it at the start
  // of each stage. Throws for a `kernels` other than auto, cudnn or flash.
  AttentionChoice choose_attention(const AttentionRequest& request);

  // The host's copy of the document ids uploaded for the coming attention calls, doc_ids[batch ×
  // seq]: kernels that take documents by their extents rather than by per-token ids (cuDNN's
  // ragged layout) find them here, without reading the device's copy back. Calls that pass
  // doc_ids without it run kernels that need only the ids.
  void set_documents(const int32_t* doc_ids, int64_t batch, int64_t seq);

  // q[B, T, Hq, hd], k, v[B, T, Hkv, hd], doc_ids[B, T] i32 or null
  //   -> out[B, T, Hq, hd], lse[B, Hq, T] f32 (its layout is the implementation's own: only
  //   attention_backward reads it)
  void attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                         const TensorView* doc_ids, const TensorView& out, const TensorView& lse);
  // dq, dk, dv overwritten
  void attention_backward(const TensorView& dout, const TensorView& q, const TensorView& k,
                          const TensorView& v, const TensorView& out, const TensorView& lse,
                          const TensorView* doc_ids, const TensorView& dq, const TensorView& dk,
                          const TensorView& dv);

  // gate_up[N, 2I], each row [gate (I) | up (I)] as one GEMM over the adjacent gate_proj and
  // up_proj weights gives it -> h[N, I] = silu(gate) ⊙ up
  void swiglu_forward(const TensorView& gate_up, const TensorView& h);
  // dh[N, I] -> d_gate_up[N, 2I] in the same [dgate | dup] rows; may alias gate_up
  void swiglu_backward(const TensorView& dh, const TensorView& gate_up,
                       const TensorView& d_gate_up);

  // out = a + b, all the same shape (out may alias a or b)
  void add(const TensorView& a, const TensorView& b, const TensorView& out);

  // logits[N, V], targets[N] i32 (shifted; ignore_index skipped) -> losses[N] f32, lse[N] f32
  void cross_entropy_forward(const TensorView& logits, const TensorView& targets,
                             int32_t ignore_index, const TensorView& losses, const TensorView& lse);
  // dlogits[N, V] = scale · (softmax − onehot); may alias logits
  void cross_entropy_backward(const TensorView& logits, const TensorView& lse,
                              const TensorView& targets, int32_t ignore_index, float scale,
                              const TensorView& dlogits);
  // Both at once, for training, where the loss scale is known before the forward: losses and lse
  // as cross_entropy_forward gives, dlogits (may alias logits) as cross_entropy_backward gives
  // with that lse. The reference runs the two in sequence; a backend may fuse them (CUDA: one
  // kernel, the logits read twice and written once).
  void cross_entropy_forward_backward(const TensorView& logits, const TensorView& targets,
                                      int32_t ignore_index, float scale, const TensorView& losses,
                                      const TensorView& lse, const TensorView& dlogits);

  // ---- optimizer ops. "float-like" below means F32 or storage_dtype(). ----
  // dst[n] = src[n], converted to dst's dtype (fp32 master weights -> storage weights). Both
  // float-like.
  void copy(const TensorView& src, const TensorView& dst);
  // dst[n] f32 += src[n] float-like (gradient accumulation in fp32)
  void accumulate(const TensorView& src, const TensorView& dst);
  // Σ x² of x[n] float-like, accumulated in double; returned to the host.
  double sum_squares(const TensorView& x);
  // total[1] f64 += Σ x[n] f32, in double and a fixed order, without waiting for the device.
  void accumulate_sum(const TensorView& x, const TensorView& total);
  // master[n], m[n], v[n] f32 updated in place from grad[n] float-like; see AdamWHyper.
  void adamw_update(const TensorView& master, const TensorView& grad, const TensorView& m,
                    const TensorView& v, const AdamWHyper& hyper);

 protected:
  virtual std::unique_ptr<Buffer> allocate_impl(size_t bytes) = 0;
  virtual void upload_impl(const void* host, const TensorView& dst) = 0;
  virtual void download_impl(const TensorView& src, void* host) = 0;
  virtual void fill_zero_impl(const TensorView& dst) = 0;
  virtual void embedding_forward_impl(const TensorView& tokens, const TensorView& table,
                                      const TensorView& out) = 0;
  virtual void embedding_backward_impl(const TensorView& tokens, const TensorView& dout,
                                       const TensorView& dtable) = 0;
  virtual void linear_forward_impl(const TensorView& x, const TensorView& w,
                                   const TensorView& y) = 0;
  virtual void linear_backward_impl(const TensorView& dy, const TensorView& x, const TensorView& w,
                                    const TensorView* dx, bool accumulate_dx,
                                    const TensorView& dw) = 0;
  virtual void rmsnorm_forward_impl(const TensorView& x, const TensorView& w, float eps,
                                    const TensorView& y, const TensorView& rstd) = 0;
  virtual void rmsnorm_backward_impl(const TensorView& dy, const TensorView& x, const TensorView& w,
                                     const TensorView& rstd, const TensorView& dx,
                                     bool accumulate_dx, const TensorView& dw) = 0;
  virtual void add_rmsnorm_forward_impl(const TensorView& a, const TensorView& b,
                                        const TensorView& w, float eps, const TensorView& sum,
                                        const TensorView& y, const TensorView& rstd) = 0;
  virtual void qkv_norm_rope_forward_impl(const TensorView& qkv, const TensorView& q_w,
                                          const TensorView& k_w, const TensorView& positions,
                                          float eps, double theta, const TensorView& q,
                                          const TensorView& k, const TensorView& v,
                                          const TensorView& q_rstd, const TensorView& k_rstd) = 0;
  virtual void qkv_norm_rope_backward_impl(const TensorView& dq, const TensorView& dk,
                                           const TensorView& dv, const TensorView& qkv,
                                           const TensorView& q_w, const TensorView& k_w,
                                           const TensorView& q_rstd, const TensorView& k_rstd,
                                           const TensorView& positions, double theta,
                                           const TensorView& d_qkv, const TensorView& dq_w,
                                           const TensorView& dk_w) = 0;
  // The default: the rotations compute their angles.
  virtual void set_rope_positions_impl(const TensorView& positions, double theta, int64_t head_dim);
  virtual void rope_impl(const TensorView& x, const TensorView& positions, double theta,
                         const TensorView& y, bool backward) = 0;
  // The default: the backend has one attention implementation, named by name().
  virtual AttentionChoice choose_attention_impl(const AttentionRequest& request);
  // The default: every attention kernel here masks by the ids themselves.
  virtual void set_documents_impl(const int32_t* doc_ids, int64_t batch, int64_t seq);
  virtual void attention_forward_impl(const TensorView& q, const TensorView& k, const TensorView& v,
                                      const TensorView* doc_ids, const TensorView& out,
                                      const TensorView& lse) = 0;
  virtual void attention_backward_impl(const TensorView& dout, const TensorView& q,
                                       const TensorView& k, const TensorView& v,
                                       const TensorView& out, const TensorView& lse,
                                       const TensorView* doc_ids, const TensorView& dq,
                                       const TensorView& dk, const TensorView& dv) = 0;
  virtual void swiglu_forward_impl(const TensorView& gate_up, const TensorView& h) = 0;
  virtual void swiglu_backward_impl(const TensorView& dh, const TensorView& gate_up,
                                    const TensorView& d_gate_up) = 0;
  virtual void add_impl(const TensorView& a, const TensorView& b, const TensorView& out) = 0;
  virtual void cross_entropy_forward_impl(const TensorView& logits, const TensorView& targets,
                                          int32_t ignore_index, const TensorView& losses,
                                          const TensorView& lse) = 0;
  virtual void cross_entropy_backward_impl(const TensorView& logits, const TensorView& lse,
                                           const TensorView& targets, int32_t ignore_index,
                                           float scale, const TensorView& dlogits) = 0;
  // The default: forward, then backward.
  virtual void cross_entropy_forward_backward_impl(const TensorView& logits,
                                                   const TensorView& targets, int32_t ignore_index,
                                                   float scale, const TensorView& losses,
                                                   const TensorView& lse,
                                                   const TensorView& dlogits);
  virtual void copy_impl(const TensorView& src, const TensorView& dst) = 0;
  virtual void accumulate_impl(const TensorView& src, const TensorView& dst) = 0;
  virtual double sum_squares_impl(const TensorView& x) = 0;
  virtual void accumulate_sum_impl(const TensorView& x, const TensorView& total) = 0;
  virtual void adamw_update_impl(const TensorView& master, const TensorView& grad,
                                 const TensorView& m, const TensorView& v,
                                 const AdamWHyper& hyper) = 0;

 private:
  std::shared_ptr<MemoryCounter> memory_;
};

// The fp32 reference backend. `threads` <= 0 keeps OpenMP's default.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace qwen3
