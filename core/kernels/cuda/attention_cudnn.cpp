// cuDNN's fused attention through cudnn-frontend's SDPA graphs (attention_cudnn.h). Dense BSHD:
// Q, K, V, O and their gradients are read and written in place through strides over the
// project's [batch, seq, heads, head_dim] layout; Stats (the log-sum-exp, fp32, natural log) is
// [batch, q_heads, seq, 1], the project's lse. Causal as a diagonal band aligned top-left with
// right bound 0. With documents, the ragged (THD) layout over the same buffers: one batch entry
// per document, seq_len_q = seq_len_kv = its length, the padding mask on, offsets in elements
// from the buffers' starts (int32: q/out and theirs by q_heads × head_dim per token, k/v by
// kv_heads × head_dim, the token-major Stats by q_heads). The backward is deterministic; cuDNN
// >= 9.25 serves that on Hopper with an ordered dQ accumulation whose workspace grows linearly with
// the sequence, chosen when CUDNN_FRONTEND_ATTN_DP_WORKSPACE_LIMIT is 0 (otherwise it takes a dP
// workspace of batch × heads × seq² × 2 bytes: 32 GiB for one 32K row).
//
// One translation unit of its own: the frontend's headers take about a minute and 2 GB to
// compile.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "core/cuda/check.h"
#include "core/cuda/cudnn_check.h"
#include "core/cuda/memory.h"
#include "core/kernels/cuda/attention_cudnn.h"

