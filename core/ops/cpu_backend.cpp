// The fp32 CPU reference backend: thin, checked calls into core/kernels/cpu.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "core/kernels/cpu/adamw.h"
#include "core/kernels/cpu/elementwise.h"
#include "core/kernels/cpu/add_rmsnorm.h"
#include "core/kernels/cpu/attention.h"
#include "core/kernels/cpu/cross_entropy.h"
#include "core/kernels/cpu/embedding.h"
#include "core/kernels/cpu/linear.h"
#include "core/kernels/cpu/qk_norm_rope.h"
#include "core/kernels/cpu/rmsnorm.h"
#include "core/kernels/cpu/rope.h"
#include "core/kernels/cpu/sum_squares.h"
#include "core/kernels/cpu/swiglu.h"
#include "core/ops/backend.h"
#include "core/util/error.h"

namespace qwen3 {

namespace {

class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(size_t bytes) : bytes_(bytes) {
    // 64-byte alignment: whole cache lines, and AVX-512 loads never straddle two.
    const size_t rounded = (bytes + 63) / 64 * 64;
    data_ = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    QWEN3_CHECK(rounded == 0 || data_ != nullptr, "cannot allocate {} bytes of host memory", bytes);
    if (data_) std::memset(data_, 0, rounded);
  }
  ~HostBuffer() override { std::free(data_); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  void* data() override { return data_; }
  size_t bytes() const override { return bytes_; }
  Device device() const override { return Device::CPU; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

const float* f32(const TensorView& t) {
  return t.as<const float>();
}
float* f32_mut(const TensorView& t) {
  return t.as<float>();
}
const int32_t* i32(const TensorView& t) {
  return t.as<const int32_t>();
}

// Ids are checked before any loop reads through them: an out-of-range id would read (forward) or
// write (backward) outside the table.
// `allowed_extra` is an id accepted besides [0, limit): the ignore index of targets.
void check_ids(const TensorView& ids, int64_t limit, const char* what,
               std::optional<int32_t> allowed_extra = std::nullopt) {
  const int32_t* p = i32(ids);
  for (int64_t i = 0; i < ids.numel(); ++i)
    QWEN3_CHECK((p[i] >= 0 && p[i] < limit) || p[i] == allowed_extra,
                "{} {} at index {} is outside [0, {})", what, p[i], i, limit);
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) {
    if (threads > 0) omp_set_num_threads(threads);
  }

  std::string name() const override { return "cpu"; }
  Device device() const override { return Device::CPU; }
  DType storage_dtype() const override { return DType::F32; }
  std::unique_ptr<Buffer> allocate_impl(size_t bytes) override {
    return std::make_unique<HostBuffer>(bytes);
  }
  void synchronize() override {}

 protected:
  void upload_impl(const void* host, const TensorView& dst) override {
    std::memcpy(dst.data, host, dst.bytes());
  }
  void download_impl(const TensorView& src, void* host) override {
    std::memcpy(host, src.data, src.bytes());
  }
  void fill_zero_impl(const TensorView& dst) override { std::memset(dst.data, 0, dst.bytes()); }

  void embedding_forward_impl(const TensorView& tokens, const TensorView& table,
                              const TensorView& out) override {
    check_ids(tokens, table.shape[0], "token id");
    cpu::embedding_forward(i32(tokens), f32(table), tokens.numel(), table.shape[1], f32_mut(out));
  }
  void embedding_backward_impl(const TensorView& tokens, const TensorView& dout,
                               const TensorView& dtable) override {
    check_ids(tokens, dtable.shape[0], "token id");
    cpu::embedding_backward(i32(tokens), f32(dout), tokens.numel(), dtable.shape[1],
                            f32_mut(dtable));
  }

  void linear_forward_impl(const TensorView& x, const TensorView& w, const TensorView& y) override {
    cpu::linear_forward(f32(x), f32(w), x.shape[0], w.shape[1], w.shape[0], f32_mut(y));
  }
  void linear_backward_impl(const TensorView& dy, const TensorView& x, const TensorView& w,
                            const TensorView* dx, bool accumulate_dx,
                            const TensorView& dw) override {
    cpu::linear_backward(f32(dy), f32(x), f32(w), x.shape[0], w.shape[1], w.shape[0],
                         dx ? f32_mut(*dx) : nullptr, accumulate_dx, f32_mut(dw));
  }

  void rmsnorm_forward_impl(const TensorView& x, const TensorView& w, float eps,
                            const TensorView& y, const TensorView& rstd) override {
    cpu::rmsnorm_forward(f32(x), f32(w), x.shape[0], x.shape[1], eps, f32_mut(y), f32_mut(rstd));
  }
  void rmsnorm_backward_impl(const TensorView& dy, const TensorView& x, const TensorView& w,
                             const TensorView& rstd, const TensorView& dx, bool accumulate_dx,
                             const TensorView& dw) override {
    cpu::rmsnorm_backward(f32(dy), f32(x), f32(w), f32(rstd), x.shape[0], x.shape[1], f32_mut(dx),
                          accumulate_dx, f32_mut(dw));
  }

  void add_rmsnorm_forward_impl(const TensorView& a, const TensorView& b, const TensorView& w,
                                float eps, const TensorView& sum, const TensorView& y,
                                const TensorView& rstd) override {
    cpu::add_rmsnorm_forward(f32(a), f32(b), f32(w), a.shape[0], a.shape[1], eps, f32_mut(sum),
                             f32_mut(y), f32_mut(rstd));
  }

  void qkv_norm_rope_forward_impl(const TensorView& qkv, const TensorView& q_w,
                                  const TensorView& k_w, const TensorView& positions, float eps,
                                  double theta, const TensorView& q, const TensorView& k,
                                  const TensorView& v, const TensorView& q_rstd,
                                  const TensorView& k_rstd) override {
    check_ids(positions, INT32_MAX, "position");
    cpu::qkv_norm_rope_forward(f32(qkv), f32(q_w), f32(k_w), i32(positions), q.shape[0], q.shape[1],
                               k.shape[1], q.shape[2], eps, theta, f32_mut(q), f32_mut(k),
                               f32_mut(v), f32_mut(q_rstd), f32_mut(k_rstd));
  }
  void qkv_norm_rope_backward_impl(const TensorView& dq, const TensorView& dk, const TensorView& dv,
                                   const TensorView& qkv, const TensorView& q_w,
                                   const TensorView& k_w, const TensorView& q_rstd,
                                   const TensorView& k_rstd, const TensorView& positions,
                                   double theta, const TensorView& d_qkv, const TensorView& dq_w,
                                   const TensorView& dk_w) override {
    check_ids(positions, INT32_MAX, "position");
    cpu::qkv_norm_rope_backward(f32(dq), f32(dk), f32(dv), f32(qkv), f32(q_w), f32(k_w),
                                f32(q_rstd), f32(k_rstd), i32(positions), dq.shape[0], dq.shape[1],
                                dk.shape[1], dq.shape[2], theta, f32_mut(d_qkv), f32_mut(dq_w),
                                f32_mut(dk_w));
  }

  void rope_impl(const TensorView& x, const TensorView& positions, double theta,
                 const TensorView& y, bool backward) override {
    check_ids(positions, INT32_MAX, "position");
    auto rope = backward ? cpu::rope_backward<float> : cpu::rope_forward<float>;
    rope(f32(x), i32(positions), x.shape[0], x.shape[1], x.shape[2], theta, f32_mut(y));
  }

  void attention_forward_impl(const TensorView& q, const TensorView& k, const TensorView& v,
                              const TensorView* doc_ids, const TensorView& out,
                              const TensorView& lse) override {
    cpu::attention_forward(shape_of(q, k), f32(q), f32(k), f32(v),
                           doc_ids ? i32(*doc_ids) : nullptr, f32_mut(out), f32_mut(lse));
  }
  void attention_backward_impl(const TensorView& dout, const TensorView& q, const TensorView& k,
                               const TensorView& v, const TensorView& out, const TensorView& lse,
                               const TensorView* doc_ids, const TensorView& dq,
                               const TensorView& dk, const TensorView& dv) override {
    cpu::attention_backward(shape_of(q, k), f32(dout), f32(q), f32(k), f32(v), f32(out), f32(lse),
                            doc_ids ? i32(*doc_ids) : nullptr, f32_mut(dq), f32_mut(dk),
                            f32_mut(dv));
  }

  void swiglu_forward_impl(const TensorView& gate_up, const TensorView& h) override {
    const int64_t rows = h.shape[0], inter = h.shape[1];
    cpu::swiglu_forward(f32(gate_up), f32(gate_up) + inter, rows, inter, 2 * inter, f32_mut(h));
  }
  void swiglu_backward_impl(const TensorView& dh, const TensorView& gate_up,
                            const TensorView& d_gate_up) override {
    const int64_t rows = dh.shape[0], inter = dh.shape[1];
    cpu::swiglu_backward(f32(dh), f32(gate_up), f32(gate_up) + inter, rows, inter, 2 * inter,
                         f32_mut(d_gate_up), f32_mut(d_gate_up) + inter);
  }

  void add_impl(const TensorView& a, const TensorView& b, const TensorView& out) override {
    cpu::add_forward(f32(a), f32(b), a.numel(), f32_mut(out));
  }

  void cross_entropy_forward_impl(const TensorView& logits, const TensorView& targets,
                                  int32_t ignore_index, const TensorView& losses,
                                  const TensorView& lse) override {
    check_ids(targets, logits.shape[1], "target id", ignore_index);
    cpu::cross_entropy_forward(f32(logits), i32(targets), logits.shape[0], logits.shape[1],
                               ignore_index, f32_mut(losses), f32_mut(lse));
  }
  void cross_entropy_backward_impl(const TensorView& logits, const TensorView& lse,
                                   const TensorView& targets, int32_t ignore_index, float scale,
                                   const TensorView& dlogits) override {
    check_ids(targets, logits.shape[1], "target id", ignore_index);
    cpu::cross_entropy_backward(f32(logits), f32(lse), i32(targets), logits.shape[0],
                                logits.shape[1], ignore_index, scale, f32_mut(dlogits));
  }

  void copy_impl(const TensorView& src, const TensorView& dst) override {
    if (src.data != dst.data) std::memmove(dst.data, src.data, dst.bytes());
  }
  void accumulate_impl(const TensorView& src, const TensorView& dst) override {
    cpu::add_forward(f32(dst), f32(src), dst.numel(), f32_mut(dst));
  }
  double sum_squares_impl(const TensorView& x) override {
    return cpu::sum_squares(f32(x), x.numel());
  }
  void accumulate_sum_impl(const TensorView& x, const TensorView& total) override {
    *total.as<double>() += cpu::sum(f32(x), x.numel());
  }
  void adamw_update_impl(const TensorView& master, const TensorView& grad, const TensorView& m,
                         const TensorView& v, const AdamWHyper& h) override {
    const AdamWKernelArgs args =
        make_adamw_args(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.grad_scale, h.step);
    cpu::adamw_update(f32_mut(master), f32(grad), f32_mut(m), f32_mut(v), master.numel(), args);
  }

 private:
  static cpu::AttentionShape shape_of(const TensorView& q, const TensorView& k) {
    return {q.shape[0], q.shape[1], q.shape[2], k.shape[2], q.shape[3]};
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace qwen3
