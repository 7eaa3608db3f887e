// The embedding (embedding.cu, its backward through the stand-in CUB sort) and cross-entropy
// (cross_entropy.cu) kernels under the emulator, through their launchers, against the CPU
// reference kernels on the same bf16-rounded inputs, under every schedule; and how they record a
// bad id (id_check.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "core/kernels/cpu/cross_entropy.h"
#include "core/kernels/cpu/embedding.h"
#include "core/kernels/cuda/cross_entropy.h"
#include "core/kernels/cuda/embedding.h"
#include "core/tensor/bf16.h"
#include "tests/emulator/kernel_test_support.h"

namespace qwen3::emulator_test {
namespace {
using qwen3::cuda::IdCheckRecord;

// Copies and fp32 sums in the reference's order, rounded once: the bits must match.
constexpr double kExact = 0.0;
constexpr int64_t kVocab = 50, kDim = 200;  // dim: more than the 128 threads of a row's block
constexpr int32_t kIgnore = -100;

IdCheckRecord record_of(const DeviceArray<IdCheckRecord>& ids) {
  return ids.download()[0];
}

DeviceArray<IdCheckRecord> empty_record() {
  return DeviceArray<IdCheckRecord>(std::vector<IdCheckRecord>(1));
}

void expect_no_bad_id(const DeviceArray<IdCheckRecord>& ids) {
  EXPECT_EQ(record_of(ids).found, 0);
}

void expect_bad_id(const DeviceArray<IdCheckRecord>& ids, int32_t site, int32_t value,
                   int64_t index, int64_t limit) {
  const IdCheckRecord r = record_of(ids);
  EXPECT_EQ(r.found, 1);
  EXPECT_EQ(r.site, site);
  EXPECT_EQ(r.value, value);
  EXPECT_EQ(r.index, index);
  EXPECT_EQ(r.limit, limit);
}

TEST(EmulatedEmbedding, Forward) {
  const int64_t n = 37;
  const std::vector<int32_t> tokens = random_ids(n, kVocab, 1);
  const Bf16Values table = random_bf16(kVocab * kDim, 2);
  std::vector<float> ref(n * kDim);
  qwen3::cpu::embedding_forward<float>(tokens.data(), table.values.data(), n, kDim, ref.data());
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<int32_t> tokens_dev(tokens);
    DeviceArray<uint16_t> table_dev(table.bits), out = DeviceArray<uint16_t>::poisoned(n * kDim);
    DeviceArray<IdCheckRecord> ids = empty_record();
    qwen3::cuda::embedding_forward(tokens_dev.data(), bf16s(table_dev), n, kVocab, kDim, bf16s(out),
                                   ids.data(), nullptr);
    expect_no_bad_id(ids);
    return Outputs{{"out", bf16_to_floats(out.download())}};
  });
  expect_close("embedding forward", ref, got.at("out"), kExact);
}

TEST(EmulatedEmbedding, ForwardRecordsABadIdAndWritesZeros) {
  const int64_t n = 12, bad_row = 5;
  std::vector<int32_t> tokens = random_ids(n, kVocab, 3);
  tokens[bad_row] = -7;
  const Bf16Values table = random_bf16(kVocab * kDim, 4);
  DeviceArray<int32_t> tokens_dev(tokens);
  DeviceArray<uint16_t> table_dev(table.bits), out = DeviceArray<uint16_t>::poisoned(n * kDim);
  DeviceArray<IdCheckRecord> ids = empty_record();
  qwen3::cuda::embedding_forward(tokens_dev.data(), bf16s(table_dev), n, kVocab, kDim, bf16s(out),
                                 ids.data(), nullptr);
  expect_bad_id(ids, qwen3::cuda::kIdSiteEmbeddingForward, -7, bad_row, kVocab);
  const std::vector<float> got = bf16_to_floats(out.download());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < kDim; ++c)
      ASSERT_EQ(got[size_t(r * kDim + c)],
                r == bad_row ? 0.0f : table.values[size_t(tokens[r] * kDim + c)])
          << r << ", " << c;
}