namespace qwen3::cuda {
namespace {

namespace fe = cudnn_frontend;

constexpr int64_t kMinimumVersion = 92500;  // the linear-workspace deterministic backward

// Tensor ids in the graphs' variant packs.
enum Uid : int64_t {
  kQ = 1,
  kK,
  kV,
  kO,
  kStats,
  kDout,
  kDq,
  kDk,
  kDv,
  kSeqLenQ,      // ragged: tokens of each document, [bucket]
  kSeqLenKv,     // the same lengths
  kOffsetQ,      // ragged: first element of each document in q, out and their gradients
  kOffsetKv,     // ... in k, v and theirs
  kOffsetStats,  // ... in the token-major lse
};

// A graph's shape: the attention's dims and, for the ragged layout, its batch entries (0: dense).
struct Shape {
  AttentionDims d;
  int64_t bucket = 0;
  bool ragged() const { return bucket > 0; }
  // Batch entries: rows, or documents.
  int64_t entries() const { return ragged() ? bucket : d.batch; }
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

Key key_of(const Shape& s) {
  return {s.d.batch, s.d.seq, s.d.q_heads, s.d.kv_heads, s.d.head_dim, s.bucket};
}

// The ragged layout's index tensors, made once per graph.
struct RaggedIndex {
  std::shared_ptr<fe::graph::Tensor_attributes> seq_len_q, seq_len_kv, offset_q, offset_kv,
      offset_stats;
};

std::shared_ptr<fe::graph::Tensor_attributes> int32_index(fe::graph::Graph& g, const char* name,
                                                          Uid uid, int64_t n) {
  return g.tensor(fe::graph::Tensor_attributes()
                      .set_name(name)
                      .set_uid(uid)
                      .set_data_type(fe::DataType_t::INT32)
                      .set_dim({n, 1, 1, 1})
                      .set_stride({1, 1, 1, 1}));
}

RaggedIndex ragged_index(fe::graph::Graph& g, const Shape& s) {
  if (!s.ragged()) return {};
  return {int32_index(g, "seq_len_q", kSeqLenQ, s.bucket),
          int32_index(g, "seq_len_kv", kSeqLenKv, s.bucket),
          int32_index(g, "offset_q", kOffsetQ, s.bucket + 1),
          int32_index(g, "offset_kv", kOffsetKv, s.bucket + 1),
          int32_index(g, "offset_stats", kOffsetStats, s.bucket + 1)};
}

// [entries, heads, seq, head_dim] dims with the strides of a [batch, seq, heads, head_dim]
// buffer; ragged, each document found at its offset.
void set_bshd(fe::graph::Tensor_attributes& t, Uid uid, const Shape& s, int64_t heads,
              const std::shared_ptr<fe::graph::Tensor_attributes>& offset) {
  const AttentionDims& d = s.d;
  t.set_uid(uid)
      .set_dim({s.entries(), heads, d.seq, d.head_dim})
      .set_stride({d.seq * heads * d.head_dim, d.head_dim, heads * d.head_dim, 1});
  if (offset) t.set_ragged_offset(offset);
}

std::shared_ptr<fe::graph::Tensor_attributes> bshd_input(fe::graph::Graph& g, const char* name,
                                                         Uid uid, const Shape& s, int64_t heads,
                                                         const RaggedIndex& index, bool kv) {
  fe::graph::Tensor_attributes t;
  t.set_name(name);
  set_bshd(t, uid, s, heads, kv ? index.offset_kv : index.offset_q);
  return g.tensor(t);
}

void set_bshd_output(const std::shared_ptr<fe::graph::Tensor_attributes>& t, Uid uid,
                     const Shape& s, int64_t heads, const RaggedIndex& index, bool kv) {
  t->set_output(true);
  set_bshd(*t, uid, s, heads, kv ? index.offset_kv : index.offset_q);
}

// The log-sum-exp: dense [batch, q_heads, seq, 1] (the project's lse); ragged, token-major
// [batch × seq, q_heads] with each document at its offset.
void set_stats(fe::graph::Tensor_attributes& t, const Shape& s, const RaggedIndex& index) {
  const AttentionDims& d = s.d;
  t.set_uid(kStats).set_data_type(fe::DataType_t::FLOAT);
  if (!s.ragged()) {
    t.set_dim({d.batch, d.q_heads, d.seq, 1}).set_stride({d.q_heads * d.seq, d.seq, 1, 1});
    return;
  }
  t.set_dim({s.bucket, d.q_heads, d.seq, 1})
      .set_stride({d.seq * d.q_heads, 1, d.q_heads, 1})
      .set_ragged_offset(index.offset_stats);
}

std::shared_ptr<fe::graph::Graph> new_graph() {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  return g;
}

float score_scale(const AttentionDims& d) {
  return 1.f / std::sqrt(static_cast<float>(d.head_dim));
}

// Causal (top-left: query i sees keys j <= i of its row or document) and, ragged, each document
// its own sequence: the options the forward and backward share.
template <class Attributes>
void set_masking(Attributes& options, const Shape& s, const RaggedIndex& index) {
  options.set_attn_scale(score_scale(s.d))
      .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
      .set_diagonal_band_right_bound(0);
  if (!s.ragged()) return;
  const int64_t tokens = s.d.batch * s.d.seq;
  options.set_padding_mask(true)
      .set_seq_len_q(index.seq_len_q)
      .set_seq_len_kv(index.seq_len_kv)
      .set_max_total_seq_len_q(tokens)
      .set_max_total_seq_len_kv(tokens);
}

std::shared_ptr<fe::graph::Graph> forward_graph(const Shape& s) {
  const AttentionDims& d = s.d;
  auto g = new_graph();
  const RaggedIndex index = ragged_index(*g, s);
  auto q = bshd_input(*g, "Q", kQ, s, d.q_heads, index, false);
  auto k = bshd_input(*g, "K", kK, s, d.kv_heads, index, true);
  auto v = bshd_input(*g, "V", kV, s, d.kv_heads, index, true);
  auto options =
      fe::graph::SDPA_attributes().set_name("attention_forward").set_generate_stats(true);
  set_masking(options, s, index);
  auto [o, stats] = g->sdpa(q, k, v, options);
  set_bshd_output(o, kO, s, d.q_heads, index, false);
  stats->set_output(true);
  set_stats(*stats, s, index);
  return g;
}

std::shared_ptr<fe::graph::Graph> backward_graph(const Shape& s) {
  const AttentionDims& d = s.d;
  auto g = new_graph();
  const RaggedIndex index = ragged_index(*g, s);
  auto q = bshd_input(*g, "Q", kQ, s, d.q_heads, index, false);
  auto k = bshd_input(*g, "K", kK, s, d.kv_heads, index, true);
  auto v = bshd_input(*g, "V", kV, s, d.kv_heads, index, true);
  auto o = bshd_input(*g, "O", kO, s, d.q_heads, index, false);
  auto dout = bshd_input(*g, "dO", kDout, s, d.q_heads, index, false);
  fe::graph::Tensor_attributes stats_attributes;
  stats_attributes.set_name("Stats");
  set_stats(stats_attributes, s, index);
  auto stats = g->tensor(stats_attributes);
  auto options = fe::graph::SDPA_backward_attributes()
                     .set_name("attention_backward")
                     .set_deterministic_algorithm(true);
  set_masking(options, s, index);
  auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, dout, stats, options);
  set_bshd_output(dq, kDq, s, d.q_heads, index, false);
  set_bshd_output(dk, kDk, s, d.kv_heads, index, true);
  set_bshd_output(dv, kDv, s, d.kv_heads, index, true);
  return g;
}

// Validates and builds `g` for `handle`; the frontend's message where cuDNN refuses it.
bool build(fe::graph::Graph& g, cudnnHandle_t handle, std::string* why_not) {
  fe::error_t status = g.validate();
  if (status.is_good()) status = g.build_operation_graph(handle);
  if (status.is_good()) status = g.create_execution_plans({fe::HeurMode_t::A});
  if (status.is_good()) status = g.check_support(handle);
  if (status.is_good()) status = g.build_plans(handle);
  if (status.is_bad() && why_not != nullptr) *why_not = status.get_message();
  return status.is_good();
}

class CudnnAttentionImpl final : public CudnnAttention {
 public:
  CudnnAttentionImpl() {
    QWEN3_CUDNN_CHECK(cudnnCreate(&handle_));
    // The linear-workspace deterministic backward (see the top of this file), unless the user
    // chose otherwise.
    setenv("CUDNN_FRONTEND_ATTN_DP_WORKSPACE_LIMIT", "0", 0);
  }
  ~CudnnAttentionImpl() override { cudnnDestroy(handle_); }

