#include "core/ops/backend.h"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "core/util/error.h"

namespace qwen3 {

TensorView Buffer::view(DType dtype, Shape shape, size_t byte_offset) {
  TensorView v;
  v.dtype = dtype;
  v.device = device();
  v.shape = shape;
  QWEN3_CHECK(byte_offset + v.bytes() <= bytes(),
              "view of {} {} at byte {} overruns a {}-byte buffer", shape.str(), dtype_name(dtype),
              byte_offset, bytes());
  v.data = static_cast<char*>(data()) + byte_offset;
  return v;
}

struct Backend::MemoryCounter {
  std::mutex mutex;
  MemoryStats stats;
};

namespace {

// A backend's buffer, counted while it lives.
class CountedBuffer final : public Buffer {
 public:
  CountedBuffer(std::unique_ptr<Buffer> inner, std::shared_ptr<Backend::MemoryCounter> counter)
      : inner_(std::move(inner)), counter_(std::move(counter)) {}
  ~CountedBuffer() override {
    const std::lock_guard<std::mutex> lock(counter_->mutex);
    counter_->stats.current_bytes -= inner_->bytes();
  }
  void* data() override { return inner_->data(); }
  size_t bytes() const override { return inner_->bytes(); }
  Device device() const override { return inner_->device(); }

