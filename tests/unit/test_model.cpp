// Whole-model properties on the CPU backend. (Agreement with PyTorch is tests/python's job.)
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "core/model/qwen3_model.h"
#include "core/util/error.h"
#include "core/util/rng.h"

namespace {

const std::string kConfigs = std::string(QWEN3_SOURCE_DIR) + "/configs/models/";

qwen3::Batch random_batch(const qwen3::ModelConfig& c, int64_t batch, int64_t seq, uint64_t seed) {
  qwen3::Batch b;
  b.batch = batch;
  b.seq = seq;
  for (int64_t i = 0; i < batch * seq; ++i)
    b.tokens.push_back(int32_t(qwen3::random_bits(seed, 0, uint64_t(i)) % uint64_t(c.vocab_size)));
  b.labels = b.tokens;
  return b;
}

// Rows [first, first + count) of a batch as a batch of its own.
qwen3::Batch rows_of(const qwen3::Batch& b, int64_t first, int64_t count) {
  qwen3::Batch out;
  out.batch = count;
  out.seq = b.seq;
  const auto begin = size_t(first * b.seq), end = size_t((first + count) * b.seq);
  out.tokens.assign(b.tokens.begin() + begin, b.tokens.begin() + end);
  out.labels.assign(b.labels.begin() + begin, b.labels.begin() + end);
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, double(std::abs(a[i] - b[i])));
  return m;
}

double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float x : a)
    m = std::max(m, double(std::abs(x)));
  return m;
}

class ModelTest : public ::testing::Test {
 protected:
  qwen3::ModelConfig config = qwen3::load_model_config(kConfigs + "tiny.yaml");
  std::unique_ptr<qwen3::Backend> backend = qwen3::make_cpu_backend();
};

TEST_F(ModelTest, InitialisationFollowsHf) {
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(3);
  const std::vector<float> params = model.params_to_host();
  for (const qwen3::ParamEntry& e : model.layout().entries()) {
    const float* p = params.data() + e.offset;
    if (e.kind == qwen3::ParamKind::Norm) {
      for (int64_t i = 0; i < e.numel(); ++i)
        ASSERT_EQ(p[i], 1.0f) << e.name;
      continue;
    }
    double sq = 0;
    for (int64_t i = 0; i < e.numel(); ++i)
      sq += double(p[i]) * p[i];
    const double stddev = std::sqrt(sq / double(e.numel()));
    // Sample std of n normals is within ~4/sqrt(2n) relative of 0.02 with overwhelming odds.
    EXPECT_NEAR(stddev, 0.02, 0.02 * 4 / std::sqrt(2.0 * double(e.numel()))) << e.name;
  }
  qwen3::Qwen3Model same(config, *backend), other(config, *backend);
  same.init_weights(3);
  other.init_weights(4);
  EXPECT_EQ(same.params_to_host(), params);
  EXPECT_NE(other.params_to_host(), params);
}