// dtable += the rows of dout, in token order. Repeated ids (7 distinct among 64 tokens) make runs
// the kernel sums.
std::vector<float> embedding_backward_reference(const std::vector<int32_t>& tokens,
                                                const Bf16Values& dout, const Bf16Values& dtable) {
  std::vector<float> ref = dtable.values;
  std::vector<int32_t> valid_tokens;
  std::vector<float> valid_rows;
  for (size_t r = 0; r < tokens.size(); ++r) {
    if (tokens[r] < 0 || tokens[r] >= kVocab) continue;
    valid_tokens.push_back(tokens[r]);
    valid_rows.insert(valid_rows.end(), dout.values.begin() + r * kDim,
                      dout.values.begin() + (r + 1) * kDim);
  }
  qwen3::cpu::embedding_backward<float>(valid_tokens.data(), valid_rows.data(),
                                        static_cast<int64_t>(valid_tokens.size()), kDim,
                                        ref.data());
  return round_to_bf16(ref).values;
}

Outputs emulated_embedding_backward(const std::vector<int32_t>& tokens, const Bf16Values& dout,
                                    const Bf16Values& dtable, IdCheckRecord* record) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  DeviceArray<int32_t> tokens_dev(tokens);
  DeviceArray<uint16_t> dout_dev(dout.bits), dtable_dev(dtable.bits);
  DeviceArray<uint8_t> workspace =
      DeviceArray<uint8_t>::poisoned(qwen3::cuda::embedding_backward_workspace_bytes(n, kDim));
  DeviceArray<IdCheckRecord> ids = empty_record();
  qwen3::cuda::embedding_backward(tokens_dev.data(), bf16s(dout_dev), n, kVocab, kDim,
                                  bf16s(dtable_dev), workspace.data(), ids.data(), nullptr);
  *record = record_of(ids);
  return Outputs{{"dtable", bf16_to_floats(dtable_dev.download())}};
}

// The same bits under every schedule, no bad id recorded.
Outputs backward_under_every_schedule(const std::vector<int32_t>& tokens, const Bf16Values& dout,
                                      const Bf16Values& dtable) {
  return same_under_every_schedule([&] {
    IdCheckRecord record;
    Outputs outputs = emulated_embedding_backward(tokens, dout, dtable, &record);
    EXPECT_EQ(record.found, 0);
    return outputs;
  });
}

TEST(EmulatedEmbedding, Backward) {
  const int64_t n = 64;
  const std::vector<int32_t> tokens = random_ids(n, 7, 5);
  const Bf16Values dout = random_bf16(n * kDim, 6), dtable = random_bf16(kVocab * kDim, 7);
  const Outputs got = backward_under_every_schedule(tokens, dout, dtable);
  expect_close("embedding backward", embedding_backward_reference(tokens, dout, dtable),
               got.at("dtable"), kExact);
}

// Frequent tokens: rows of one token past the 64 one block sums are summed in pieces by several
// blocks. 400 tokens: id 3 150 times (its run begins mid-window and reaches over three windows),
// id 5 65 times (one past a block's share), id 8 64 times (exactly one block's share), the rest
// ids drawn from the others, all shuffled. Against sums in double, rounded to bf16 once (the
// kernel sums in fp32 and in pieces, so a last bit may differ); id 8's row, summed whole by one
// block, matches the in-order fp32 reference bit for bit.
TEST(EmulatedEmbedding, BackwardSumsFrequentTokensInPiecesAcrossBlocks) {
  const int64_t n = 400;
  std::vector<int32_t> tokens;
  for (const auto& [id, count] : {std::pair{3, 150}, std::pair{5, 65}, std::pair{8, 64}})
    tokens.insert(tokens.end(), count, id);
  const std::vector<int32_t> others = random_ids(n - int64_t(tokens.size()), kVocab, 11);
  for (int32_t id : others)
    tokens.push_back(id == 3 || id == 5 || id == 8 ? id + 1 : id);
  for (size_t i = tokens.size() - 1; i > 0; --i)  // a fixed shuffle
    std::swap(tokens[i], tokens[random_ids(1, int32_t(i + 1), 100 + i)[0]]);
  const Bf16Values dout = random_bf16(n * kDim, 12), dtable = random_bf16(kVocab * kDim, 13);
  const Outputs got = backward_under_every_schedule(tokens, dout, dtable);
  std::vector<double> sums(dtable.values.begin(), dtable.values.end());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < kDim; ++c)
      sums[tokens[r] * kDim + c] += dout.values[r * kDim + c];
  const std::vector<float> in_double =
      round_to_bf16(std::vector<float>(sums.begin(), sums.end())).values;
  const std::vector<float>& dtable_got = got.at("dtable");
  expect_close("embedding backward, frequent tokens", in_double, dtable_got, 2e-3);
  const std::vector<float> in_order = embedding_backward_reference(tokens, dout, dtable);
  for (int64_t c = 0; c < kDim; ++c)
    ASSERT_EQ(dtable_got[8 * kDim + c], in_order[8 * kDim + c]) << "column " << c;
}