 private:
  std::unique_ptr<Buffer> inner_;
  std::shared_ptr<Backend::MemoryCounter> counter_;
};

}  // namespace

Backend::Backend() : memory_(std::make_shared<MemoryCounter>()) {}

std::unique_ptr<Buffer> Backend::allocate(size_t bytes) {
  std::unique_ptr<Buffer> inner = allocate_impl(bytes);
  {
    const std::lock_guard<std::mutex> lock(memory_->mutex);
    MemoryStats& s = memory_->stats;
    s.current_bytes += inner->bytes();
    s.peak_bytes = std::max(s.peak_bytes, s.current_bytes);
  }
  return std::make_unique<CountedBuffer>(std::move(inner), memory_);
}

MemoryStats Backend::memory_stats() const {
  const std::lock_guard<std::mutex> lock(memory_->mutex);
  return memory_->stats;
}

void Backend::reset_peak_memory() {
  const std::lock_guard<std::mutex> lock(memory_->mutex);
  memory_->stats.peak_bytes = memory_->stats.current_bytes;
}

namespace {

// Validates one argument of an op: present, on the backend's device, of the expected dtype and
// shape. Errors name the op and the argument.
void expect(const Backend& backend, const char* op, const char* arg, const TensorView& t,
            DType dtype, const Shape& shape) {
  QWEN3_CHECK(t.data != nullptr || t.numel() == 0, "{}: argument '{}' has no memory", op, arg);
  QWEN3_CHECK(t.device == backend.device(), "{}: argument '{}' is on {}, the {} backend needs {}",
              op, arg, device_name(t.device), backend.name(), device_name(backend.device()));
  QWEN3_CHECK(t.dtype == dtype, "{}: argument '{}' is {}, expected {}", op, arg,
              dtype_name(t.dtype), dtype_name(dtype));
  QWEN3_CHECK(t.shape == shape, "{}: argument '{}' has shape {}, expected {}", op, arg,
              t.shape.str(), shape.str());
}

// Weight gradients and the optimizer ops' gradients and sums: fp32 or the backend's storage dtype
// (the model's gradient dtype, Qwen3Model::grad_dtype).
void expect_float_like(const Backend& backend, const char* op, const char* arg, const TensorView& t,
                       const Shape& shape) {
  const DType dtype = t.dtype == DType::F32 ? DType::F32 : backend.storage_dtype();
  expect(backend, op, arg, t, dtype, shape);
}

void expect_rank(const char* op, const char* arg, const TensorView& t, int rank) {
  QWEN3_CHECK(t.shape.rank() == rank, "{}: argument '{}' has shape {}, expected rank {}", op, arg,
              t.shape.str(), rank);
}

}  // namespace

void Backend::upload(const void* host, const TensorView& dst) {
  QWEN3_CHECK(dst.device == device(), "upload: destination is on {}, backend is {}",
              device_name(dst.device), name());
  upload_impl(host, dst);
}

void Backend::download(const TensorView& src, void* host) {
  QWEN3_CHECK(src.device == device(), "download: source is on {}, backend is {}",
              device_name(src.device), name());
  download_impl(src, host);
}

void Backend::fill_zero(const TensorView& dst) {
  QWEN3_CHECK(dst.device == device(), "fill_zero: tensor is on {}, backend is {}",
              device_name(dst.device), name());
  fill_zero_impl(dst);
}

void Backend::embedding_forward(const TensorView& tokens, const TensorView& table,
                                const TensorView& out) {
  const char* op = "embedding_forward";
  expect_rank(op, "tokens", tokens, 1);
  expect_rank(op, "table", table, 2);
  const DType s = storage_dtype();
  expect(*this, op, "tokens", tokens, DType::I32, {tokens.shape[0]});
  expect(*this, op, "table", table, s, {table.shape[0], table.shape[1]});
  expect(*this, op, "out", out, s, {tokens.shape[0], table.shape[1]});
  embedding_forward_impl(tokens, table, out);
}

void Backend::embedding_backward(const TensorView& tokens, const TensorView& dout,
                                 const TensorView& dtable) {
  const char* op = "embedding_backward";
  expect_rank(op, "tokens", tokens, 1);
  expect_rank(op, "dtable", dtable, 2);
  const DType s = storage_dtype();
  expect(*this, op, "tokens", tokens, DType::I32, {tokens.shape[0]});
  expect(*this, op, "dout", dout, s, {tokens.shape[0], dtable.shape[1]});
  expect_float_like(*this, op, "dtable", dtable, {dtable.shape[0], dtable.shape[1]});
  embedding_backward_impl(tokens, dout, dtable);
}

void Backend::linear_forward(const TensorView& x, const TensorView& w, const TensorView& y) {
  const char* op = "linear_forward";
  expect_rank(op, "x", x, 2);
  expect_rank(op, "w", w, 2);
  const DType s = storage_dtype();
  const int64_t rows = x.shape[0], in = w.shape[1], out = w.shape[0];
  expect(*this, op, "x", x, s, {rows, in});
  expect(*this, op, "w", w, s, {out, in});
  expect(*this, op, "y", y, s, {rows, out});
  linear_forward_impl(x, w, y);
}

void Backend::linear_backward(const TensorView& dy, const TensorView& x, const TensorView& w,
                              const TensorView* dx, bool accumulate_dx, const TensorView& dw) {
  const char* op = "linear_backward";
  expect_rank(op, "x", x, 2);
  expect_rank(op, "w", w, 2);
  const DType s = storage_dtype();
  const int64_t rows = x.shape[0], in = w.shape[1], out = w.shape[0];
  expect(*this, op, "dy", dy, s, {rows, out});
  expect(*this, op, "x", x, s, {rows, in});
  expect(*this, op, "w", w, s, {out, in});
  if (dx) expect(*this, op, "dx", *dx, s, {rows, in});
  expect_float_like(*this, op, "dw", dw, {out, in});
  linear_backward_impl(dy, x, w, dx, accumulate_dx, dw);
}

void Backend::rmsnorm_forward(const TensorView& x, const TensorView& w, float eps,
                              const TensorView& y, const TensorView& rstd) {
  const char* op = "rmsnorm_forward";
  expect_rank(op, "x", x, 2);
  const DType s = storage_dtype();
  const int64_t rows = x.shape[0], cols = x.shape[1];
  expect(*this, op, "w", w, s, {cols});
  expect(*this, op, "y", y, s, {rows, cols});
  expect(*this, op, "rstd", rstd, DType::F32, {rows});
  expect(*this, op, "x", x, s, {rows, cols});
  QWEN3_CHECK(eps > 0.0f, "{}: eps must be positive, got {}", op, eps);
  rmsnorm_forward_impl(x, w, eps, y, rstd);
}

void Backend::rmsnorm_backward(const TensorView& dy, const TensorView& x, const TensorView& w,
                               const TensorView& rstd, const TensorView& dx, bool accumulate_dx,
                               const TensorView& dw) {
  const char* op = "rmsnorm_backward";
  expect_rank(op, "x", x, 2);
  const DType s = storage_dtype();
  const int64_t rows = x.shape[0], cols = x.shape[1];
  expect(*this, op, "dy", dy, s, {rows, cols});
  expect(*this, op, "x", x, s, {rows, cols});
  expect(*this, op, "w", w, s, {cols});
  expect(*this, op, "rstd", rstd, DType::F32, {rows});
  expect(*this, op, "dx", dx, s, {rows, cols});
  expect_float_like(*this, op, "dw", dw, {cols});
  rmsnorm_backward_impl(dy, x, w, rstd, dx, accumulate_dx, dw);
}

void Backend::add_rmsnorm_forward(const TensorView& a, const TensorView& b, const TensorView& w,
                                  float eps, const TensorView& sum, const TensorView& y,
                                  const TensorView& rstd) {
  const char* op = "add_rmsnorm_forward";
  expect_rank(op, "a", a, 2);
  const DType s = storage_dtype();
  const int64_t rows = a.shape[0], cols = a.shape[1];
  expect(*this, op, "a", a, s, {rows, cols});
  expect(*this, op, "b", b, s, {rows, cols});
  expect(*this, op, "w", w, s, {cols});
  expect(*this, op, "sum", sum, s, {rows, cols});
  expect(*this, op, "y", y, s, {rows, cols});
  expect(*this, op, "rstd", rstd, DType::F32, {rows});
  QWEN3_CHECK(eps > 0.0f, "{}: eps must be positive, got {}", op, eps);
  add_rmsnorm_forward_impl(a, b, w, eps, sum, y, rstd);
}

namespace {

// The arguments qkv_norm_rope's forward and backward share: the fused projection
// qkv[N, Hq + 2·Hkv, head_dim] with an even head_dim, the head counts of q[N, Hq, head_dim] and
// k[N, Hkv, head_dim] (or their gradients) adding up to it, the two weights and the positions.
void expect_qkv_norm_rope(const Backend& backend, const char* op, const TensorView& qkv,
                          const char* q_name, const TensorView& q, const char* k_name,
                          const TensorView& k, const TensorView& q_w, const TensorView& k_w,
                          const TensorView& positions, double theta) {
  expect_rank(op, "qkv", qkv, 3);
  expect_rank(op, q_name, q, 3);
  expect_rank(op, k_name, k, 3);
  const int64_t n = qkv.shape[0], q_heads = q.shape[1], kv_heads = k.shape[1],
                head_dim = qkv.shape[2];
  QWEN3_CHECK(qkv.shape[1] == q_heads + 2 * kv_heads,
              "{}: qkv {} must hold {}'s {} heads, then {}'s {} twice (k and v), {} in all", op,
              qkv.shape.str(), q_name, q_heads, k_name, kv_heads, q_heads + 2 * kv_heads);
  expect(backend, op, "qkv", qkv, backend.storage_dtype(), {n, q_heads + 2 * kv_heads, head_dim});
  expect(backend, op, q_name, q, backend.storage_dtype(), {n, q_heads, head_dim});
  expect(backend, op, k_name, k, backend.storage_dtype(), {n, kv_heads, head_dim});
  expect(backend, op, "q_w", q_w, backend.storage_dtype(), {head_dim});
  expect(backend, op, "k_w", k_w, backend.storage_dtype(), {head_dim});
  expect(backend, op, "positions", positions, DType::I32, {n});
  QWEN3_CHECK(head_dim % 2 == 0, "{}: head_dim {} must be even", op, head_dim);
  QWEN3_CHECK(theta > 0.0, "{}: theta must be positive, got {}", op, theta);
}

}  // namespace

void Backend::qkv_norm_rope_forward(const TensorView& qkv, const TensorView& q_w,
                                    const TensorView& k_w, const TensorView& positions, float eps,
                                    double theta, const TensorView& q, const TensorView& k,
                                    const TensorView& v, const TensorView& q_rstd,
                                    const TensorView& k_rstd) {
  const char* op = "qkv_norm_rope_forward";
  expect_qkv_norm_rope(*this, op, qkv, "q", q, "k", k, q_w, k_w, positions, theta);
  expect(*this, op, "v", v, storage_dtype(), k.shape);
  expect(*this, op, "q_rstd", q_rstd, DType::F32, {q.shape[0] * q.shape[1]});
  expect(*this, op, "k_rstd", k_rstd, DType::F32, {k.shape[0] * k.shape[1]});
  QWEN3_CHECK(eps > 0.0f, "{}: eps must be positive, got {}", op, eps);
  qkv_norm_rope_forward_impl(qkv, q_w, k_w, positions, eps, theta, q, k, v, q_rstd, k_rstd);
}

void Backend::qkv_norm_rope_backward(const TensorView& dq, const TensorView& dk,
                                     const TensorView& dv, const TensorView& qkv,
                                     const TensorView& q_w, const TensorView& k_w,
                                     const TensorView& q_rstd, const TensorView& k_rstd,
                                     const TensorView& positions, double theta,
                                     const TensorView& d_qkv, const TensorView& dq_w,
                                     const TensorView& dk_w) {
  const char* op = "qkv_norm_rope_backward";
  expect_qkv_norm_rope(*this, op, qkv, "dq", dq, "dk", dk, q_w, k_w, positions, theta);
  expect(*this, op, "dv", dv, storage_dtype(), dk.shape);
  expect(*this, op, "q_rstd", q_rstd, DType::F32, {dq.shape[0] * dq.shape[1]});
  expect(*this, op, "k_rstd", k_rstd, DType::F32, {dk.shape[0] * dk.shape[1]});
  expect(*this, op, "d_qkv", d_qkv, storage_dtype(), qkv.shape);
  expect_float_like(*this, op, "dq_w", dq_w, q_w.shape);
  expect_float_like(*this, op, "dk_w", dk_w, k_w.shape);
  qkv_norm_rope_backward_impl(dq, dk, dv, qkv, q_w, k_w, q_rstd, k_rstd, positions, theta, d_qkv,
                              dq_w, dk_w);
}

void Backend::set_rope_positions(const TensorView& positions, double theta, int64_t head_dim) {
  expect_rank("set_rope_positions", "positions", positions, 1);
  expect(*this, "set_rope_positions", "positions", positions, DType::I32, positions.shape);
  QWEN3_CHECK(head_dim > 0 && head_dim % 2 == 0 && theta > 0,
              "set_rope_positions: head_dim {} must be even and positive, theta {} positive",
              head_dim, theta);
  set_rope_positions_impl(positions, theta, head_dim);
}

void Backend::set_rope_positions_impl(const TensorView&, double, int64_t) {}

void Backend::rope_forward(const TensorView& x, const TensorView& positions, double theta,
                           const TensorView& y) {
  const char* op = "rope_forward";
  expect_rank(op, "x", x, 3);
  expect(*this, op, "x", x, storage_dtype(), {x.shape[0], x.shape[1], x.shape[2]});
  expect(*this, op, "positions", positions, DType::I32, {x.shape[0]});
  expect(*this, op, "y", y, storage_dtype(), {x.shape[0], x.shape[1], x.shape[2]});
  QWEN3_CHECK(x.shape[2] % 2 == 0, "{}: head_dim {} must be even", op, x.shape[2]);
  QWEN3_CHECK(theta > 0.0, "{}: theta must be positive, got {}", op, theta);
  rope_impl(x, positions, theta, y, false);
}

void Backend::rope_backward(const TensorView& dy, const TensorView& positions, double theta,
                            const TensorView& dx) {
  const char* op = "rope_backward";
  expect_rank(op, "dy", dy, 3);
  expect(*this, op, "dy", dy, storage_dtype(), {dy.shape[0], dy.shape[1], dy.shape[2]});
  expect(*this, op, "positions", positions, DType::I32, {dy.shape[0]});
  expect(*this, op, "dx", dx, storage_dtype(), {dy.shape[0], dy.shape[1], dy.shape[2]});
  QWEN3_CHECK(dy.shape[2] % 2 == 0, "{}: head_dim {} must be even", op, dy.shape[2]);
  rope_impl(dy, positions, theta, dx, true);
}

namespace {

struct AttentionDims {
  int64_t batch, seq, q_heads, kv_heads, head_dim;
};

AttentionDims attention_dims(const char* op, const TensorView& q, const TensorView& k) {
  expect_rank(op, "q", q, 4);
  expect_rank(op, "k", k, 4);
  AttentionDims d{q.shape[0], q.shape[1], q.shape[2], k.shape[2], q.shape[3]};
  QWEN3_CHECK(d.kv_heads > 0 && d.q_heads % d.kv_heads == 0,
              "{}: {} query heads are not a multiple of {} KV heads", op, d.q_heads, d.kv_heads);
  return d;
}

}  // namespace

AttentionChoice Backend::choose_attention(const AttentionRequest& request) {
  QWEN3_CHECK(request.kernels == "auto" || request.kernels == "cudnn" || request.kernels == "flash",
              "attention kernels '{}' are not one of auto, cudnn, flash", request.kernels);
  return choose_attention_impl(request);
}

AttentionChoice Backend::choose_attention_impl(const AttentionRequest& request) {
  AttentionChoice choice{name(), "", false};
  if (request.kernels != "auto")
    choice.note = fmt::format("the {} backend has one attention implementation", name());
  return choice;
}

void Backend::set_documents(const int32_t* doc_ids, int64_t batch, int64_t seq) {
  QWEN3_CHECK(doc_ids != nullptr && batch > 0 && seq > 0,
              "set_documents: {} document ids for batch {} × {} tokens", doc_ids ? "given" : "no",
              batch, seq);
  set_documents_impl(doc_ids, batch, seq);
}

void Backend::set_documents_impl(const int32_t*, int64_t, int64_t) {}

void Backend::attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                                const TensorView* doc_ids, const TensorView& out,
                                const TensorView& lse) {
  const char* op = "attention_forward";
  const AttentionDims d = attention_dims(op, q, k);
  const DType s = storage_dtype();
  expect(*this, op, "q", q, s, {d.batch, d.seq, d.q_heads, d.head_dim});
  expect(*this, op, "k", k, s, {d.batch, d.seq, d.kv_heads, d.head_dim});
  expect(*this, op, "v", v, s, {d.batch, d.seq, d.kv_heads, d.head_dim});
  if (doc_ids) expect(*this, op, "doc_ids", *doc_ids, DType::I32, {d.batch, d.seq});
  expect(*this, op, "out", out, s, {d.batch, d.seq, d.q_heads, d.head_dim});
  expect(*this, op, "lse", lse, DType::F32, {d.batch, d.q_heads, d.seq});
  attention_forward_impl(q, k, v, doc_ids, out, lse);
}