TEST_F(ModelTest, RepeatedStepsAreBitIdentical) {
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(1);
  const qwen3::Batch b = random_batch(config, 2, 40, 9);
  std::vector<double> losses;
  std::vector<std::vector<float>> grads;
  for (int run = 0; run < 2; ++run) {
    model.zero_grads();
    const qwen3::LossSum loss = model.forward(b);
    model.backward(float(1.0 / double(loss.tokens)));
    losses.push_back(loss.sum);
    grads.push_back(model.grads_to_host());
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(grads[0], grads[1]);
}

// One step with the given memory options, on a batch with packed documents: the loss sum and the
// gradients.
struct StepOutput {
  double loss = 0;
  std::vector<float> grads;
};
// `fused_head`: the scale is given to the forward, which runs the head's backward with the loss.
StepOutput step_with(const qwen3::ModelConfig& config, qwen3::Backend& backend,
                     const qwen3::MemoryOptions& memory, bool fused_head = false) {
  qwen3::Qwen3Model model(config, backend);
  model.init_weights(5);
  model.set_memory_options(memory);
  qwen3::Batch b = random_batch(config, 2, 48, 21);
  for (int64_t i = 0; i < b.batch * b.seq; ++i) {  // documents of 30 and 18 tokens per row
    b.doc_ids.push_back(i % 48 < 30 ? 0 : 1);
    b.positions.push_back(int32_t(i % 48 < 30 ? i % 48 : i % 48 - 30));
  }
  model.zero_grads();
  const float scale = float(1.0 / double(qwen3::count_scored_tokens(b)));
  model.forward_queued(b, fused_head ? std::optional<float>(scale) : std::nullopt);
  const double loss = model.take_loss_total();
  model.backward(scale);
  return {loss, model.grads_to_host()};
}

// Recomputing each layer from its saved input runs the same ops on the same values: the step is
// bit-identical to keeping every activation.
TEST_F(ModelTest, RecomputedLayersGiveTheSameStep) {
  const StepOutput kept = step_with(config, *backend, {});
  qwen3::MemoryOptions recompute;
  recompute.recompute_layers = true;
  const StepOutput recomputed = step_with(config, *backend, recompute);
  EXPECT_EQ(recomputed.loss, kept.loss);
  EXPECT_EQ(recomputed.grads, kept.grads);
}

// The LM head in chunks (7 tokens: 96 tokens make 13 full chunks and one of 5), with each chunk's
// logits recomputed in the backward pass: the same loss and gradients up to the order in which
// the head's gradient is summed over chunks.
TEST_F(ModelTest, ChunkedHeadGivesTheSameStep) {
  const StepOutput whole = step_with(config, *backend, {});
  qwen3::MemoryOptions chunked;
  chunked.lm_head_chunk_tokens = 7;
  chunked.recompute_layers = true;
  const StepOutput parts = step_with(config, *backend, chunked);
  EXPECT_NEAR(parts.loss, whole.loss, 1e-6 * whole.loss);
  EXPECT_LE(max_abs_diff(parts.grads, whole.grads), 1e-6 * max_abs(whole.grads));
}

// The head's backward fused into the forward (the loss scale given to it) runs the same ops on the
// same values, only earlier: the same bits, with the head whole and in chunks (where the unfused
// backward recomputes each chunk's logits and the fused one makes them once).
TEST_F(ModelTest, HeadBackwardFusedWithTheLossGivesTheSameStep) {
  for (int64_t chunk : {int64_t{0}, int64_t{7}}) {
    qwen3::MemoryOptions memory;
    memory.lm_head_chunk_tokens = chunk;
    const StepOutput apart = step_with(config, *backend, memory, false);
    const StepOutput fused = step_with(config, *backend, memory, true);
    EXPECT_EQ(fused.loss, apart.loss) << "chunk " << chunk;
    EXPECT_EQ(fused.grads, apart.grads) << "chunk " << chunk;
  }
}

// After a forward with a loss scale: backward must be given that scale, and the logits buffer,
// which holds their gradient, is not read as logits.
TEST_F(ModelTest, FusedHeadRefusesAnotherScaleAndItsLogits) {
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(2);
  const qwen3::Batch b = random_batch(config, 1, 16, 4);
  model.forward_queued(b, 0.5f);
  try {
    (void)model.logits_to_host();
    FAIL() << "logits read after a fused forward";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds their gradient"), std::string::npos) << e.what();
  }
  try {
    model.backward(0.25f);
    FAIL() << "backward accepted another scale";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("loss scale 0.5"), std::string::npos) << e.what();
  }
  model.forward_queued(b, 0.5f);
  model.backward(0.5f);
  model.forward_queued(b);  // and without a scale, the logits are there again
  EXPECT_EQ(model.logits_to_host().size(), size_t(16 * config.vocab_size));
}

// The gradients-final hook: called after the head and final norm, after each layer from the last
// to the first, and after the embedding, with offsets that only fall; at each call, every element
// at or above the offset already holds its end-of-backward value (bit for bit: the CPU backend
// runs the ops in call order), so a reduction started then reads the final gradient. Tied and
// untied heads, with and without recomputed layers; the model's buffers padded as for 3 ranks.
TEST_F(ModelTest, GradientsFinalHookAnnouncesOnlyFinalGradients) {
  for (const char* name : {"tiny.yaml", "tiny-untied.yaml"})
    for (bool recompute : {false, true}) {
      const qwen3::ModelConfig c = qwen3::load_model_config(kConfigs + name);
      qwen3::Qwen3Model model(c, *backend, 3 * 64);
      model.init_weights(2);
      qwen3::MemoryOptions memory;
      memory.recompute_layers = recompute;
      model.set_memory_options(memory);
      const qwen3::Batch b = random_batch(c, 2, 24, 4);
      // Two micro-batches, as a step accumulates them; the second is announced.
      model.forward(rows_of(b, 0, 1));
      model.backward(0.01f);
      model.forward(rows_of(b, 1, 1));
      std::vector<int64_t> offsets;
      std::vector<std::vector<float>> seen;
      model.set_gradients_final_hook([&](int64_t final_from) {
        offsets.push_back(final_from);
        std::vector<float> padded(size_t(model.padded_size()));
        backend->download(model.grads_padded(), padded.data());
        seen.push_back(std::move(padded));
      });
      model.backward(0.01f);
      model.set_gradients_final_hook(nullptr);
      std::vector<float> final_grads(size_t(model.padded_size()));
      backend->download(model.grads_padded(), final_grads.data());

      const qwen3::ParamLayout& layout = model.layout();
      std::vector<int64_t> expected = {layout[layout.final_norm()].offset};
      for (int l = c.num_hidden_layers - 1; l >= 0; --l)
        expected.push_back(layout.layer_begin(l));
      expected.push_back(0);
      ASSERT_EQ(offsets, expected) << name << (recompute ? ", recomputed" : "");
      for (size_t k = 0; k < offsets.size(); ++k)
        for (size_t i = size_t(offsets[k]); i < final_grads.size(); ++i)
          ASSERT_EQ(seen[k][i], final_grads[i])
              << name << (recompute ? ", recomputed" : "") << ": element " << i
              << " changed after the call announcing " << offsets[k];
      // The announcements are not vacuous: the head's gradient (a tied one is the embedding's)
      // is still changing at the first call.
      const qwen3::ParamEntry& head = layout[layout.lm_head()];
      bool head_changes = false;
      for (int64_t i = head.offset; i < head.offset + head.numel(); ++i)
        head_changes = head_changes || seen[0][size_t(i)] != final_grads[size_t(i)];
      EXPECT_EQ(head_changes, layout.tied()) << name;
      // Backward without the hook calls nothing.
      model.forward(rows_of(b, 0, 1));
      model.backward(0.01f);
      EXPECT_EQ(offsets.size(), expected.size());
    }
}

