// CUDA flash attention against the fp32 CPU reference on the same bf16-rounded inputs: outputs by
// normalised error (‖ref − got‖ / ‖ref‖), every output element finite after poisoning with NaN,
// runs bit for bit repeatable. At 40,960 tokens the full reference is too slow, so chosen rows
// are checked against a direct double-precision computation instead. Without a GPU every test
// skips, saying why.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../common/attention_documents.h"
#include "../common/document_isolation.h"
#include "../common/normalised_error.h"
#include "core/cuda/device.h"
#include "core/cuda/memory.h"
#include "core/kernels/cpu/attention.h"
#include "core/kernels/cuda/attention.h"
#include "core/kernels/cuda/attention_cudnn.h"
#include "core/ops/cuda_backend.h"
#include "core/tensor/bf16.h"
#include "core/util/error.h"
#include "core/util/rng.h"

namespace {

using qwen3::test_data::documents;
using qwen3::test_data::normalised_error;

using qwen3::cuda::AttentionDims;
using qwen3::cuda::DeviceMemory;

constexpr uint64_t kSeed = 20260501;
constexpr uint16_t kBf16NaN = 0x7FC0;
constexpr double kBf16Tolerance = 1e-2;  // outputs stored in bf16 (8-bit mantissa)
constexpr double kLseTolerance = 1e-4;   // fp32 output

#define SKIP_WITHOUT_GPU()                                                       \
  do {                                                                           \
    if (qwen3::cuda::device_count() == 0)                                        \
      GTEST_SKIP() << "no CUDA device here (" << qwen3::cuda::no_device_reason() \
                   << "); this test runs on a GPU machine";                      \
    qwen3::cuda::select_device_for_local_rank(0);                                \
  } while (0)

// cuDNN's attention where this build and machine have it, else null with why_not set.
qwen3::cuda::CudnnAttention* cudnn_attention(std::string* why_not) {
  static std::string why;
  static const std::unique_ptr<qwen3::cuda::CudnnAttention> attention =
      qwen3::cuda::make_cudnn_attention(&why);
  *why_not = why;
  return attention.get();
}

#define SKIP_WITHOUT_CUDNN()                                      \
  do {                                                            \
    SKIP_WITHOUT_GPU();                                           \
    std::string why_;                                             \
    if (cudnn_attention(&why_) == nullptr)                        \
      GTEST_SKIP() << "no cuDNN attention here (" << why_ << ")"; \
  } while (0)

// Values rounded to bf16: the bits to upload and the same values as floats for the reference.
struct Bf16Values {
  std::vector<uint16_t> bits;
  std::vector<float> values;
};

Bf16Values round_bf16(const std::vector<float>& values) {
  Bf16Values out;
  for (float x : values) {
    out.bits.push_back(qwen3::float_to_bf16_bits(x));
    out.values.push_back(qwen3::bf16_bits_to_float(out.bits.back()));
  }
  return out;
}

Bf16Values random_bf16(int64_t n, uint64_t stream) {
  std::vector<float> raw(static_cast<size_t>(n));
  qwen3::fill_normal(raw.data(), n, 0.0, 1.0, kSeed, stream);
  return round_bf16(raw);
}

template <class T>
DeviceMemory upload(const std::vector<T>& host) {
  DeviceMemory memory(host.size() * sizeof(T));
  qwen3::cuda::copy_to_device(memory.data(), host.data(), memory.bytes());
  return memory;
}

template <class T>
std::vector<T> download(const DeviceMemory& memory) {
  std::vector<T> host(memory.bytes() / sizeof(T));
  qwen3::cuda::copy_to_host(host.data(), memory.data(), memory.bytes());
  return host;
}

std::vector<float> to_floats(const std::vector<uint16_t>& bits) {
  std::vector<float> out;
  for (uint16_t b : bits)
    out.push_back(qwen3::bf16_bits_to_float(b));
  return out;
}

__nv_bfloat16* bf16s(const DeviceMemory& m) {
  return static_cast<__nv_bfloat16*>(m.data());
}

// Index of the first element that is NaN or infinite, or -1.
int64_t first_non_finite(const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) return static_cast<int64_t>(i);
  return -1;
}