void Backend::attention_backward(const TensorView& dout, const TensorView& q, const TensorView& k,
                                 const TensorView& v, const TensorView& out, const TensorView& lse,
                                 const TensorView* doc_ids, const TensorView& dq,
                                 const TensorView& dk, const TensorView& dv) {
  const char* op = "attention_backward";
  const AttentionDims d = attention_dims(op, q, k);
  const DType s = storage_dtype();
  const Shape q_shape{d.batch, d.seq, d.q_heads, d.head_dim};
  const Shape kv_shape{d.batch, d.seq, d.kv_heads, d.head_dim};
  expect(*this, op, "dout", dout, s, q_shape);
  expect(*this, op, "q", q, s, q_shape);
  expect(*this, op, "k", k, s, kv_shape);
  expect(*this, op, "v", v, s, kv_shape);
  expect(*this, op, "out", out, s, q_shape);
  expect(*this, op, "lse", lse, DType::F32, {d.batch, d.q_heads, d.seq});
  if (doc_ids) expect(*this, op, "doc_ids", *doc_ids, DType::I32, {d.batch, d.seq});
  expect(*this, op, "dq", dq, s, q_shape);
  expect(*this, op, "dk", dk, s, kv_shape);
  expect(*this, op, "dv", dv, s, kv_shape);
  attention_backward_impl(dout, q, k, v, out, lse, doc_ids, dq, dk, dv);
}

