// Flash attention (attention_forward.cu, attention_backward.cu) under the emulator, through its
// launchers, against the fp32 CPU reference on the same bf16-rounded inputs: every head_dim the
// launchers support, grouped-query heads, documents of varying lengths (one token among them) and
// out-of-order ids, sequences that end mid-tile. Outputs and workspace start poisoned. The GPU
// test (tests/unit/test_cuda_attention.cpp) runs larger shapes and 40,960 tokens; these are cut to
// what fibers run in seconds.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/kernels/cpu/attention.h"
#include "core/kernels/cuda/attention.h"
#include "core/tensor/bf16.h"
#include "core/util/error.h"
#include "core/util/rng.h"
#include "tests/common/attention_documents.h"
#include "tests/common/document_isolation.h"
#include "tests/emulator/kernel_test_support.h"

namespace qwen3::emulator_test {
namespace {

using qwen3::cuda::AttentionDims;
using qwen3::test_data::documents;

// Inputs on the host (bf16-rounded) and the kernels' outputs.
struct Problem {
  AttentionDims d;
  std::vector<int32_t> docs;  // [batch, seq], empty for none
  Bf16Values q, k, v, dout;

  Problem(const AttentionDims& dims, std::vector<int32_t> doc_ids)
      : d(dims), docs(std::move(doc_ids)) {
    q = random_bf16(q_elems(), 1);
    k = random_bf16(kv_elems(), 2);
    v = random_bf16(kv_elems(), 3);
    dout = random_bf16(q_elems(), 4);
  }
  int64_t q_elems() const { return d.batch * d.seq * d.q_heads * d.head_dim; }
  int64_t kv_elems() const { return d.batch * d.seq * d.kv_heads * d.head_dim; }
  int64_t rows() const { return d.batch * d.q_heads * d.seq; }
  qwen3::cpu::AttentionShape shape() const {
    return {d.batch, d.seq, d.q_heads, d.kv_heads, d.head_dim};
  }

  // out and lse, from poisoned buffers.
  Outputs forward() const {
    DeviceArray<uint16_t> q_dev(q.bits), k_dev(k.bits), v_dev(v.bits),
        out = DeviceArray<uint16_t>::poisoned(q_elems());
    DeviceArray<int32_t> docs_dev(docs);
    DeviceArray<float> lse = DeviceArray<float>::poisoned(rows());
    qwen3::cuda::attention_forward(d, bf16s(q_dev), bf16s(k_dev), bf16s(v_dev),
                                   docs.empty() ? nullptr : docs_dev.data(), bf16s(out), lse.data(),
                                   nullptr);
    return Outputs{{"out", bf16_to_floats(out.download())}, {"lse", lse.download()}};
  }