// Inputs on host (bf16-rounded) and device, and the kernels' outputs.
struct Problem {
  AttentionDims d;
  std::vector<int32_t> docs;  // [batch, seq], empty for none
  Bf16Values q, k, v, dout;
  DeviceMemory q_dev, k_dev, v_dev, dout_dev, docs_dev;
  qwen3::cuda::CudnnAttention* cudnn = nullptr;  // run cuDNN's attention instead of ours

  Problem(const AttentionDims& dims, std::vector<int32_t> doc_ids)
      : d(dims), docs(std::move(doc_ids)) {
    q = random_bf16(q_elems(), 1);
    k = random_bf16(kv_elems(), 2);
    v = random_bf16(kv_elems(), 3);
    dout = random_bf16(q_elems(), 4);
    q_dev = upload(q.bits);
    k_dev = upload(k.bits);
    v_dev = upload(v.bits);
    dout_dev = upload(dout.bits);
    if (!docs.empty()) docs_dev = upload(docs);
  }
  int64_t q_elems() const { return d.batch * d.seq * d.q_heads * d.head_dim; }
  int64_t kv_elems() const { return d.batch * d.seq * d.kv_heads * d.head_dim; }
  const int32_t* docs_ptr() const { return static_cast<const int32_t*>(docs_dev.data()); }
  qwen3::cpu::AttentionShape shape() const {
    return {d.batch, d.seq, d.q_heads, d.kv_heads, d.head_dim};
  }
  // cuDNN with documents: its ragged layout, whose lse is token-major [batch × seq, q_heads].
  bool ragged() const { return cudnn != nullptr && !docs.empty(); }

  // cuDNN's graphs for this problem built, and its documents handed over.
  void prepare_cudnn() {
    int64_t bucket = 0;
    std::string why_not;
    if (ragged()) {
      qwen3::cuda::DocumentSpans spans;
      ASSERT_TRUE(qwen3::cuda::document_spans(docs.data(), d.batch, d.seq, &spans, &why_not))
          << why_not;
      bucket = spans.bucket;
      ASSERT_TRUE(cudnn->supports(d, bucket, &why_not)) << why_not;
      cudnn->set_documents(d, spans, nullptr);
      return;
    }
    ASSERT_TRUE(cudnn->supports(d, bucket, &why_not)) << why_not;
  }

  // out (bf16 bits) and lse, outputs poisoned with NaN first.
  void forward(std::vector<uint16_t>* out, std::vector<float>* lse) {
    DeviceMemory out_dev = upload(std::vector<uint16_t>(q_elems(), kBf16NaN));
    DeviceMemory lse_dev = upload(
        std::vector<float>(d.batch * d.q_heads * d.seq, std::numeric_limits<float>::quiet_NaN()));
    if (cudnn != nullptr) {
      prepare_cudnn();
      cudnn->forward(d, ragged(), bf16s(q_dev), bf16s(k_dev), bf16s(v_dev), bf16s(out_dev),
                     static_cast<float*>(lse_dev.data()), nullptr);
    } else
      qwen3::cuda::attention_forward(d, bf16s(q_dev), bf16s(k_dev), bf16s(v_dev), docs_ptr(),
                                     bf16s(out_dev), static_cast<float*>(lse_dev.data()), nullptr);
    qwen3::cuda::synchronize_device();
    *out = download<uint16_t>(out_dev);
    *lse = download<float>(lse_dev);
  }