TEST_F(ModelTest, ChunkedLogitsCannotBeReadWhole) {
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(5);
  qwen3::MemoryOptions chunked;
  chunked.lm_head_chunk_tokens = 16;
  model.set_memory_options(chunked);
  model.forward(random_batch(config, 1, 40, 3));
  try {
    model.logits_to_host();
    FAIL() << "chunked logits were read as a whole";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("chunks of 16 tokens"), std::string::npos) << e.what();
  }
  // The automatic chunk holds a small model's batch whole.
  model.set_memory_options({});
  model.forward(random_batch(config, 1, 40, 3));
  EXPECT_EQ(model.logits_to_host().size(), size_t(40 * config.vocab_size));
}

TEST_F(ModelTest, MicroBatchGradientsSumToTheFullBatchGradient) {
  // Gradient accumulation: two half batches, each scaled by 1 / (tokens in the whole batch), add
  // up to the gradient of the whole batch. This is what data parallelism relies on.
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(2);
  const qwen3::Batch full = random_batch(config, 4, 20, 10);
  model.zero_grads();
  const qwen3::LossSum whole = model.forward(full);
  model.backward(float(1.0 / double(whole.tokens)));
  const std::vector<float> expected = model.grads_to_host();

  model.zero_grads();
  double loss_sum = 0;
  for (int64_t first : {0, 2}) {
    const qwen3::LossSum part = model.forward(rows_of(full, first, 2));
    model.backward(float(1.0 / double(whole.tokens)));
    loss_sum += part.sum;
  }
  EXPECT_NEAR(loss_sum, whole.sum, 1e-6 * std::abs(whole.sum));
  const std::vector<float> accumulated = model.grads_to_host();
  EXPECT_LE(max_abs_diff(accumulated, expected), 1e-5 * max_abs(expected));
}

// A training step queues its micro-batches' losses on the device and reads them once: the total
// must be the sum of the per-micro-batch losses, the per-token losses summed, and restart at zero.
TEST_F(ModelTest, QueuedLossesAddUpToTheMicroBatchSums) {
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(3);
  const qwen3::Batch full = random_batch(config, 4, 20, 12);
  double expected = 0.0;
  int64_t expected_tokens = 0;
  for (int64_t first : {0, 2}) {
    const qwen3::LossSum part = model.forward(rows_of(full, first, 2));
    double from_tokens = 0.0;
    for (float loss : model.token_losses_to_host())
      from_tokens += loss;
    EXPECT_NEAR(part.sum, from_tokens, 1e-9 * from_tokens);
    expected += part.sum;
    expected_tokens += part.tokens;
  }
  int64_t tokens = 0;
  for (int64_t first : {0, 2}) {
    tokens += model.forward_queued(rows_of(full, first, 2));
    model.backward(1.0f);
  }
  EXPECT_EQ(tokens, expected_tokens);
  EXPECT_EQ(model.take_loss_total(), expected);
  EXPECT_EQ(model.take_loss_total(), 0.0);
}

TEST_F(ModelTest, IgnoredLabelsContributeNothing) {
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(5);
  qwen3::Batch b = random_batch(config, 1, 16, 11);
  std::fill(b.labels.begin(), b.labels.end(), qwen3::kIgnoreIndex);
  model.zero_grads();
  const qwen3::LossSum loss = model.forward(b);
  EXPECT_EQ(loss.tokens, 0);
  EXPECT_EQ(loss.sum, 0.0);
  model.backward(1.0f);
  EXPECT_EQ(max_abs(model.grads_to_host()), 0.0);

  // With labels, the last position is never scored (HF's shift): 15 of 16.
  b.labels = b.tokens;
  EXPECT_EQ(model.forward(b).tokens, 15);
}

