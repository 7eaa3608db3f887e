// The CUDA backend: checked calls into core/kernels/cuda, all queued on one stream; a second
// stream carries the work that runs beside them (the gradient reduction), ordered by events.
#include "core/ops/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "core/cuda/check.h"
#include "core/cuda/device.h"
#include "core/kernels/cuda/attention.h"
#include "core/kernels/cuda/attention_cudnn.h"
#include "core/kernels/cuda/cross_entropy.h"
#include "core/kernels/cuda/elementwise.h"
#include "core/kernels/cuda/embedding.h"
#include "core/kernels/cuda/gemm.h"
#include "core/kernels/cuda/id_check.h"
#include "core/kernels/cuda/adamw.h"
#include "core/kernels/cuda/sum_squares.h"
#include "core/kernels/cuda/qk_norm_rope.h"
#include "core/kernels/cuda/add_rmsnorm.h"
#include "core/kernels/cuda/rmsnorm.h"
#include "core/kernels/cuda/rope.h"
#include "core/kernels/cuda/swiglu.h"
#include "core/tensor/bf16.h"
#include "core/util/error.h"

namespace qwen3 {

namespace {

using bf16 = __nv_bfloat16;

class DeviceBuffer final : public Buffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    const cudaError_t status = cudaMalloc(&data_, bytes);
    if (status != cudaSuccess) {
      cudaGetLastError();  // clear the sticky error before asking how much memory is free
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      throw_error(fmt::format(
          "cannot allocate {:.2f} GiB of GPU memory ({:.2f} of {:.2f} GiB free): {}. Lower "
          "micro_batch or seq_len, or use more ranks with a higher zero_stage.",
          double(bytes) / (1 << 30), double(free_bytes) / (1 << 30),
          double(total_bytes) / (1 << 30), cudaGetErrorString(status)));
    }
  }
  ~DeviceBuffer() override {
    if (data_) cudaFree(data_);  // destructors must not throw
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() override { return data_; }
  size_t bytes() const override { return bytes_; }
  Device device() const override { return Device::CUDA; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

const bf16* bf(const TensorView& t) {
  return t.as<const bf16>();
}
bf16* bf_mut(const TensorView& t) {
  return t.as<bf16>();
}
const int32_t* i32(const TensorView& t) {
  return t.as<const int32_t>();
}
float* f32_mut(const TensorView& t) {
  return t.as<float>();
}
bool is_bf16(const TensorView& t) {
  return t.dtype == DType::BF16;
}

// Where q's, k's and v's columns sit in the rows of the fused projection qkv[N, Hq + 2·Hkv, hd],
// from it and the packed q[N, Hq, hd] and k[N, Hkv, hd] (or their gradients). In elements.
struct QkvColumns {
  QkvColumns(const TensorView& qkv, const TensorView& q, const TensorView& k)
      : rows(qkv.shape[0]),
        q_heads(q.shape[1]),
        kv_heads(k.shape[1]),
        head_dim(qkv.shape[2]),
        width(qkv.shape[1] * head_dim),
        kv_width(kv_heads * head_dim),
        k_offset(q_heads * head_dim),
        v_offset(k_offset + kv_width) {}
  int64_t rows, q_heads, kv_heads, head_dim;
  int64_t width;     // a row of qkv
  int64_t kv_width;  // k's or v's columns
  int64_t k_offset, v_offset;
};

const char* id_site_name(int32_t site) {
  switch (site) {
    case cuda::kIdSiteEmbeddingForward:
      return "embedding_forward: token id";
    case cuda::kIdSiteEmbeddingBackward:
      return "embedding_backward: token id";
    case cuda::kIdSiteCrossEntropyForward:
      return "cross_entropy_forward: target id";
    case cuda::kIdSiteCrossEntropyBackward:
      return "cross_entropy_backward: target id";
    default:
      return "an id";
  }
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) {
    if (device >= 0) QWEN3_CUDA_CHECK(cudaSetDevice(device));
    QWEN3_CUDA_CHECK(cudaGetDevice(&device_));
    QWEN3_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    // Non-blocking: the side stream must not wait on the legacy default stream either, only on
    // the events below.
    QWEN3_CUDA_CHECK(cudaStreamCreateWithFlags(&side_stream_, cudaStreamNonBlocking));
    // Events that only order streams: without timing, recording and waiting on them are cheap.
    QWEN3_CUDA_CHECK(cudaEventCreateWithFlags(&main_reached_, cudaEventDisableTiming));
    QWEN3_CUDA_CHECK(cudaEventCreateWithFlags(&side_reached_, cudaEventDisableTiming));
    gemm_ = std::make_unique<cuda::LtGemm>();
    id_record_ = std::make_unique<DeviceBuffer>(sizeof(cuda::IdCheckRecord));
    // On stream_, not the legacy stream's cudaMemset: stream_ is non-blocking, so a legacy-stream
    // fill is not ordered before the kernels that write the record (it could run after one and
    // erase the bad id it found).
    QWEN3_CUDA_CHECK(cudaMemsetAsync(id_record_->data(), 0, sizeof(cuda::IdCheckRecord), stream_));
    sum_result_ = std::make_unique<DeviceBuffer>(sizeof(double));
  }
  ~CudaBackend() override {
    // Work still queued may use the buffers freed next; errors cannot be thrown from here.
    cudaStreamSynchronize(stream_);
    cudaStreamSynchronize(side_stream_);
    gemm_.reset();
    cudaEventDestroy(main_reached_);
    cudaEventDestroy(side_reached_);
    cudaStreamDestroy(side_stream_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }
  Device device() const override { return Device::CUDA; }
  DType storage_dtype() const override { return DType::BF16; }
  std::unique_ptr<Buffer> allocate_impl(size_t bytes) override {
    return std::make_unique<DeviceBuffer>(bytes);
  }
  void synchronize() override {
    QWEN3_CUDA_CHECK(cudaStreamSynchronize(stream_));
    QWEN3_CUDA_CHECK(cudaStreamSynchronize(side_stream_));
    report_bad_ids();
  }
  void* stream() const override { return stream_; }
  void* side_stream() const override { return side_stream_; }
  // cudaStreamWaitEvent waits for the event's most recent record at the time of the call, so one
  // event per direction can be recorded again for every wait.
  void side_waits_for_main() override {
    QWEN3_CUDA_CHECK(cudaEventRecord(main_reached_, stream_));
    QWEN3_CUDA_CHECK(cudaStreamWaitEvent(side_stream_, main_reached_, 0));
  }
  void main_waits_for_side() override {
    QWEN3_CUDA_CHECK(cudaEventRecord(side_reached_, side_stream_));
    QWEN3_CUDA_CHECK(cudaStreamWaitEvent(stream_, side_reached_, 0));
  }

 protected:
  void upload_impl(const void* host, const TensorView& dst) override {
    const void* source = host;
    std::vector<uint16_t> converted;
    if (is_bf16(dst)) {
      const float* values = static_cast<const float*>(host);
      converted.resize(static_cast<size_t>(dst.numel()));
      for (size_t i = 0; i < converted.size(); ++i)
        converted[i] = float_to_bf16_bits(values[i]);
      source = converted.data();
    }
    forget_rope_table_if_written(dst);
    QWEN3_CUDA_CHECK(
        cudaMemcpyAsync(dst.data, source, dst.bytes(), cudaMemcpyHostToDevice, stream_));
    // From pageable memory (`converted`, and the vectors callers pass) the runtime copies the
    // source into its staging buffer before cudaMemcpyAsync returns, so the host need not wait
    // for the device: uploading a micro-batch does not stall the queue. From page-locked memory
    // the DMA reads the source later, so only then is the copy waited for.
    cudaPointerAttributes attributes{};
    QWEN3_CUDA_CHECK(cudaPointerGetAttributes(&attributes, source));
    if (attributes.type != cudaMemoryTypeUnregistered)
      QWEN3_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void download_impl(const TensorView& src, void* host) override {
    if (!is_bf16(src)) {
      QWEN3_CUDA_CHECK(
          cudaMemcpyAsync(host, src.data, src.bytes(), cudaMemcpyDeviceToHost, stream_));
      synchronize();
      return;
    }
    std::vector<uint16_t> bits(static_cast<size_t>(src.numel()));
    QWEN3_CUDA_CHECK(
        cudaMemcpyAsync(bits.data(), src.data, src.bytes(), cudaMemcpyDeviceToHost, stream_));
    synchronize();
    float* values = static_cast<float*>(host);
    for (size_t i = 0; i < bits.size(); ++i)
      values[i] = bf16_bits_to_float(bits[i]);
  }
  void fill_zero_impl(const TensorView& dst) override {
    forget_rope_table_if_written(dst);
    QWEN3_CUDA_CHECK(cudaMemsetAsync(dst.data, 0, dst.bytes(), stream_));
  }

  void embedding_forward_impl(const TensorView& tokens, const TensorView& table,
                              const TensorView& out) override {
    cuda::embedding_forward(i32(tokens), bf(table), tokens.numel(), table.shape[0], table.shape[1],
                            bf_mut(out), ids(), stream_);
  }
  void embedding_backward_impl(const TensorView& tokens, const TensorView& dout,
                               const TensorView& dtable) override {
    const int64_t n = tokens.numel();
    void* workspace = scratch(cuda::embedding_backward_workspace_bytes(n, dtable.shape[1]));
    if (is_bf16(dtable))
      cuda::embedding_backward(i32(tokens), bf(dout), n, dtable.shape[0], dtable.shape[1],
                               bf_mut(dtable), workspace, ids(), stream_);
    else
      cuda::embedding_backward(i32(tokens), bf(dout), n, dtable.shape[0], dtable.shape[1],
                               f32_mut(dtable), workspace, ids(), stream_);
  }

  // Row-major y[N, out] = x[N, in] · w[out, in]ᵀ is column-major yᵀ[out, N] = w · xᵀ, with w's
  // storage read as the column-major in×out matrix wᵀ (hence the transpose).
  void linear_forward_impl(const TensorView& x, const TensorView& w, const TensorView& y) override {
    const int64_t rows = x.shape[0], in = w.shape[1], out = w.shape[0];
    cuda::GemmProblem p;
    p.transpose_a = true;
    p.m = out, p.n = rows, p.k = in;
    p.lda = in, p.ldb = in, p.ldc = out;
    gemm_->run(p, bf(w), bf(x), bf_mut(y), stream_);
  }
  void linear_backward_impl(const TensorView& dy, const TensorView& x, const TensorView& w,
                            const TensorView* dx, bool accumulate_dx,
                            const TensorView& dw) override {
    const int64_t rows = x.shape[0], in = w.shape[1], out = w.shape[0];
    if (dx) {
      // dx[N, in] = dy[N, out] · w[out, in]: column-major dxᵀ[in, N] = wᵀ[in, out] · dyᵀ[out, N].
      cuda::GemmProblem p;
      p.m = in, p.n = rows, p.k = out;
      p.lda = in, p.ldb = out, p.ldc = in;
      p.beta = accumulate_dx ? 1.0f : 0.0f;
      gemm_->run(p, bf(w), bf(dy), bf_mut(*dx), stream_);
    }
    // dw[out, in] += dyᵀ · x: column-major dwᵀ[in, out] += xᵀ[in, N] · dy[N, out], in the
    // gradient's dtype.
    cuda::GemmProblem p;
    p.transpose_b = true;
    p.m = in, p.n = out, p.k = rows;
    p.lda = in, p.ldb = out, p.ldc = in;
    p.beta = 1.0f;
    if (is_bf16(dw))
      gemm_->run(p, bf(x), bf(dy), bf_mut(dw), stream_);
    else
      gemm_->run(p, bf(x), bf(dy), f32_mut(dw), stream_);
  }

  void rmsnorm_forward_impl(const TensorView& x, const TensorView& w, float eps,
                            const TensorView& y, const TensorView& rstd) override {
    cuda::rmsnorm_forward(bf(x), bf(w), x.shape[0], x.shape[1], eps, bf_mut(y), f32_mut(rstd),
                          stream_);
  }
  void rmsnorm_backward_impl(const TensorView& dy, const TensorView& x, const TensorView& w,
                             const TensorView& rstd, const TensorView& dx, bool accumulate_dx,
                             const TensorView& dw) override {
    const int64_t rows = x.shape[0], cols = x.shape[1];
    void* workspace = scratch(cuda::rmsnorm_backward_workspace_bytes(rows, cols));
    if (is_bf16(dw))
      cuda::rmsnorm_backward(bf(dy), bf(x), bf(w), rstd.as<const float>(), rows, cols, bf_mut(dx),
                             accumulate_dx, bf_mut(dw), workspace, stream_);
    else
      cuda::rmsnorm_backward(bf(dy), bf(x), bf(w), rstd.as<const float>(), rows, cols, bf_mut(dx),
                             accumulate_dx, f32_mut(dw), workspace, stream_);
  }

  void add_rmsnorm_forward_impl(const TensorView& a, const TensorView& b, const TensorView& w,
                                float eps, const TensorView& sum, const TensorView& y,
                                const TensorView& rstd) override {
    cuda::add_rmsnorm_forward(bf(a), bf(b), bf(w), a.shape[0], a.shape[1], eps, bf_mut(sum),
                              bf_mut(y), f32_mut(rstd), stream_);
  }

  // q and k go through the norm and rotation straight from their columns of the fused
  // projection; v's columns are copied out, as attention reads packed heads.
  void qkv_norm_rope_forward_impl(const TensorView& qkv, const TensorView& q_w,
                                  const TensorView& k_w, const TensorView& positions, float eps,
                                  double theta, const TensorView& q, const TensorView& k,
                                  const TensorView& v, const TensorView& q_rstd,
                                  const TensorView& k_rstd) override {
    const QkvColumns cols(qkv, q, k);
    const float2* table = rope_table_for(positions, theta, cols.head_dim);
    cuda::qk_norm_rope_forward(bf(qkv), cols.width, bf(q_w), i32(positions), cols.rows,
                               cols.q_heads, cols.head_dim, eps, theta, bf_mut(q), f32_mut(q_rstd),
                               stream_, table);
    cuda::qk_norm_rope_forward(bf(qkv) + cols.k_offset, cols.width, bf(k_w), i32(positions),
                               cols.rows, cols.kv_heads, cols.head_dim, eps, theta, bf_mut(k),
                               f32_mut(k_rstd), stream_, table);
    cuda::copy_columns(bf(qkv) + cols.v_offset, cols.width, cols.rows, cols.kv_width, bf_mut(v),
                       cols.kv_width, stream_);
  }
  void qkv_norm_rope_backward_impl(const TensorView& dq, const TensorView& dk, const TensorView& dv,
                                   const TensorView& qkv, const TensorView& q_w,
                                   const TensorView& k_w, const TensorView& q_rstd,
                                   const TensorView& k_rstd, const TensorView& positions,
                                   double theta, const TensorView& d_qkv, const TensorView& dq_w,
                                   const TensorView& dk_w) override {
    const QkvColumns cols(qkv, dq, dk);
    const float2* table = rope_table_for(positions, theta, cols.head_dim);
    // One workspace serves both parts: the stream runs them one after the other.
    void* workspace = scratch(cuda::qk_norm_rope_backward_workspace_bytes(
        cols.rows, std::max(cols.q_heads, cols.kv_heads), cols.head_dim));
    const auto part = [&](const TensorView& dy, int64_t offset, int64_t heads, const TensorView& w,
                          const TensorView& rstd, const TensorView& dw) {
      if (is_bf16(dw))
        cuda::qk_norm_rope_backward(bf(dy), bf(qkv) + offset, cols.width, bf(w),
                                    rstd.as<const float>(), i32(positions), cols.rows, heads,
                                    cols.head_dim, theta, bf_mut(d_qkv) + offset, cols.width,
                                    bf_mut(dw), workspace, stream_, table);
      else
        cuda::qk_norm_rope_backward(bf(dy), bf(qkv) + offset, cols.width, bf(w),
                                    rstd.as<const float>(), i32(positions), cols.rows, heads,
                                    cols.head_dim, theta, bf_mut(d_qkv) + offset, cols.width,
                                    f32_mut(dw), workspace, stream_, table);
    };
    part(dq, 0, cols.q_heads, q_w, q_rstd, dq_w);
    part(dk, cols.k_offset, cols.kv_heads, k_w, k_rstd, dk_w);
    cuda::copy_columns(bf(dv), cols.kv_width, cols.rows, cols.kv_width,
                       bf_mut(d_qkv) + cols.v_offset, cols.width, stream_);
  }

  void rope_impl(const TensorView& x, const TensorView& positions, double theta,
                 const TensorView& y, bool backward) override {
    cuda::rope(bf(x), i32(positions), x.shape[0], x.shape[1], x.shape[2], theta, backward,
               bf_mut(y), stream_, rope_table_for(positions, theta, x.shape[2]));
  }

  void set_rope_positions_impl(const TensorView& positions, double theta,
                               int64_t head_dim) override {
    rope_positions_ = nullptr;
    const int64_t rows = positions.numel();
    const size_t bytes = static_cast<size_t>(rows * (head_dim / 2)) * sizeof(float2);
    if (!rope_table_ || rope_table_->bytes() < bytes) {
      rope_table_.reset();  // once per stage shape: cudaFree waits for the device
      rope_table_ = std::make_unique<DeviceBuffer>(bytes);
    }
    cuda::rope_table(i32(positions), rows, head_dim, theta,
                     static_cast<float2*>(rope_table_->data()), stream_);
    rope_positions_ = positions.data;
    rope_rows_ = rows;
    rope_theta_ = theta;
    rope_head_dim_ = head_dim;
  }

  // The batch's angle table where it was made for these positions, theta and head_dim; else null
  // (the kernels compute the angles).
  const float2* rope_table_for(const TensorView& positions, double theta, int64_t head_dim) const {
    const bool same = rope_positions_ != nullptr && positions.data == rope_positions_ &&
                      positions.numel() == rope_rows_ && theta == rope_theta_ &&
                      head_dim == rope_head_dim_;
    return same ? static_cast<const float2*>(rope_table_->data()) : nullptr;
  }

  // An upload or fill over the positions the table was made from leaves it stale.
  void forget_rope_table_if_written(const TensorView& dst) {
    if (rope_positions_ == nullptr) return;
    const char* begin = static_cast<const char*>(dst.data);
    const char* positions = static_cast<const char*>(rope_positions_);
    const char* positions_end = positions + size_t(rope_rows_) * sizeof(int32_t);
    if (begin < positions_end && positions < begin + dst.bytes()) rope_positions_ = nullptr;
  }

  AttentionChoice choose_attention_impl(const AttentionRequest& request) override {
    use_cudnn_ = false;
    if (request.kernels == "flash") return {"flash", "", false};
    if (!cudnn_tried_) {
      cudnn_tried_ = true;
      cudnn_ = cuda::make_cudnn_attention(&cudnn_missing_);
    }
    // Asked for by name, or present but unusable (too old, refusing the shape): a warning.
    if (!cudnn_)
      return {"flash", "cuDNN: " + cudnn_missing_,
              request.kernels == "cudnn" || cuda::cudnn_in_build()};
    const cuda::AttentionDims d{request.batch, request.seq, request.q_heads, request.kv_heads,
                                request.head_dim};
    std::string why_not;
    // With documents, the graph for one document per row, the fewest a micro-batch can hold.
    const int64_t bucket = request.documents ? cuda::document_bucket(request.batch) : 0;
    if (!cudnn_->supports(d, bucket, &why_not)) return {"flash", "cuDNN: " + why_not, true};
    use_cudnn_ = true;
    return {cudnn_->name(), "", false};
  }

  // Kept as spans for cuDNN's ragged layout (where cuDNN serves the stage); handed to it at the
  // first attention call that masks by them.
  void set_documents_impl(const int32_t* doc_ids, int64_t batch, int64_t seq) override {
    spans_given_ = false;
    spans_sent_for_ = {};
    if (!use_cudnn_) return;
    spans_given_ = cuda::document_spans(doc_ids, batch, seq, &spans_, &spans_refusal_);
    spans_batch_ = batch;
    spans_seq_ = seq;
  }

  // Whether cuDNN runs this call: chosen for the stage, and taking its shape and documents (a
  // shape the stage's choice did not see is built now; what cuDNN cannot take runs the flash
  // kernels, said once per kind of reason).
  bool cudnn_takes(const cuda::AttentionDims& d, bool documents) {
    if (!use_cudnn_) return false;
    std::string why_not;
    if (documents && !documents_for_cudnn(d, &why_not)) {
      warn_once("documents", why_not);
      return false;
    }
    if (!cudnn_->supports(d, documents ? spans_.bucket : 0, &why_not)) {
      warn_once(why_not, why_not);
      return false;
    }
    if (documents && !same_dims(spans_sent_for_, d)) {
      cudnn_->set_documents(d, spans_, stream_);
      spans_sent_for_ = d;
    }
    return true;
  }

  bool documents_for_cudnn(const cuda::AttentionDims& d, std::string* why_not) const {
    if (spans_batch_ != d.batch || spans_seq_ != d.seq) {
      *why_not =
          "the document ids were not given to the backend (Backend::set_documents) for "
          "this batch";
      return false;
    }
    if (!spans_given_) *why_not = spans_refusal_;
    return spans_given_;
  }

  static bool same_dims(const cuda::AttentionDims& a, const cuda::AttentionDims& b) {
    return a.batch == b.batch && a.seq == b.seq && a.q_heads == b.q_heads &&
           a.kv_heads == b.kv_heads && a.head_dim == b.head_dim;
  }

  void warn_once(const std::string& kind, const std::string& why_not) {
    if (cudnn_warnings_.insert(kind).second)
      std::fprintf(stderr, "warning: attention runs the flash kernels here: cuDNN: %s\n",
                   why_not.c_str());
  }

  void attention_forward_impl(const TensorView& q, const TensorView& k, const TensorView& v,
                              const TensorView* doc_ids, const TensorView& out,
                              const TensorView& lse) override {
    const cuda::AttentionDims d = dims_of(q, k);
    const bool documents = doc_ids != nullptr;
    if (cudnn_takes(d, documents))
      return cudnn_->forward(d, documents, bf(q), bf(k), bf(v), bf_mut(out), f32_mut(lse), stream_);
    cuda::attention_forward(d, bf(q), bf(k), bf(v), documents ? i32(*doc_ids) : nullptr,
                            bf_mut(out), f32_mut(lse), stream_);
  }
  void attention_backward_impl(const TensorView& dout, const TensorView& q, const TensorView& k,
                               const TensorView& v, const TensorView& out, const TensorView& lse,
                               const TensorView* doc_ids, const TensorView& dq,
                               const TensorView& dk, const TensorView& dv) override {
    const cuda::AttentionDims d = dims_of(q, k);
    const bool documents = doc_ids != nullptr;
    if (cudnn_takes(d, documents))
      return cudnn_->backward(d, documents, bf(dout), bf(q), bf(k), bf(v), bf(out),
                              lse.as<const float>(), bf_mut(dq), bf_mut(dk), bf_mut(dv), stream_);
    void* workspace = scratch(cuda::attention_backward_workspace_bytes(d));
    cuda::attention_backward(d, bf(dout), bf(q), bf(k), bf(v), bf(out), lse.as<const float>(),
                             documents ? i32(*doc_ids) : nullptr, workspace, bf_mut(dq), bf_mut(dk),
                             bf_mut(dv), stream_);
  }

  void swiglu_forward_impl(const TensorView& gate_up, const TensorView& h) override {
    const int64_t rows = h.shape[0], inter = h.shape[1];
    cuda::swiglu_forward(bf(gate_up), bf(gate_up) + inter, rows, inter, 2 * inter, bf_mut(h),
                         stream_);
  }
  void swiglu_backward_impl(const TensorView& dh, const TensorView& gate_up,
                            const TensorView& d_gate_up) override {
    const int64_t rows = dh.shape[0], inter = dh.shape[1];
    cuda::swiglu_backward(bf(dh), bf(gate_up), bf(gate_up) + inter, rows, inter, 2 * inter,
                          bf_mut(d_gate_up), bf_mut(d_gate_up) + inter, stream_);
  }

  void add_impl(const TensorView& a, const TensorView& b, const TensorView& out) override {
    cuda::add(bf(a), bf(b), a.numel(), bf_mut(out), stream_);
  }

  void cross_entropy_forward_impl(const TensorView& logits, const TensorView& targets,
                                  int32_t ignore_index, const TensorView& losses,
                                  const TensorView& lse) override {
    cuda::cross_entropy_forward(bf(logits), i32(targets), logits.shape[0], logits.shape[1],
                                ignore_index, f32_mut(losses), f32_mut(lse), ids(), stream_);
  }
  void cross_entropy_backward_impl(const TensorView& logits, const TensorView& lse,
                                   const TensorView& targets, int32_t ignore_index, float scale,
                                   const TensorView& dlogits) override {
    cuda::cross_entropy_backward(bf(logits), lse.as<const float>(), i32(targets), logits.shape[0],
                                 logits.shape[1], ignore_index, scale, bf_mut(dlogits), ids(),
                                 stream_);
  }

  void cross_entropy_forward_backward_impl(const TensorView& logits, const TensorView& targets,
                                           int32_t ignore_index, float scale,
                                           const TensorView& losses, const TensorView& lse,
                                           const TensorView& dlogits) override {
    cuda::cross_entropy_forward_backward(bf(logits), i32(targets), logits.shape[0], logits.shape[1],
                                         ignore_index, scale, f32_mut(losses), f32_mut(lse),
                                         bf_mut(dlogits), ids(), stream_);
  }

  void copy_impl(const TensorView& src, const TensorView& dst) override {
    cuda::convert(src.data, is_bf16(src), src.numel(), dst.data, is_bf16(dst), stream_);
  }
  void accumulate_impl(const TensorView& src, const TensorView& dst) override {
    cuda::accumulate(src.data, is_bf16(src), src.numel(), f32_mut(dst), stream_);
  }
  double sum_squares_impl(const TensorView& x) override {
    double* result = static_cast<double*>(sum_result_->data());
    cuda::sum_squares(x.data, is_bf16(x), x.numel(), result,
                      scratch(cuda::sum_squares_workspace_bytes()), stream_);
    double host = 0.0;
    QWEN3_CUDA_CHECK(
        cudaMemcpyAsync(&host, result, sizeof(double), cudaMemcpyDeviceToHost, stream_));
    synchronize();
    return host;
  }
  void accumulate_sum_impl(const TensorView& x, const TensorView& total) override {
    cuda::sum_into(x.as<const float>(), x.numel(), total.as<double>(),
                   scratch(cuda::sum_squares_workspace_bytes()), stream_);
  }
  void adamw_update_impl(const TensorView& master, const TensorView& grad, const TensorView& m,
                         const TensorView& v, const AdamWHyper& h) override {
    const AdamWKernelArgs args =
        make_adamw_args(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.grad_scale, h.step);
    cuda::adamw_update(f32_mut(master), grad.data, is_bf16(grad), f32_mut(m), f32_mut(v),
                       master.numel(), args, stream_);
  }

 private:
  static cuda::AttentionDims dims_of(const TensorView& q, const TensorView& k) {
    return {q.shape[0], q.shape[1], q.shape[2], k.shape[2], q.shape[3]};
  }

  cuda::IdCheckRecord* ids() { return static_cast<cuda::IdCheckRecord*>(id_record_->data()); }

  // Scratch for one op at a time, grown on demand. Ops on the stream run in order, so the next op
  // may reuse it; cudaFree waits for the device before the old block is released.
  void* scratch(size_t bytes) {
    if (!scratch_ || scratch_->bytes() < bytes) {
      scratch_.reset();
      scratch_ = std::make_unique<DeviceBuffer>(bytes + bytes / 4);  // room to grow a little
    }
    return scratch_->data();
  }

  // Called after the stream is synchronised: throws for the first bad id a kernel recorded.
  void report_bad_ids() {
    cuda::IdCheckRecord record;
    QWEN3_CUDA_CHECK(
        cudaMemcpy(&record, id_record_->data(), sizeof(record), cudaMemcpyDeviceToHost));
    if (!record.found) return;
    QWEN3_CUDA_CHECK(cudaMemsetAsync(id_record_->data(), 0, sizeof(record), stream_));
    throw_error(
        fmt::format("{} {} at index {} is outside [0, {}) (found on the GPU; reported at "
                    "the next synchronisation)",
                    id_site_name(record.site), record.value, record.index, record.limit));
  }

  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  // Work beside the ops (the gradient reduction), ordered against stream_ by the two events:
  // main_reached_ is recorded on stream_, side_reached_ on side_stream_.
  cudaStream_t side_stream_ = nullptr;
  cudaEvent_t main_reached_ = nullptr, side_reached_ = nullptr;
  std::unique_ptr<cuda::LtGemm> gemm_;
  std::unique_ptr<DeviceBuffer> id_record_, sum_result_, scratch_;
  // cuDNN's fused attention: made at the first choose_attention that wants it.
  std::unique_ptr<cuda::CudnnAttention> cudnn_;
  bool cudnn_tried_ = false, use_cudnn_ = false;
  std::string cudnn_missing_;  // why cudnn_ is null
  // The batch's rotary angles (set_rope_positions): [rope_rows_, rope_head_dim_ / 2] (sin, cos)
  // for the positions at rope_positions_ (null: no table) and rope_theta_.
  std::unique_ptr<DeviceBuffer> rope_table_;
  const void* rope_positions_ = nullptr;
  int64_t rope_rows_ = 0, rope_head_dim_ = 0;
  double rope_theta_ = 0;
  std::set<std::string> cudnn_warnings_;  // kinds of reason, said once each
  // The documents set_documents gave, as cuDNN's ragged layout takes them.
  cuda::DocumentSpans spans_;
  bool spans_given_ = false;   // spans_ holds the current micro-batch's documents
  std::string spans_refusal_;  // why not, when the ids cannot be spans
  int64_t spans_batch_ = 0, spans_seq_ = 0;
  cuda::AttentionDims spans_sent_for_;  // the dims cuDNN has the current spans for; zero: none
};

}  // namespace

bool cuda_backend_available(std::string* reason) {
  if (cuda::device_count() > 0) return true;
  if (reason) *reason = "no CUDA device: " + cuda::no_device_reason();
  return false;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  std::string reason;
  QWEN3_CHECK(cuda_backend_available(&reason), "the CUDA backend cannot start: {}", reason);
  return std::make_unique<CudaBackend>(device);
}

}  // namespace qwen3