  // dq, dk, dv (bf16 bits) from the given out (bf16 bits) and lse; outputs and workspace poisoned.
  void backward(const std::vector<uint16_t>& out, const std::vector<float>& lse,
                std::vector<uint16_t>* dq, std::vector<uint16_t>* dk, std::vector<uint16_t>* dv) {
    DeviceMemory out_dev = upload(out), lse_dev = upload(lse);
    DeviceMemory dq_dev = upload(std::vector<uint16_t>(q_elems(), kBf16NaN));
    DeviceMemory dk_dev = upload(std::vector<uint16_t>(kv_elems(), kBf16NaN));
    DeviceMemory dv_dev = upload(std::vector<uint16_t>(kv_elems(), kBf16NaN));
    const size_t workspace_bytes = qwen3::cuda::attention_backward_workspace_bytes(d);
    ASSERT_GE(workspace_bytes, size_t(d.batch * d.q_heads * d.seq) * sizeof(float));
    DeviceMemory workspace = upload(std::vector<float>(workspace_bytes / sizeof(float),
                                                       std::numeric_limits<float>::quiet_NaN()));
    if (cudnn != nullptr) {
      prepare_cudnn();
      cudnn->backward(d, ragged(), bf16s(dout_dev), bf16s(q_dev), bf16s(k_dev), bf16s(v_dev),
                      bf16s(out_dev), static_cast<const float*>(lse_dev.data()), bf16s(dq_dev),
                      bf16s(dk_dev), bf16s(dv_dev), nullptr);
    } else
      qwen3::cuda::attention_backward(d, bf16s(dout_dev), bf16s(q_dev), bf16s(k_dev), bf16s(v_dev),
                                      bf16s(out_dev), static_cast<const float*>(lse_dev.data()),
                                      docs_ptr(), workspace.data(), bf16s(dq_dev), bf16s(dk_dev),
                                      bf16s(dv_dev), nullptr);
    qwen3::cuda::synchronize_device();
    *dq = download<uint16_t>(dq_dev);
    *dk = download<uint16_t>(dk_dev);
    *dv = download<uint16_t>(dv_dev);
  }
};

void expect_close(const char* name, const std::vector<float>& ref, const std::vector<float>& got,
                  double tolerance) {
  ASSERT_EQ(ref.size(), got.size()) << name;
  const int64_t bad = first_non_finite(got);
  ASSERT_EQ(bad, -1) << name << "[" << bad << "] is not finite (unwritten or overflowed)";
  const double error = normalised_error(ref, got);
  EXPECT_LT(error, tolerance) << name << ": normalised error " << error;
}

// lse[batch, heads, seq] as cuDNN's ragged layout keeps it: [batch × seq, heads].
std::vector<float> token_major(const std::vector<float>& lse, const AttentionDims& d) {
  std::vector<float> out(lse.size());
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.q_heads; ++h)
      for (int64_t t = 0; t < d.seq; ++t)
        out[(b * d.seq + t) * d.q_heads + h] = lse[(b * d.q_heads + h) * d.seq + t];
  return out;
}

// Forward against the CPU reference, then backward against it on the reference's out (rounded to
// bf16, as the GPU stores it) and lse, so each pass is checked on its own.
void check_against_reference(const AttentionDims& d, const std::vector<int32_t>& docs,
                             qwen3::cuda::CudnnAttention* cudnn = nullptr) {
  Problem p(d, docs);
  p.cudnn = cudnn;
  const int32_t* ref_docs = docs.empty() ? nullptr : docs.data();
  std::vector<float> ref_out(p.q_elems()), ref_lse(d.batch * d.q_heads * d.seq);
  qwen3::cpu::attention_forward<float>(p.shape(), p.q.values.data(), p.k.values.data(),
                                       p.v.values.data(), ref_docs, ref_out.data(), ref_lse.data());
  const std::vector<float> lse_as_kept = p.ragged() ? token_major(ref_lse, d) : ref_lse;
  std::vector<uint16_t> out;
  std::vector<float> lse;
  p.forward(&out, &lse);
  expect_close("out", ref_out, to_floats(out), kBf16Tolerance);
  expect_close("lse", lse_as_kept, lse, kLseTolerance);

  const Bf16Values out_bf16 = round_bf16(ref_out);
  std::vector<float> ref_dq(p.q_elems()), ref_dk(p.kv_elems()), ref_dv(p.kv_elems());
  qwen3::cpu::attention_backward<float>(p.shape(), p.dout.values.data(), p.q.values.data(),
                                        p.k.values.data(), p.v.values.data(),
                                        out_bf16.values.data(), ref_lse.data(), ref_docs,
                                        ref_dq.data(), ref_dk.data(), ref_dv.data());
  std::vector<uint16_t> dq, dk, dv;
  p.backward(out_bf16.bits, lse_as_kept, &dq, &dk, &dv);
  expect_close("dq", ref_dq, to_floats(dq), kBf16Tolerance);
  expect_close("dk", ref_dk, to_floats(dk), kBf16Tolerance);
  expect_close("dv", ref_dv, to_floats(dv), kBf16Tolerance);
}

TEST(CudaAttention, Causal) {
  SKIP_WITHOUT_GPU();
  check_against_reference({2, 300, 16, 8, 128}, {});
}