// A negative id sorts first; the kernel records it with its original index and adds nothing.
TEST(EmulatedEmbedding, BackwardRecordsABadIdAndSkipsItsRow) {
  const int64_t n = 40, bad_row = 3;
  std::vector<int32_t> tokens = random_ids(n, 9, 8);
  tokens[bad_row] = -2;
  const Bf16Values dout = random_bf16(n * kDim, 9), dtable = random_bf16(kVocab * kDim, 10);
  IdCheckRecord record;
  const Outputs got = emulated_embedding_backward(tokens, dout, dtable, &record);
  EXPECT_EQ(record.found, 1);
  EXPECT_EQ(record.site, qwen3::cuda::kIdSiteEmbeddingBackward);
  EXPECT_EQ(record.value, -2);
  EXPECT_EQ(record.index, bad_row);
  EXPECT_EQ(record.limit, kVocab);
  expect_close("embedding backward, bad id", embedding_backward_reference(tokens, dout, dtable),
               got.at("dtable"), kExact);
}

// Two vocabularies: 1,500 logits (not a multiple of 8: one logit per load), three full strides of
// the 512 threads and a partial one; 1,504 (8 × 188: 16-byte vector loads), not a whole number of
// the block's 4,096-logit strides. Row 0 has −∞ logits, among them the first one of several
// threads and all of thread 7's scalar loads (c = 7, 519, 1031) and whole vectors (c = 0–7): a
// thread's running sum must not turn NaN (the bug the first emulation found).
struct CrossEntropyCase {
  int64_t rows = 24, vocab;
  Bf16Values logits;
  std::vector<int32_t> targets;

  explicit CrossEntropyCase(int64_t vocab_size) : vocab(vocab_size) {
    std::vector<float> raw = normal_values(rows * vocab, 11, 3.0);
    for (int64_t c : {0, 1, 2, 3, 4, 5, 6, 7, 100, 511, 519, 700, 1031, 1499})
      raw[size_t(c)] = -std::numeric_limits<float>::infinity();
    logits = round_to_bf16(raw);
    targets = random_ids(rows, static_cast<int32_t>(vocab), 12);
    targets[0] = 9;  // a finite logit
    targets[3] = targets[17] = kIgnore;
  }
};

class EmulatedCrossEntropy : public ::testing::TestWithParam<int64_t> {};

TEST_P(EmulatedCrossEntropy, ForwardAndBackwardWithInfiniteLogitsAndIgnoredRows) {
  const CrossEntropyCase p(GetParam());
  const float scale = 0.125f;
  std::vector<float> ref_losses(p.rows), ref_lse(p.rows), ref_dlogits(p.logits.values.size());
  qwen3::cpu::cross_entropy_forward<float>(p.logits.values.data(), p.targets.data(), p.rows,
                                           p.vocab, kIgnore, ref_losses.data(), ref_lse.data());
  qwen3::cpu::cross_entropy_backward<float>(p.logits.values.data(), ref_lse.data(),
                                            p.targets.data(), p.rows, p.vocab, kIgnore, scale,
                                            ref_dlogits.data());
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<uint16_t> logits(p.logits.bits),
        dlogits = DeviceArray<uint16_t>::poisoned(p.logits.bits.size());
    DeviceArray<int32_t> targets(p.targets);
    DeviceArray<float> losses = DeviceArray<float>::poisoned(p.rows),
                       lse = DeviceArray<float>::poisoned(p.rows), ref_lse_dev(ref_lse);
    DeviceArray<IdCheckRecord> ids = empty_record();
    qwen3::cuda::cross_entropy_forward(bf16s(logits), targets.data(), p.rows, p.vocab, kIgnore,
                                       losses.data(), lse.data(), ids.data(), nullptr);
    // The backward is given the reference's lse, so it is checked on its own.
    qwen3::cuda::cross_entropy_backward(bf16s(logits), ref_lse_dev.data(), targets.data(), p.rows,
                                        p.vocab, kIgnore, scale, bf16s(dlogits), ids.data(),
                                        nullptr);
    // dlogits may alias logits.
    qwen3::cuda::cross_entropy_backward(bf16s(logits), ref_lse_dev.data(), targets.data(), p.rows,
                                        p.vocab, kIgnore, scale, bf16s(logits), ids.data(),
                                        nullptr);
    expect_no_bad_id(ids);
    return Outputs{{"losses", losses.download()},
                   {"lse", lse.download()},
                   {"dlogits", bf16_to_floats(dlogits.download())},
                   {"dlogits in place", bf16_to_floats(logits.download())}};
  });
  expect_close("cross_entropy losses", ref_losses, got.at("losses"), kF32Tolerance);
  expect_close("cross_entropy lse", ref_lse, got.at("lse"), kF32Tolerance);
  expect_close("cross_entropy dlogits", ref_dlogits, got.at("dlogits"), kBf16Tolerance);
  EXPECT_EQ(got.at("dlogits in place"), got.at("dlogits"));
  EXPECT_EQ(got.at("losses")[3], 0.0f);
  EXPECT_EQ(got.at("losses")[17], 0.0f);
}