  // dq, dk, dv from the given out (bf16 bits) and lse; outputs and workspace poisoned.
  Outputs backward(const std::vector<uint16_t>& out, const std::vector<float>& lse) const {
    DeviceArray<uint16_t> q_dev(q.bits), k_dev(k.bits), v_dev(v.bits), dout_dev(dout.bits),
        out_dev(out);
    DeviceArray<int32_t> docs_dev(docs);
    DeviceArray<float> lse_dev(lse);
    DeviceArray<uint8_t> workspace =
        DeviceArray<uint8_t>::poisoned(qwen3::cuda::attention_backward_workspace_bytes(d));
    DeviceArray<uint16_t> dq = DeviceArray<uint16_t>::poisoned(q_elems()),
                          dk = DeviceArray<uint16_t>::poisoned(kv_elems()),
                          dv = DeviceArray<uint16_t>::poisoned(kv_elems());
    qwen3::cuda::attention_backward(d, bf16s(dout_dev), bf16s(q_dev), bf16s(k_dev), bf16s(v_dev),
                                    bf16s(out_dev), lse_dev.data(),
                                    docs.empty() ? nullptr : docs_dev.data(), workspace.data(),
                                    bf16s(dq), bf16s(dk), bf16s(dv), nullptr);
    return Outputs{{"dq", bf16_to_floats(dq.download())},
                   {"dk", bf16_to_floats(dk.download())},
                   {"dv", bf16_to_floats(dv.download())}};
  }
};

// Forward against the CPU reference, then backward against it on the reference's out (rounded to
// bf16, as the kernels store it) and lse, so each pass is checked on its own. With
// `every_schedule`, both must also give the same bits under every schedule.
void check_against_reference(const std::string& name, const AttentionDims& d,
                             const std::vector<int32_t>& docs, bool every_schedule = false) {
  const Problem p(d, docs);
  const int32_t* ref_docs = docs.empty() ? nullptr : docs.data();
  std::vector<float> ref_out(p.q_elems()), ref_lse(p.rows());
  qwen3::cpu::attention_forward<float>(p.shape(), p.q.values.data(), p.k.values.data(),
                                       p.v.values.data(), ref_docs, ref_out.data(), ref_lse.data());
  const Outputs forward =
      every_schedule ? same_under_every_schedule([&] { return p.forward(); }) : p.forward();
  expect_close(name + " out", ref_out, forward.at("out"), kBf16Tolerance);
  expect_close(name + " lse", ref_lse, forward.at("lse"), kF32Tolerance);

  const Bf16Values out_bf16 = round_to_bf16(ref_out);
  std::vector<float> ref_dq(p.q_elems()), ref_dk(p.kv_elems()), ref_dv(p.kv_elems());
  qwen3::cpu::attention_backward<float>(p.shape(), p.dout.values.data(), p.q.values.data(),
                                        p.k.values.data(), p.v.values.data(),
                                        out_bf16.values.data(), ref_lse.data(), ref_docs,
                                        ref_dq.data(), ref_dk.data(), ref_dv.data());
  auto run_backward = [&] { return p.backward(out_bf16.bits, ref_lse); };
  const Outputs backward =
      every_schedule ? same_under_every_schedule(run_backward) : run_backward();
  expect_close(name + " dq", ref_dq, backward.at("dq"), kBf16Tolerance);
  expect_close(name + " dk", ref_dk, backward.at("dk"), kBf16Tolerance);
  expect_close(name + " dv", ref_dv, backward.at("dv"), kBf16Tolerance);
}

// 97 tokens: the forward's query tiles of 64 and the backward's of 32 both end mid-tile; four
// query heads share one KV head.
TEST(EmulatedAttention, HeadDim16CausalUnderEverySchedule) {
  check_against_reference("attention hd16", {1, 97, 4, 1, 16}, {}, true);
}

TEST(EmulatedAttention, HeadDim32DocumentsOneQueryHeadPerKvHead) {
  check_against_reference("attention hd32 docs", {2, 130, 3, 3, 32},
                          documents({{50, 80}, {1, 129}}, 10));
}

TEST(EmulatedAttention, HeadDim64Documents) {
  check_against_reference("attention hd64 docs", {1, 200, 6, 3, 64}, documents({{3, 120, 77}}, 0));
}

TEST(EmulatedAttention, HeadDim64DocumentsUnderEverySchedule) {
  check_against_reference("attention hd64 docs, every schedule", {1, 75, 4, 2, 64},
                          documents({{3, 50, 22}}, 0), true);
}

TEST(EmulatedAttention, HeadDim128DocumentsOfVaryingLengths) {
  check_against_reference("attention hd128 docs", {2, 300, 4, 2, 128},
                          documents({{1, 7, 64, 150, 78}, {33, 1, 200, 66}}, 0));
}

// Three and eight query heads per KV head: blocks of 3 warps (one 16-token slice per head) and
// of 8 warps, each K/V tile loaded once for all of them.
TEST(EmulatedAttention, ThreeAndEightQueryHeadsPerKvHead) {
  check_against_reference("attention hd64 gqa 3", {1, 90, 6, 2, 64}, documents({{30, 60}}, 0));
  check_against_reference("attention hd128 gqa 8, every schedule", {1, 40, 8, 1, 128}, {}, true);
}

// Row 0: segments whose ids repeat out of order (a query sees every earlier key with its id,
// across segments). Row 1: an id per token drawn from {-5, 3, 7}, so the mask is scattered.
TEST(EmulatedAttention, HeadDim128NonMonotonicDocIds) {
  const int64_t seq = 300;
  std::vector<int32_t> docs;
  const int32_t segment_ids[] = {7, 3, 7, -1, 3, 1000000};
  const int64_t segment_lengths[] = {40, 100, 60, 1, 49, 50};
  for (int s = 0; s < 6; ++s)
    docs.insert(docs.end(), static_cast<size_t>(segment_lengths[s]), segment_ids[s]);
  const int32_t token_ids[] = {-5, 3, 7};
  for (int64_t i = 0; i < seq; ++i)
    docs.push_back(token_ids[qwen3::random_bits(kSeed, 9, uint64_t(i)) % 3]);
  check_against_reference("attention hd128 scattered docs", {2, seq, 2, 1, 128}, docs);
}

// Ten query tiles of the forward, twenty of the backward; documents crossing tile edges, one of
// a single token, ids out of order.
TEST(EmulatedAttention, HeadDim128LongerSequence) {
  std::vector<int32_t> docs;
  const int32_t ids[] = {4, 9, 2, 7};
  const int64_t lengths[] = {300, 1, 200, 139};
  for (int s = 0; s < 4; ++s)
    docs.insert(docs.end(), static_cast<size_t>(lengths[s]), ids[s]);
  check_against_reference("attention hd128 640 tokens", {1, 640, 2, 1, 128}, docs);
}

TEST(EmulatedAttention, HeadDim256Documents) {
  check_against_reference("attention hd256 docs", {2, 150, 4, 2, 256},
                          documents({{150}, {17, 60, 73}}, 0));
}

TEST(EmulatedAttention, HeadDim128And256UnderEverySchedule) {
  check_against_reference("attention hd128, every schedule", {1, 70, 2, 1, 128},
                          documents({{20, 50}}, 0), true);
  check_against_reference("attention hd256, every schedule", {1, 48, 2, 1, 256},
                          documents({{17, 31}}, 0), true);
}

// Around the edges of the 32-key tiles. (One token alone is left to the documents of one token
// above: its dq and dk are zero up to rounding, which a normalised error cannot measure.)
TEST(EmulatedAttention, ShortSequences) {
  for (int64_t seq : {2, 31, 32, 33, 65})
    check_against_reference("attention hd32 seq " + std::to_string(seq), {2, seq, 2, 1, 32}, {});
}

// Changing every input of one document (its q, k, v and output gradient) leaves the other
// documents' outputs, lse and gradients bit-identical: masked keys add exactly nothing, whichever
// tiles the documents share. Forward and backward as the model chains them.
TEST(EmulatedAttention, ChangingOneDocumentLeavesTheOthersBitIdentical) {
  const AttentionDims d{1, 150, 4, 2, 64};
  const std::vector<int32_t> docs = documents({{45, 50, 55}}, 3);
  const int32_t changed_doc = 4;  // tokens 45..94: shares key tiles with both neighbours
  auto run = [&](const Problem& p) {
    Outputs outputs = p.forward();
    std::vector<uint16_t> out_bits;
    for (float x : outputs.at("out"))
      out_bits.push_back(qwen3::float_to_bf16_bits(x));
    const Outputs grads = p.backward(out_bits, outputs.at("lse"));
    outputs.insert(grads.begin(), grads.end());
    return outputs;
  };
  const Problem original(d, docs);
  Problem changed = original;
  qwen3::test_data::change_document(
      docs, changed_doc, d.q_heads * d.head_dim, d.kv_heads * d.head_dim, changed.q.bits,
      changed.k.bits, changed.v.bits, changed.dout.bits,
      random_bf16(changed.q_elems(), 11, 3.0).bits, random_bf16(changed.kv_elems(), 12, 3.0).bits);
  const Outputs before = run(original), after = run(changed);
  for (const auto& [name, values] : before)
    qwen3::test_data::expect_only_document_changed(name, docs, changed_doc, values, after.at(name),
                                                   name == "lse");
}

TEST(EmulatedAttention, UnsupportedHeadDimIsAnError) {
  const AttentionDims d{1, 8, 2, 1, 48};
  EXPECT_THROW(qwen3::cuda::attention_forward(d, nullptr, nullptr, nullptr, nullptr, nullptr,
                                              nullptr, nullptr),
               qwen3::Error);
}

}  // namespace
}  // namespace qwen3::emulator_test