TEST(CudaAttention, DocumentsOfVaryingLengths) {
  SKIP_WITHOUT_GPU();
  check_against_reference({2, 300, 16, 8, 128},
                          documents({{1, 7, 64, 150, 78}, {33, 1, 200, 66}}, 0));
}

TEST(CudaAttention, NonMonotonicDocIds) {
  SKIP_WITHOUT_GPU();
  // Row 0: segments whose ids repeat out of order (a query sees every earlier key with its id,
  // across segments). Row 1: an id per token drawn from {-5, 3, 7}, so the mask is scattered.
  std::vector<int32_t> docs;
  const int32_t segment_ids[] = {7, 3, 7, -1, 3, 1000000};
  const int64_t segment_lengths[] = {40, 100, 60, 1, 49, 50};
  for (int s = 0; s < 6; ++s)
    docs.insert(docs.end(), static_cast<size_t>(segment_lengths[s]), segment_ids[s]);
  const int32_t token_ids[] = {-5, 3, 7};
  for (int64_t i = 0; i < 300; ++i)
    docs.push_back(token_ids[qwen3::random_bits(kSeed, 9, uint64_t(i)) % 3]);
  check_against_reference({2, 300, 16, 8, 128}, docs);
}

TEST(CudaAttention, HeadDim16) {
  SKIP_WITHOUT_GPU();
  check_against_reference({1, 97, 4, 1, 16}, {});
}

TEST(CudaAttention, HeadDim32OneQueryHeadPerKvHead) {
  SKIP_WITHOUT_GPU();
  check_against_reference({2, 130, 3, 3, 32}, documents({{50, 80}, {1, 129}}, 10));
}

TEST(CudaAttention, HeadDim64) {
  SKIP_WITHOUT_GPU();
  check_against_reference({1, 200, 6, 3, 64}, documents({{3, 120, 77}}, 0));
}

TEST(CudaAttention, HeadDim256) {
  SKIP_WITHOUT_GPU();
  check_against_reference({2, 150, 4, 2, 256}, documents({{150}, {17, 60, 73}}, 0));
}