void Backend::swiglu_forward(const TensorView& gate_up, const TensorView& h) {
  const char* op = "swiglu_forward";
  expect_rank(op, "gate_up", gate_up, 2);
  const int64_t rows = gate_up.shape[0], inter = gate_up.shape[1] / 2;
  QWEN3_CHECK(gate_up.shape[1] % 2 == 0, "{}: gate_up has shape {}, expected [rows, 2 · inter]", op,
              gate_up.shape.str());
  expect(*this, op, "gate_up", gate_up, storage_dtype(), {rows, 2 * inter});
  expect(*this, op, "h", h, storage_dtype(), {rows, inter});
  swiglu_forward_impl(gate_up, h);
}

void Backend::swiglu_backward(const TensorView& dh, const TensorView& gate_up,
                              const TensorView& d_gate_up) {
  const char* op = "swiglu_backward";
  expect_rank(op, "dh", dh, 2);
  const int64_t rows = dh.shape[0], inter = dh.shape[1];
  expect(*this, op, "dh", dh, storage_dtype(), {rows, inter});
  expect(*this, op, "gate_up", gate_up, storage_dtype(), {rows, 2 * inter});
  expect(*this, op, "d_gate_up", d_gate_up, storage_dtype(), {rows, 2 * inter});
  swiglu_backward_impl(dh, gate_up, d_gate_up);
}

