// cuDNN's fused attention through cudnn-frontend's SDPA graphs (attention_cudnn.h). Dense BSHD:
// Q, K, V, O and their gradients are read and written in place through strides over the
// project's [batch, seq, heads, head_dim] layout; Stats (the log-sum-exp, fp32, natural log) is
// [batch, q_heads, seq, 1], the project's lse. Causal as a diagonal band aligned top-left with
// right bound 0. The backward is deterministic; cuDNN >= 9.25 serves that on Hopper with an
// ordered dQ accumulation whose workspace grows linearly with the sequence, chosen when
// CUDNN_FRONTEND_ATTN_DP_WORKSPACE_LIMIT is 0 (otherwise it takes a dP workspace of
// batch × heads × seq² × 2 bytes: 32 GiB for one 32K row).
//
// One translation unit of its own: the frontend's headers take about a minute and 2 GB to
// compile.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>

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
enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kDout, kDq, kDk, kDv };

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>;

Key key_of(const AttentionDims& d) {
  return {d.batch, d.seq, d.q_heads, d.kv_heads, d.head_dim};
}

// [batch, heads, seq, head_dim] dims with the strides of a [batch, seq, heads, head_dim] buffer.
fe::graph::Tensor_attributes bshd(const char* name, Uid uid, const AttentionDims& d,
                                  int64_t heads) {
  return fe::graph::Tensor_attributes()
      .set_name(name)
      .set_uid(uid)
      .set_dim({d.batch, heads, d.seq, d.head_dim})
      .set_stride({d.seq * heads * d.head_dim, d.head_dim, heads * d.head_dim, 1});
}

void set_bshd(const std::shared_ptr<fe::graph::Tensor_attributes>& t, Uid uid,
              const AttentionDims& d, int64_t heads) {
  t->set_output(true)
      .set_uid(uid)
      .set_dim({d.batch, heads, d.seq, d.head_dim})
      .set_stride({d.seq * heads * d.head_dim, d.head_dim, heads * d.head_dim, 1});
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

std::shared_ptr<fe::graph::Graph> forward_graph(const AttentionDims& d) {
  auto g = new_graph();
  auto q = g->tensor(bshd("Q", kQ, d, d.q_heads));
  auto k = g->tensor(bshd("K", kK, d, d.kv_heads));
  auto v = g->tensor(bshd("V", kV, d, d.kv_heads));
  auto options = fe::graph::SDPA_attributes()
                     .set_name("attention_forward")
                     .set_generate_stats(true)
                     .set_attn_scale(score_scale(d))
                     .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
                     .set_diagonal_band_right_bound(0);
  auto [o, stats] = g->sdpa(q, k, v, options);
  set_bshd(o, kO, d, d.q_heads);
  stats->set_output(true)
      .set_uid(kStats)
      .set_data_type(fe::DataType_t::FLOAT)
      .set_dim({d.batch, d.q_heads, d.seq, 1})
      .set_stride({d.q_heads * d.seq, d.seq, 1, 1});
  return g;
}

std::shared_ptr<fe::graph::Graph> backward_graph(const AttentionDims& d) {
  auto g = new_graph();
  auto q = g->tensor(bshd("Q", kQ, d, d.q_heads));
  auto k = g->tensor(bshd("K", kK, d, d.kv_heads));
  auto v = g->tensor(bshd("V", kV, d, d.kv_heads));
  auto o = g->tensor(bshd("O", kO, d, d.q_heads));
  auto dout = g->tensor(bshd("dO", kDout, d, d.q_heads));
  auto stats = g->tensor(fe::graph::Tensor_attributes()
                             .set_name("Stats")
                             .set_uid(kStats)
                             .set_data_type(fe::DataType_t::FLOAT)
                             .set_dim({d.batch, d.q_heads, d.seq, 1})
                             .set_stride({d.q_heads * d.seq, d.seq, 1, 1}));
  auto options = fe::graph::SDPA_backward_attributes()
                     .set_name("attention_backward")
                     .set_attn_scale(score_scale(d))
                     .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
                     .set_diagonal_band_right_bound(0)
                     .set_deterministic_algorithm(true);
  auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, dout, stats, options);
  set_bshd(dq, kDq, d, d.q_heads);
  set_bshd(dk, kDk, d, d.kv_heads);
  set_bshd(dv, kDv, d, d.kv_heads);
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

  bool supports(const AttentionDims& d, bool documents, std::string* why_not) override {
    if (documents) {
      if (why_not != nullptr)
        *why_not = "document masking needs cuDNN's ragged (THD) layout, not wired in yet";
      return false;
    }
    if (d.head_dim % 8 != 0 || d.head_dim > 256) {
      if (why_not != nullptr) *why_not = fmt::format("head_dim {} is not taken", d.head_dim);
      return false;
    }
    const Key key = key_of(d);
    if (const auto found = refused_.find(key); found != refused_.end()) {
      if (why_not != nullptr) *why_not = found->second;
      return false;
    }
    if (graphs_.count(key) != 0) return true;
    Graphs graphs{forward_graph(d), backward_graph(d)};
    std::string reason;
    if (!build(*graphs.forward, handle_, &reason) || !build(*graphs.backward, handle_, &reason)) {
      refused_[key] = fmt::format("cuDNN refused batch {} × {} tokens, {}/{} heads of {}: {}",
                                  d.batch, d.seq, d.q_heads, d.kv_heads, d.head_dim, reason);
      if (why_not != nullptr) *why_not = refused_[key];
      return false;
    }
    graphs_.emplace(key, std::move(graphs));
    return true;
  }

  void forward(const AttentionDims& d, const __nv_bfloat16* q, const __nv_bfloat16* k,
               const __nv_bfloat16* v, __nv_bfloat16* out, float* lse,
               cudaStream_t stream) override {
    std::unordered_map<int64_t, void*> pack = {{kQ, const_cast<__nv_bfloat16*>(q)},
                                               {kK, const_cast<__nv_bfloat16*>(k)},
                                               {kV, const_cast<__nv_bfloat16*>(v)},
                                               {kO, out},
                                               {kStats, lse}};
    execute(*graphs_for(d).forward, pack, stream);
  }

  void backward(const AttentionDims& d, const __nv_bfloat16* dout, const __nv_bfloat16* q,
                const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* out,
                const float* lse, __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv,
                cudaStream_t stream) override {
    std::unordered_map<int64_t, void*> pack = {{kQ, const_cast<__nv_bfloat16*>(q)},
                                               {kK, const_cast<__nv_bfloat16*>(k)},
                                               {kV, const_cast<__nv_bfloat16*>(v)},
                                               {kO, const_cast<__nv_bfloat16*>(out)},
                                               {kDout, const_cast<__nv_bfloat16*>(dout)},
                                               {kStats, const_cast<float*>(lse)},
                                               {kDq, dq},
                                               {kDk, dk},
                                               {kDv, dv}};
    execute(*graphs_for(d).backward, pack, stream);
  }

 private:
  struct Graphs {
    std::shared_ptr<fe::graph::Graph> forward, backward;
  };

  const Graphs& graphs_for(const AttentionDims& d) const {
    const auto found = graphs_.find(key_of(d));
    QWEN3_CHECK(found != graphs_.end(),
                "cuDNN attention: no graph for batch {} × {} tokens, {}/{} heads of {} "
                "(supports() was not asked, or refused it)",
                d.batch, d.seq, d.q_heads, d.kv_heads, d.head_dim);
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