// Checked before any CUDA call, so this runs without a GPU too.
TEST(CudaAttention, UnsupportedHeadDimIsAnError) {
  const AttentionDims d{1, 8, 2, 1, 48};
  try {
    qwen3::cuda::attention_forward(d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                   nullptr);
    FAIL() << "forward accepted head_dim 48";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 48"), std::string::npos) << e.what();
  }
  try {
    qwen3::cuda::attention_backward(d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    FAIL() << "backward accepted head_dim 48";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 48"), std::string::npos) << e.what();
  }
}

// Changing every input of one document (q, k, v and the output gradient) leaves the other
// documents' out, lse, dq, dk and dv bit-identical: masked keys add exactly nothing, whichever
// tiles the documents share. Forward and backward chained as the model runs them.
void expect_documents_isolated(qwen3::cuda::CudnnAttention* cudnn) {
  const AttentionDims d{1, 700, 16, 8, 128};
  const std::vector<int32_t> docs = documents({{200, 150, 350}}, 5);
  const int32_t changed_doc = 6;  // tokens 200..349, sharing tiles with both neighbours
  struct Outputs {
    std::vector<uint16_t> out, dq, dk, dv;
    std::vector<float> lse;
  };
  auto run = [&](Problem& p) {
    Outputs o;
    p.forward(&o.out, &o.lse);
    p.backward(o.out, o.lse, &o.dq, &o.dk, &o.dv);
    return o;
  };
  Problem original(d, docs), changed(d, docs);
  original.cudnn = changed.cudnn = cudnn;
  qwen3::test_data::change_document(
      docs, changed_doc, d.q_heads * d.head_dim, d.kv_heads * d.head_dim, changed.q.bits,
      changed.k.bits, changed.v.bits, changed.dout.bits, random_bf16(changed.q_elems(), 11).bits,
      random_bf16(changed.kv_elems(), 12).bits);
  changed.q_dev = upload(changed.q.bits);
  changed.k_dev = upload(changed.k.bits);
  changed.v_dev = upload(changed.v.bits);
  changed.dout_dev = upload(changed.dout.bits);
  const Outputs before = run(original), after = run(changed);
  using qwen3::test_data::expect_only_document_changed;
  expect_only_document_changed("out", docs, changed_doc, before.out, after.out, false);
  expect_only_document_changed("lse", docs, changed_doc, before.lse, after.lse, !original.ragged());
  expect_only_document_changed("dq", docs, changed_doc, before.dq, after.dq, false);
  expect_only_document_changed("dk", docs, changed_doc, before.dk, after.dk, false);
  expect_only_document_changed("dv", docs, changed_doc, before.dv, after.dv, false);
}

TEST(CudaAttention, ChangingOneDocumentLeavesTheOthersBitIdentical) {
  SKIP_WITHOUT_GPU();
  expect_documents_isolated(nullptr);
}

// Forward twice and backward twice on the same inputs: the same bits each time.
void expect_repeatable(Problem& p) {
  std::vector<uint16_t> out1, out2, dq1, dk1, dv1, dq2, dk2, dv2;
  std::vector<float> lse1, lse2;
  p.forward(&out1, &lse1);
  p.forward(&out2, &lse2);
  EXPECT_EQ(out1, out2);
  EXPECT_EQ(lse1, lse2);
  p.backward(out1, lse1, &dq1, &dk1, &dv1);
  p.backward(out1, lse1, &dq2, &dk2, &dv2);
  EXPECT_EQ(dq1, dq2);
  EXPECT_EQ(dk1, dk2);
  EXPECT_EQ(dv1, dv2);
}

TEST(CudaAttention, RepeatedRunsAreBitIdentical) {
  SKIP_WITHOUT_GPU();
  Problem p({2, 300, 16, 8, 128}, documents({{1, 7, 64, 150, 78}, {300}}, 0));
  expect_repeatable(p);
}

// cuDNN's fused attention (where installed, >= 9.25) against the same reference: dense causal
// rows and documents (its ragged layout), GQA 1, 2 and 4, head_dim 32, 64 and 128, sequences
// ending mid-tile, documents of one token and bucket entries left empty, document isolation, and
// bit-identical reruns (its deterministic backward).
TEST(CudnnAttention, CausalAgainstTheCpuReference) {
  SKIP_WITHOUT_CUDNN();
  std::string why_not;
  qwen3::cuda::CudnnAttention* cudnn = cudnn_attention(&why_not);
  for (const AttentionDims& d : {AttentionDims{2, 300, 16, 8, 128}, AttentionDims{1, 257, 4, 1, 64},
                                 AttentionDims{2, 130, 3, 3, 32}}) {
    check_against_reference(d, {}, cudnn);
  }
}

TEST(CudnnAttention, DocumentsAgainstTheCpuReference) {
  SKIP_WITHOUT_CUDNN();
  std::string why_not;
  qwen3::cuda::CudnnAttention* cudnn = cudnn_attention(&why_not);
  // 9 documents: a bucket of 16, 7 entries empty. Ids out of order, each contiguous.
  check_against_reference({2, 300, 16, 8, 128},
                          documents({{1, 7, 64, 150, 78}, {33, 1, 200, 66}}, 0), cudnn);
  std::vector<int32_t> out_of_order = documents({{40, 100, 60, 1, 49, 50}}, 0);
  for (int32_t& id : out_of_order)
    id = 1000 - 7 * id;
  check_against_reference({1, 300, 4, 1, 64}, out_of_order, cudnn);
  check_against_reference({2, 130, 3, 3, 32}, documents({{50, 80}, {1, 129}}, 10), cudnn);
  check_against_reference({1, 200, 6, 3, 64}, documents({{200}}, 0), cudnn);
}

TEST(CudnnAttention, ChangingOneDocumentLeavesTheOthersBitIdentical) {
  SKIP_WITHOUT_CUDNN();
  std::string why_not;
  expect_documents_isolated(cudnn_attention(&why_not));
}

TEST(CudnnAttention, RepeatedRunsAreBitIdentical) {
  SKIP_WITHOUT_CUDNN();
  std::string why_not;
  for (const std::vector<int32_t>& docs :
       {std::vector<int32_t>{}, documents({{1, 7, 64, 150, 78}, {300}}, 0)}) {
    Problem p({2, 300, 16, 8, 128}, docs);
    p.cudnn = cudnn_attention(&why_not);
    expect_repeatable(p);
  }
}

// The backend's choice for a stage: flash when asked; cuDNN when asked for (or auto) and it takes
// the shape, else flash with a reason, and a warning where cuDNN exists but cannot serve or was
// asked for by name.
TEST(CudaAttention, ChoiceNamesWhatRunsAndWhy) {
  SKIP_WITHOUT_GPU();
  const std::unique_ptr<qwen3::Backend> backend = qwen3::make_cuda_backend(0);
  qwen3::AttentionRequest request{"flash", 2, 256, 16, 8, 128, false};
  const qwen3::AttentionChoice flash = backend->choose_attention(request);
  EXPECT_EQ(flash.kernels, "flash");
  EXPECT_EQ(flash.note, "");
  EXPECT_FALSE(flash.warn);

  std::string why_not;
  const bool have_cudnn = cudnn_attention(&why_not) != nullptr;
  for (const char* kernels : {"auto", "cudnn"}) {
    request.kernels = kernels;
    const qwen3::AttentionChoice dense = backend->choose_attention(request);
    if (have_cudnn) {
      EXPECT_EQ(dense.kernels.rfind("cudnn ", 0), 0u) << dense.kernels << ": " << dense.note;
      EXPECT_EQ(dense.note, "");
    } else {
      EXPECT_EQ(dense.kernels, "flash");
      EXPECT_EQ(dense.note, "cuDNN: " + why_not);
      EXPECT_EQ(dense.warn, request.kernels == "cudnn" || qwen3::cuda::cudnn_in_build());
    }
    request.documents = true;
    // Documents go by cuDNN's ragged layout where cuDNN serves dense rows.
    const qwen3::AttentionChoice with_documents = backend->choose_attention(request);
    EXPECT_EQ(with_documents.kernels, dense.kernels) << with_documents.note;
    EXPECT_EQ(with_documents.note, dense.note);
    request.documents = false;
  }
  request.kernels = "fastest";
  EXPECT_THROW(backend->choose_attention(request), qwen3::Error);
}

// Double-precision attention for single rows of a batch-1 problem with contiguous documents.
struct RowReference {
  const Problem& p;
  const std::vector<float>& out;  // the GPU's out, which its backward reads

  int64_t dim() const { return p.d.head_dim; }
  double scale() const { return 1.0 / std::sqrt(double(dim())); }
  const float* q(int64_t h, int64_t i) const { return &p.q.values[(i * p.d.q_heads + h) * dim()]; }
  const float* dout(int64_t h, int64_t i) const {
    return &p.dout.values[(i * p.d.q_heads + h) * dim()];
  }
  // One KV head (the long test has kv_heads 1).
  const float* k(int64_t j) const { return &p.k.values[j * dim()]; }
  const float* v(int64_t j) const { return &p.v.values[j * dim()]; }
  static double dot(const float* a, const float* b, int64_t n) {
    double s = 0.0;
    for (int64_t c = 0; c < n; ++c)
      s += double(a[c]) * b[c];
    return s;
  }
  bool visible(int64_t i, int64_t j) const { return j <= i && p.docs[j] == p.docs[i]; }
  double score(int64_t h, int64_t i, int64_t j) const {
    return scale() * dot(q(h, i), k(j), dim());
  }
  double lse(int64_t h, int64_t i) const {
    double max_score = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j <= i; ++j)
      if (visible(i, j)) max_score = std::max(max_score, score(h, i, j));
    for (int64_t j = 0; j <= i; ++j)
      if (visible(i, j)) sum += std::exp(score(h, i, j) - max_score);
    return max_score + std::log(sum);
  }
  // Appends out[h, i] and dq[h, i] to the given lists.
  void query_row(int64_t h, int64_t i, double row_lse, std::vector<float>* out_row,
                 std::vector<float>* dq_row) const {
    const double d_i = dot(dout(h, i), &out[(i * p.d.q_heads + h) * dim()], dim());
    std::vector<double> o(dim(), 0.0), g(dim(), 0.0);
    for (int64_t j = 0; j <= i; ++j) {
      if (!visible(i, j)) continue;
      const double prob = std::exp(score(h, i, j) - row_lse);
      const double ds = prob * (dot(dout(h, i), v(j), dim()) - d_i);
      for (int64_t c = 0; c < dim(); ++c) {
        o[c] += prob * v(j)[c];
        g[c] += scale() * ds * k(j)[c];
      }
    }
    out_row->insert(out_row->end(), o.begin(), o.end());
    dq_row->insert(dq_row->end(), g.begin(), g.end());
  }
  // Appends dk[j] and dv[j] (summed over the query heads) to the given lists.
  void key_row(int64_t j, std::vector<float>* dk_row, std::vector<float>* dv_row) const {
    std::vector<double> dk(dim(), 0.0), dv(dim(), 0.0);
    for (int64_t h = 0; h < p.d.q_heads; ++h) {
      for (int64_t i = j; i < p.d.seq; ++i) {
        if (!visible(i, j)) continue;
        const double d_i = dot(dout(h, i), &out[(i * p.d.q_heads + h) * dim()], dim());
        const double prob = std::exp(score(h, i, j) - lse(h, i));
        const double ds = prob * (dot(dout(h, i), v(j), dim()) - d_i);
        for (int64_t c = 0; c < dim(); ++c) {
          dv[c] += prob * dout(h, i)[c];
          dk[c] += scale() * ds * q(h, i)[c];
        }
      }
    }
    dk_row->insert(dk_row->end(), dk.begin(), dk.end());
    dv_row->insert(dv_row->end(), dv.begin(), dv.end());
  }
};