  std::string name() const override {
    const size_t v = cudnnGetVersion();
    return fmt::format("cudnn {}.{}.{}", v / 10000, v / 100 % 100, v % 100);
  }

  bool supports(const AttentionDims& d, int64_t document_bucket, std::string* why_not) override {
    std::string reason;
    const bool taken = supports(Shape{d, document_bucket}, &reason);
    if (!taken && why_not != nullptr) *why_not = reason;
    return taken;
  }

  void set_documents(const AttentionDims& d, const DocumentSpans& spans,
                     cudaStream_t stream) override {
    // [lengths | offset_q | offset_kv | offset_stats]: the layout of index_ (index_pointers).
    const size_t entries = static_cast<size_t>(spans.bucket);
    host_index_.assign(entries + 3 * (entries + 1), 0);
    std::copy(spans.lengths.begin(), spans.lengths.end(), host_index_.begin());
    int32_t* offsets = host_index_.data() + entries;
    for (size_t i = 0; i <= entries; ++i) {
      const int64_t token = spans.starts[i];
      offsets[i] = static_cast<int32_t>(token * d.q_heads * d.head_dim);
      offsets[entries + 1 + i] = static_cast<int32_t>(token * d.kv_heads * d.head_dim);
      offsets[2 * (entries + 1) + i] = static_cast<int32_t>(token * d.q_heads);
    }
    const size_t bytes = host_index_.size() * sizeof(int32_t);
    if (bytes > index_.bytes()) {
      // Sized for the most documents a micro-batch of this shape can hold (one per token), so
      // this happens once per shape; queued work may still read the old one.
      QWEN3_CUDA_CHECK(cudaStreamSynchronize(stream));
      const size_t most = static_cast<size_t>(document_bucket(d.batch * d.seq));
      index_ = DeviceMemory(std::max(bytes, (most + 3 * (most + 1)) * sizeof(int32_t)));
    }
    // From pageable memory: staged before the call returns, so host_index_ may change after.
    QWEN3_CUDA_CHECK(
        cudaMemcpyAsync(index_.data(), host_index_.data(), bytes, cudaMemcpyHostToDevice, stream));
    documents_bucket_ = spans.bucket;
  }

  void forward(const AttentionDims& d, bool documents, const __nv_bfloat16* q,
               const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out, float* lse,
               cudaStream_t stream) override {
    const Shape shape = shape_of(d, documents);
    std::unordered_map<int64_t, void*> pack = {{kQ, const_cast<__nv_bfloat16*>(q)},
                                               {kK, const_cast<__nv_bfloat16*>(k)},
                                               {kV, const_cast<__nv_bfloat16*>(v)},
                                               {kO, out},
                                               {kStats, lse}};
    add_index(shape, pack);
    execute(*graphs_for(shape).forward, pack, stream);
  }

  void backward(const AttentionDims& d, bool documents, const __nv_bfloat16* dout,
                const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                const __nv_bfloat16* out, const float* lse, __nv_bfloat16* dq, __nv_bfloat16* dk,
                __nv_bfloat16* dv, cudaStream_t stream) override {
    const Shape shape = shape_of(d, documents);
    std::unordered_map<int64_t, void*> pack = {{kQ, const_cast<__nv_bfloat16*>(q)},
                                               {kK, const_cast<__nv_bfloat16*>(k)},
                                               {kV, const_cast<__nv_bfloat16*>(v)},
                                               {kO, const_cast<__nv_bfloat16*>(out)},
                                               {kDout, const_cast<__nv_bfloat16*>(dout)},
                                               {kStats, const_cast<float*>(lse)},
                                               {kDq, dq},
                                               {kDk, dk},
                                               {kDv, dv}};
    add_index(shape, pack);
    execute(*graphs_for(shape).backward, pack, stream);
  }

 private:
  struct Graphs {
    std::shared_ptr<fe::graph::Graph> forward, backward;
  };