// The fused launcher gives the bits of the forward and backward in sequence (the same lse
// function, the same gradient formula), out of place and in place over the logits; and, given
// logits at an address only 2 bytes aligned, its scalar loads give those bits too.
TEST_P(EmulatedCrossEntropy, FusedForwardBackwardGivesTheBitsOfTheTwoInSequence) {
  const CrossEntropyCase p(GetParam());
  const float scale = 0.25f;
  const Outputs got = same_under_every_schedule([&] {
    DeviceArray<uint16_t> logits(p.logits.bits),
        sequenced = DeviceArray<uint16_t>::poisoned(p.logits.bits.size()),
        fused = DeviceArray<uint16_t>::poisoned(p.logits.bits.size());
    std::vector<uint16_t> offset_bits(p.logits.bits.size() + 1, 0);
    std::memcpy(offset_bits.data() + 1, p.logits.bits.data(), p.logits.bits.size() * 2);
    DeviceArray<uint16_t> misaligned(offset_bits), in_place(p.logits.bits);
    DeviceArray<int32_t> targets(p.targets);
    auto floats = [&] { return DeviceArray<float>::poisoned(p.rows); };
    DeviceArray<float> losses = floats(), lse = floats(), fused_losses = floats(),
                       fused_lse = floats(), unaligned_losses = floats(), unaligned_lse = floats(),
                       in_place_losses = floats(), in_place_lse = floats();
    DeviceArray<IdCheckRecord> ids = empty_record();
    qwen3::cuda::cross_entropy_forward(bf16s(logits), targets.data(), p.rows, p.vocab, kIgnore,
                                       losses.data(), lse.data(), ids.data(), nullptr);
    qwen3::cuda::cross_entropy_backward(bf16s(logits), lse.data(), targets.data(), p.rows, p.vocab,
                                        kIgnore, scale, bf16s(sequenced), ids.data(), nullptr);
    qwen3::cuda::cross_entropy_forward_backward(
        bf16s(logits), targets.data(), p.rows, p.vocab, kIgnore, scale, fused_losses.data(),
        fused_lse.data(), bf16s(fused), ids.data(), nullptr);
    __nv_bfloat16* shifted = bf16s(misaligned) + 1;
    qwen3::cuda::cross_entropy_forward_backward(shifted, targets.data(), p.rows, p.vocab, kIgnore,
                                                scale, unaligned_losses.data(),
                                                unaligned_lse.data(), shifted, ids.data(), nullptr);
    qwen3::cuda::cross_entropy_forward_backward(
        bf16s(in_place), targets.data(), p.rows, p.vocab, kIgnore, scale, in_place_losses.data(),
        in_place_lse.data(), bf16s(in_place), ids.data(), nullptr);
    expect_no_bad_id(ids);
    std::vector<uint16_t> unaligned_grad = misaligned.download();
    unaligned_grad.erase(unaligned_grad.begin());
    return Outputs{{"losses", losses.download()},
                   {"lse", lse.download()},
                   {"dlogits", bf16_to_floats(sequenced.download())},
                   {"fused losses", fused_losses.download()},
                   {"fused lse", fused_lse.download()},
                   {"fused dlogits", bf16_to_floats(fused.download())},
                   {"unaligned losses", unaligned_losses.download()},
                   {"unaligned dlogits", bf16_to_floats(unaligned_grad)},
                   {"in-place losses", in_place_losses.download()},
                   {"in-place lse", in_place_lse.download()},
                   {"in-place dlogits", bf16_to_floats(in_place.download())}};
  });
  for (const char* prefix : {"fused ", "in-place "}) {
    EXPECT_EQ(got.at(std::string(prefix) + "losses"), got.at("losses")) << prefix;
    EXPECT_EQ(got.at(std::string(prefix) + "lse"), got.at("lse")) << prefix;
    EXPECT_EQ(got.at(std::string(prefix) + "dlogits"), got.at("dlogits")) << prefix;
  }
  // Scalar loads sum in another grouping than vectors: equal where the vocabulary has no vectors,
  // within fp32 rounding where it has.
  expect_close("unaligned losses", got.at("losses"), got.at("unaligned losses"),
               p.vocab % 8 == 0 ? kF32Tolerance : kExact);
  expect_close("unaligned dlogits", got.at("dlogits"), got.at("unaligned dlogits"),
               p.vocab % 8 == 0 ? kBf16Tolerance : kExact);
  EXPECT_EQ(got.at("fused losses")[3], 0.0f);
  for (int64_t c = 0; c < p.vocab; ++c)
    ASSERT_EQ(got.at("fused dlogits")[size_t(17 * p.vocab + c)], 0.0f) << "ignored row, " << c;
}