TEST(CudaAttention, LongSequenceWithDocuments) {
  SKIP_WITHOUT_GPU();
  // Documents of 12,289, 1, 20,000 and 8,670 tokens, ids out of order.
  std::vector<int32_t> docs;
  const int32_t ids[] = {4, 9, 2, 7};
  const int64_t lengths[] = {12289, 1, 20000, 8670};
  for (int s = 0; s < 4; ++s)
    docs.insert(docs.end(), static_cast<size_t>(lengths[s]), ids[s]);
  Problem p({1, 40960, 2, 1, 128}, docs);
  std::vector<uint16_t> out_bits, dq_bits, dk_bits, dv_bits;
  std::vector<float> lse;
  p.forward(&out_bits, &lse);
  p.backward(out_bits, lse, &dq_bits, &dk_bits, &dv_bits);
  const std::vector<float> out = to_floats(out_bits), dq = to_floats(dq_bits),
                           dk = to_floats(dk_bits), dv = to_floats(dv_bits);
  const std::vector<const std::vector<float>*> outputs = {&out, &lse, &dq, &dk, &dv};
  for (const std::vector<float>* values : outputs) {
    const int64_t bad = first_non_finite(*values);
    ASSERT_EQ(bad, -1) << "element " << bad << " is not finite";
  }

  // Query rows at document edges (first, last, the 1-token document) and in the middle.
  const RowReference ref{p, out};
  const int64_t dim = p.d.head_dim;
  std::vector<float> want_out, got_out, want_lse, got_lse, want_dq, got_dq;
  for (int64_t i : {0, 5000, 12288, 12289, 12290, 32289, 32290, 40959}) {
    for (int64_t h = 0; h < p.d.q_heads; ++h) {
      const double row_lse = ref.lse(h, i);
      want_lse.push_back(float(row_lse));
      got_lse.push_back(lse[h * p.d.seq + i]);
      ref.query_row(h, i, row_lse, &want_out, &want_dq);
      const int64_t at = (i * p.d.q_heads + h) * dim;
      got_out.insert(got_out.end(), out.begin() + at, out.begin() + at + dim);
      got_dq.insert(got_dq.end(), dq.begin() + at, dq.begin() + at + dim);
    }
  }
  expect_close("lse rows", want_lse, got_lse, kLseTolerance);
  expect_close("out rows", want_out, got_out, kBf16Tolerance);
  expect_close("dq rows", want_dq, got_dq, kBf16Tolerance);

  // Keys near the end of their document, so that few queries see them.
  std::vector<float> want_dk, got_dk, want_dv, got_dv;
  for (int64_t j : {12283, 12288, 12289, 32285, 32289, 40950, 40959}) {
    ref.key_row(j, &want_dk, &want_dv);
    got_dk.insert(got_dk.end(), dk.begin() + j * dim, dk.begin() + (j + 1) * dim);
    got_dv.insert(got_dv.end(), dv.begin() + j * dim, dv.begin() + (j + 1) * dim);
  }
  expect_close("dk rows", want_dk, got_dk, kBf16Tolerance);
  expect_close("dv rows", want_dv, got_dv, kBf16Tolerance);
}

}  // namespace