void Backend::add(const TensorView& a, const TensorView& b, const TensorView& out) {
  for (const auto& [arg, t] :
       {std::pair<const char*, const TensorView&>{"a", a}, {"b", b}, {"out", out}})
    expect(*this, "add", arg, t, storage_dtype(), a.shape);
  add_impl(a, b, out);
}

namespace {

// The cross-entropy ops' arguments: logits[rows, vocab] and dlogits (where given) in the storage
// dtype, targets[rows] i32, losses (where given) and lse [rows] f32.
void expect_cross_entropy(const Backend& backend, const char* op, const TensorView& logits,
                          const TensorView& targets, const TensorView* losses,
                          const TensorView& lse, const TensorView* dlogits) {
  expect_rank(op, "logits", logits, 2);
  const int64_t rows = logits.shape[0];
  expect(backend, op, "logits", logits, backend.storage_dtype(), {rows, logits.shape[1]});
  expect(backend, op, "targets", targets, DType::I32, {rows});
  if (losses) expect(backend, op, "losses", *losses, DType::F32, {rows});
  expect(backend, op, "lse", lse, DType::F32, {rows});
  if (dlogits)
    expect(backend, op, "dlogits", *dlogits, backend.storage_dtype(), {rows, logits.shape[1]});
}

}  // namespace