TEST_F(ModelTest, ShiftedTargetsScoreEveryPositionLikeLabelsOfTheLongerWindow) {
  // A window of seq + 1 tokens given as inputs and next-token targets (the loader's form) scores
  // all seq positions, with the same losses as HF labels over the same inputs plus the last token.
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(7);
  const int64_t seq = 12;
  const qwen3::Batch window = random_batch(config, 1, seq + 1, 15);
  qwen3::Batch with_targets;
  with_targets.batch = 1;
  with_targets.seq = seq;
  with_targets.tokens.assign(window.tokens.begin(), window.tokens.end() - 1);
  with_targets.targets.assign(window.tokens.begin() + 1, window.tokens.end());
  model.zero_grads();
  const qwen3::LossSum a = model.forward(with_targets);
  EXPECT_EQ(a.tokens, seq);
  model.backward(1.0f);
  const std::vector<float> grads_targets = model.grads_to_host();

  model.zero_grads();
  const qwen3::LossSum b = model.forward(window);  // labels: seq of seq + 1 positions scored
  EXPECT_EQ(b.tokens, seq);
  EXPECT_NEAR(a.sum, b.sum, 1e-5 * std::abs(b.sum));
  model.backward(1.0f);
  EXPECT_LE(max_abs_diff(grads_targets, model.grads_to_host()),
            1e-5 * max_abs(model.grads_to_host()));

  with_targets.labels = with_targets.tokens;  // both given: ambiguous
  EXPECT_THROW(model.forward(with_targets), qwen3::Error);
}

TEST_F(ModelTest, DocumentMaskMakesPackedDocumentsIndependent) {
  // Two documents packed in one row with restarted positions give, for the second document, the
  // same logits as that document run on its own.
  qwen3::Qwen3Model model(config, *backend);
  model.init_weights(6);
  const int64_t first_len = 7, second_len = 9, seq = first_len + second_len;
  qwen3::Batch packed = random_batch(config, 1, seq, 12);
  for (int64_t t = 0; t < seq; ++t) {
    packed.doc_ids.push_back(t < first_len ? 0 : 1);
    packed.positions.push_back(int32_t(t < first_len ? t : t - first_len));
  }
  model.forward(packed);
  const std::vector<float> packed_logits = model.logits_to_host();

  qwen3::Batch alone;
  alone.batch = 1;
  alone.seq = second_len;
  alone.tokens.assign(packed.tokens.begin() + first_len, packed.tokens.end());
  alone.labels = alone.tokens;
  model.forward(alone);
  const std::vector<float> alone_logits = model.logits_to_host();

  const size_t v = size_t(config.vocab_size);
  const std::vector<float> tail(packed_logits.begin() + first_len * v, packed_logits.end());
  EXPECT_LE(max_abs_diff(tail, alone_logits), 1e-5 * max_abs(alone_logits));
}

TEST_F(ModelTest, BatchErrorsAreExplained) {
  qwen3::Qwen3Model model(config, *backend);
  qwen3::Batch b = random_batch(config, 1, 8, 13);
  b.labels.pop_back();
  EXPECT_THROW(model.forward(b), qwen3::Error);
  qwen3::Batch too_long = random_batch(config, 1, config.max_position_embeddings + 1, 14);
  try {
    model.forward(too_long);
    FAIL();
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_position_embeddings"), std::string::npos);
  }
  EXPECT_THROW(model.backward(1.0f), qwen3::Error);  // no forward to go back through
}

// Gradients are fp32 by default; the only other choice is the storage dtype, which on the CPU is
// fp32 too, so a bf16 request is refused by name rather than silently ignored.
TEST_F(ModelTest, GradientDtypeIsFp32OrTheStorageDtype) {
  qwen3::Qwen3Model model(config, *backend);
  EXPECT_EQ(model.grad_dtype(), qwen3::DType::F32);
  EXPECT_EQ(model.grads_padded().dtype, qwen3::DType::F32);
  model.set_grad_dtype(qwen3::DType::F32);  // unchanged: the same buffer
  for (qwen3::DType refused : {qwen3::DType::BF16, qwen3::DType::I32}) {
    try {
      model.set_grad_dtype(refused);
      FAIL() << "accepted " << qwen3::dtype_name(refused);
    } catch (const qwen3::Error& e) {
      EXPECT_NE(std::string(e.what()).find(
                    "gradients can be f32 or the cpu backend's storage dtype f32, not "),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(model.grad_dtype(), qwen3::DType::F32);
}

}  // namespace