  bool supports(const Shape& s, std::string* why_not) {
    const AttentionDims& d = s.d;
    if (d.head_dim % 8 != 0 || d.head_dim > 256) {
      *why_not = fmt::format("head_dim {} is not taken", d.head_dim);
      return false;
    }
    // The ragged offsets are int32 element counts.
    if (s.ragged() && d.batch * d.seq * d.q_heads * d.head_dim > INT32_MAX) {
      *why_not = fmt::format("{} × {} tokens of {} × {} are past the ragged layout's int32 offsets",
                             d.batch, d.seq, d.q_heads, d.head_dim);
      return false;
    }
    const Key key = key_of(s);
    if (const auto found = refused_.find(key); found != refused_.end()) {
      *why_not = found->second;
      return false;
    }
    if (graphs_.count(key) != 0) return true;
    Graphs graphs{forward_graph(s), backward_graph(s)};
    std::string reason;
    if (!build(*graphs.forward, handle_, &reason) || !build(*graphs.backward, handle_, &reason)) {
      refused_[key] =
          fmt::format("cuDNN refused batch {} × {} tokens{}, {}/{} heads of {}: {}", d.batch, d.seq,
                      s.ragged() ? fmt::format(" as {} documents", s.bucket) : "", d.q_heads,
                      d.kv_heads, d.head_dim, reason);
      *why_not = refused_[key];
      return false;
    }
    graphs_.emplace(key, std::move(graphs));
    return true;
  }

  Shape shape_of(const AttentionDims& d, bool documents) const {
    QWEN3_CHECK(!documents || documents_bucket_ > 0,
                "cuDNN attention: document masking asked for before set_documents");
    return {d, documents ? documents_bucket_ : 0};
  }

  // The ragged layout's lengths and offsets, as set_documents laid them out in index_.
  void add_index(const Shape& s, std::unordered_map<int64_t, void*>& pack) const {
    if (!s.ragged()) return;
    int32_t* base = static_cast<int32_t*>(index_.data());
    const int64_t offsets = s.bucket + 1;
    pack[kSeqLenQ] = base;
    pack[kSeqLenKv] = base;
    pack[kOffsetQ] = base + s.bucket;
    pack[kOffsetKv] = base + s.bucket + offsets;
    pack[kOffsetStats] = base + s.bucket + 2 * offsets;
  }

  const Graphs& graphs_for(const Shape& s) const {
    const auto found = graphs_.find(key_of(s));
    QWEN3_CHECK(found != graphs_.end(),
                "cuDNN attention: no graph for batch {} × {} tokens ({} documents), {}/{} heads of "
                "{} (supports() was not asked, or refused it)",
                s.d.batch, s.d.seq, s.bucket, s.d.q_heads, s.d.kv_heads, s.d.head_dim);
    return found->second;
  }

  void execute(fe::graph::Graph& g, std::unordered_map<int64_t, void*>& pack, cudaStream_t stream) {
    int64_t bytes = 0;
    QWEN3_CUDNN_FE_CHECK(g.get_workspace_size(bytes));
    if (static_cast<size_t>(bytes) > workspace_.bytes()) {
      // Queued work may still use the old workspace: it is freed only after the stream drains.
      QWEN3_CUDA_CHECK(cudaStreamSynchronize(stream));
      workspace_ = DeviceMemory(static_cast<size_t>(bytes));
    }
    QWEN3_CUDNN_CHECK(cudnnSetStream(handle_, stream));
    QWEN3_CUDNN_FE_CHECK(g.execute(handle_, pack, workspace_.data()));
  }

  cudnnHandle_t handle_ = nullptr;
  std::map<Key, Graphs> graphs_;
  std::map<Key, std::string> refused_;
  DeviceMemory workspace_;
  std::vector<int32_t> host_index_;  // what set_documents uploads into index_
  DeviceMemory index_;
  int64_t documents_bucket_ = 0;  // entries of the spans last set; 0 before any
};

}  // namespace

bool cudnn_in_build() {
  return true;
}

std::unique_ptr<CudnnAttention> make_cudnn_attention(std::string* why_not) {
  const size_t version = cudnnGetVersion();
  if (version < kMinimumVersion) {
    if (why_not != nullptr)
      *why_not = fmt::format(
          "cuDNN {}.{}.{} is older than 9.25, whose deterministic backward needs no seq² "
          "workspace",
          version / 10000, version / 100 % 100, version % 100);
    return nullptr;
  }
  try {
    return std::make_unique<CudnnAttentionImpl>();
  } catch (const Error& e) {
    if (why_not != nullptr) *why_not = std::string("cuDNN does not start: ") + e.what();
    return nullptr;
  }
}

}  // namespace qwen3::cuda