void Backend::cross_entropy_forward(const TensorView& logits, const TensorView& targets,
                                    int32_t ignore_index, const TensorView& losses,
                                    const TensorView& lse) {
  expect_cross_entropy(*this, "cross_entropy_forward", logits, targets, &losses, lse, nullptr);
  cross_entropy_forward_impl(logits, targets, ignore_index, losses, lse);
}

void Backend::cross_entropy_backward(const TensorView& logits, const TensorView& lse,
                                     const TensorView& targets, int32_t ignore_index, float scale,
                                     const TensorView& dlogits) {
  expect_cross_entropy(*this, "cross_entropy_backward", logits, targets, nullptr, lse, &dlogits);
  cross_entropy_backward_impl(logits, lse, targets, ignore_index, scale, dlogits);
}

void Backend::cross_entropy_forward_backward(const TensorView& logits, const TensorView& targets,
                                             int32_t ignore_index, float scale,
                                             const TensorView& losses, const TensorView& lse,
                                             const TensorView& dlogits) {
  expect_cross_entropy(*this, "cross_entropy_forward_backward", logits, targets, &losses, lse,
                       &dlogits);
  cross_entropy_forward_backward_impl(logits, targets, ignore_index, scale, losses, lse, dlogits);
}

void Backend::cross_entropy_forward_backward_impl(const TensorView& logits,
                                                  const TensorView& targets, int32_t ignore_index,
                                                  float scale, const TensorView& losses,
                                                  const TensorView& lse,
                                                  const TensorView& dlogits) {
  cross_entropy_forward_impl(logits, targets, ignore_index, losses, lse);
  cross_entropy_backward_impl(logits, lse, targets, ignore_index, scale, dlogits);
}

void Backend::copy(const TensorView& src, const TensorView& dst) {
  expect_float_like(*this, "copy", "src", src, src.shape);
  expect_float_like(*this, "copy", "dst", dst, src.shape);
  copy_impl(src, dst);
}

void Backend::accumulate(const TensorView& src, const TensorView& dst) {
  expect_float_like(*this, "accumulate", "src", src, src.shape);
  expect(*this, "accumulate", "dst", dst, DType::F32, src.shape);
  accumulate_impl(src, dst);
}

double Backend::sum_squares(const TensorView& x) {
  expect_float_like(*this, "sum_squares", "x", x, x.shape);
  return sum_squares_impl(x);
}

void Backend::accumulate_sum(const TensorView& x, const TensorView& total) {
  expect_rank("accumulate_sum", "x", x, 1);
  expect(*this, "accumulate_sum", "x", x, DType::F32, x.shape);
  expect(*this, "accumulate_sum", "total", total, DType::F64, {1});
  accumulate_sum_impl(x, total);
}

void Backend::adamw_update(const TensorView& master, const TensorView& grad, const TensorView& m,
                           const TensorView& v, const AdamWHyper& hyper) {
  const char* op = "adamw_update";
  expect_rank(op, "master", master, 1);
  expect(*this, op, "master", master, DType::F32, master.shape);
  expect_float_like(*this, op, "grad", grad, master.shape);
  expect(*this, op, "m", m, DType::F32, master.shape);
  expect(*this, op, "v", v, DType::F32, master.shape);
  QWEN3_CHECK(hyper.step >= 1, "{}: step counts from 1, got {}", op, hyper.step);
  QWEN3_CHECK(hyper.beta1 >= 0 && hyper.beta1 < 1 && hyper.beta2 >= 0 && hyper.beta2 < 1,
              "{}: betas must lie in [0, 1), got {} and {}", op, hyper.beta1, hyper.beta2);
  adamw_update_impl(master, grad, m, v, hyper);
}

}  // namespace qwen3