INSTANTIATE_TEST_SUITE_P(ScalarAndVectorLoads, EmulatedCrossEntropy,
                         ::testing::Values(int64_t{1500}, int64_t{1504}),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return "vocab" + std::to_string(info.param);
                         });

// Qwen3's vocabulary: 151,936 logits per row, about 300 per thread.
TEST(EmulatedCrossEntropyRows, FullVocabularyRows) {
  const int64_t rows = 3, vocab = 151936;
  const Bf16Values logits = random_bf16(rows * vocab, 13, 2.0);
  const std::vector<int32_t> targets = random_ids(rows, static_cast<int32_t>(vocab), 14);
  std::vector<float> ref_losses(rows), ref_lse(rows);
  qwen3::cpu::cross_entropy_forward<float>(logits.values.data(), targets.data(), rows, vocab,
                                           kIgnore, ref_losses.data(), ref_lse.data());
  DeviceArray<uint16_t> logits_dev(logits.bits);
  DeviceArray<int32_t> targets_dev(targets);
  DeviceArray<float> losses = DeviceArray<float>::poisoned(rows),
                     lse = DeviceArray<float>::poisoned(rows);
  DeviceArray<IdCheckRecord> ids = empty_record();
  qwen3::cuda::cross_entropy_forward(bf16s(logits_dev), targets_dev.data(), rows, vocab, kIgnore,
                                     losses.data(), lse.data(), ids.data(), nullptr);
  expect_close("cross_entropy losses, full vocabulary", ref_losses, losses.download(),
               kF32Tolerance);
  expect_close("cross_entropy lse, full vocabulary", ref_lse, lse.download(), kF32Tolerance);
}

TEST(EmulatedCrossEntropyRows, BadTargetIsRecordedAndItsRowLeftAlone) {
  const int64_t rows = 6, vocab = 700, bad_row = 4;
  const Bf16Values logits = random_bf16(rows * vocab, 15);
  std::vector<int32_t> targets = random_ids(rows, static_cast<int32_t>(vocab), 16);
  targets[bad_row] = static_cast<int32_t>(vocab) + 3;
  DeviceArray<uint16_t> logits_dev(logits.bits),
      dlogits = DeviceArray<uint16_t>::poisoned(logits.bits.size());
  DeviceArray<int32_t> targets_dev(targets);
  DeviceArray<float> losses = DeviceArray<float>::poisoned(rows),
                     lse = DeviceArray<float>::poisoned(rows);
  DeviceArray<IdCheckRecord> forward_ids = empty_record(), backward_ids = empty_record();
  qwen3::cuda::cross_entropy_forward(bf16s(logits_dev), targets_dev.data(), rows, vocab, kIgnore,
                                     losses.data(), lse.data(), forward_ids.data(), nullptr);
  qwen3::cuda::cross_entropy_backward(bf16s(logits_dev), lse.data(), targets_dev.data(), rows,
                                      vocab, kIgnore, 1.0f, bf16s(dlogits), backward_ids.data(),
                                      nullptr);
  expect_bad_id(forward_ids, qwen3::cuda::kIdSiteCrossEntropyForward, targets[bad_row], bad_row,
                vocab);
  expect_bad_id(backward_ids, qwen3::cuda::kIdSiteCrossEntropyBackward, targets[bad_row], bad_row,
                vocab);
  EXPECT_EQ(losses.download()[bad_row], 0.0f);
  const std::vector<float> grad = bf16_to_floats(dlogits.download());
  for (int64_t c = 0; c < vocab; ++c)
    ASSERT_EQ(grad[size_t(bad_row * vocab + c)], 0.0f) << c;
}

}  // namespace
}  // namespace qwen3::emulator_test
