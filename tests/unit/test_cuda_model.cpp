// The whole model on the CUDA backend (bf16) against the CPU reference (fp32) on the tiny config:
// loss and every gradient tensor of one step, training following the CPU loss curve,
// and two CUDA runs giving identical bits. Without a GPU every test skips, saying why.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "../common/normalised_error.h"
#include "../common/tiny_model.h"
#include "core/cuda/device.h"
#include "core/model/qwen3_model.h"
#include "core/ops/cuda_backend.h"
#include "core/util/error.h"
#include "core/util/rng.h"
#include "parallel/communicator.h"
#include "parallel/nccl_communicator.h"
#include "parallel/shard_layout.h"
#include "parallel/zero_adamw.h"
#include "trainer/train_step.h"

// Steps of each training run: 50 on a GPU; the emulated device's build sets fewer (its CUDA
// threads are fibers, a few seconds a step), enough for every bucket, stage and wait to run.
#ifndef QWEN3_CUDA_MODEL_STEPS
#define QWEN3_CUDA_MODEL_STEPS 50
#endif

namespace qwen3 {
namespace {

constexpr int kTrainingSteps = QWEN3_CUDA_MODEL_STEPS;

using qwen3::test_data::normalised_error;

#define SKIP_WITHOUT_GPU()                                              \
  do {                                                                  \
    std::string reason_;                                                \
    if (!cuda_backend_available(&reason_))                              \
      GTEST_SKIP() << "the CUDA model is not tested here: " << reason_; \
  } while (0)

// A learnable task, so that the loss curve has a shape to follow: the target of token t is
// (7t + 3) mod vocab, with one position in eight ignored.
Batch learnable_batch(int64_t rows, int64_t seq, int64_t vocab, int64_t step) {
  Batch b;
  b.batch = rows;
  b.seq = seq;
  const size_t n = static_cast<size_t>(rows * seq);
  b.tokens.resize(n);
  b.targets.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const int32_t token =
        static_cast<int32_t>(random_bits(77, 500 + uint64_t(step), i) % uint64_t(vocab));
    b.tokens[i] = token;
    b.targets[i] =
        i % 8 == 5 ? kIgnoreIndex : static_cast<int32_t>((7 * int64_t(token) + 3) % vocab);
  }
  return b;
}

// One forward and backward on both backends from the same (bf16-representable) weights: the loss
// agrees to bf16 accuracy and every gradient tensor to a few percent (bf16 activations through
// every layer, fp32 accumulation). With the flash kernels, and with the stage's choice (cuDNN's
// dense and ragged attention where installed), the documents handed over as the model does.
void expect_cuda_model_matches_cpu(const char* attention) {
  const ModelConfig config = qwen3::test_data::tiny_model_config();
  auto gpu = make_cuda_backend(0);
  auto cpu = make_cpu_backend();
  const qwen3::AttentionChoice choice =
      gpu->choose_attention({attention, 2, 64, config.num_attention_heads,
                             config.num_key_value_heads, config.head_dim, true});
  SCOPED_TRACE(std::string("attention: ") + choice.kernels + " " + choice.note);
  Qwen3Model gpu_model(config, *gpu), cpu_model(config, *cpu);
  gpu_model.init_weights(3);
  cpu_model.load_params(gpu_model.params_to_host());  // the bf16 weights, exactly

  Batch batch = learnable_batch(2, 64, config.vocab_size, 0);
  batch.doc_ids.assign(batch.tokens.size(), 0);
  for (size_t i = 0; i < batch.doc_ids.size(); ++i)  // documents of 40 and 24 tokens per row
    batch.doc_ids[i] = i % 64 < 40 ? 0 : 1;
  batch.positions.resize(batch.tokens.size());
  for (size_t i = 0; i < batch.positions.size(); ++i)
    batch.positions[i] = static_cast<int32_t>(i % 64 < 40 ? i % 64 : i % 64 - 40);

  gpu_model.zero_grads();
  cpu_model.zero_grads();
  const LossSum gpu_loss = gpu_model.forward(batch), cpu_loss = cpu_model.forward(batch);
  ASSERT_EQ(gpu_loss.tokens, cpu_loss.tokens);
  EXPECT_NEAR(gpu_loss.mean(), cpu_loss.mean(), 1e-2 * cpu_loss.mean());
  const float scale = 1.0f / float(cpu_loss.tokens);
  gpu_model.backward(scale);
  cpu_model.backward(scale);

  const std::vector<float> g = gpu_model.grads_to_host(), c = cpu_model.grads_to_host();
  for (const ParamEntry& e : gpu_model.layout().entries()) {
    const size_t begin = static_cast<size_t>(e.offset), end = begin + size_t(e.numel());
    for (size_t i = begin; i < end; ++i)
      ASSERT_TRUE(std::isfinite(g[i])) << e.name << " gradient not finite at " << i - begin;
    EXPECT_LE(normalised_error(c, g, begin, end), 5e-2) << e.name;
  }
  EXPECT_LE(normalised_error(c, g, 0, c.size()), 2e-2) << "the whole gradient";
}

TEST(CudaModel, LossAndGradientsMatchTheCpuReference) {
  SKIP_WITHOUT_GPU();
  expect_cuda_model_matches_cpu("flash");
  expect_cuda_model_matches_cpu("auto");
}

// The head's backward fused into the forward (one kernel for the loss and its gradient, each
// chunk's logits made once) against the forward and backward apart, on the CUDA backend: the same
// lse function and gradient formula, the same GEMMs, so the same bits; whole and in chunks.
TEST(CudaModel, HeadFusedWithTheLossGivesTheBitsOfTheUnfusedPasses) {
  SKIP_WITHOUT_GPU();
  const ModelConfig config = qwen3::test_data::tiny_model_config();
  auto gpu = make_cuda_backend(0);
  const Batch batch = learnable_batch(2, 48, config.vocab_size, 3);
  const float scale = 1.0f / float(count_scored_tokens(batch));
  for (int64_t chunk : {int64_t{0}, int64_t{20}}) {
    std::vector<double> losses;
    std::vector<std::vector<float>> grads;
    for (bool fused : {false, true}) {
      Qwen3Model model(config, *gpu);
      model.init_weights(4);
      MemoryOptions memory;
      memory.lm_head_chunk_tokens = chunk;
      model.set_memory_options(memory);
      model.forward_queued(batch, fused ? std::optional<float>(scale) : std::nullopt);
      losses.push_back(model.take_loss_total());
      model.backward(scale);
      grads.push_back(model.grads_to_host());
    }
    EXPECT_EQ(losses[1], losses[0]) << "chunk " << chunk;
    EXPECT_EQ(grads[1], grads[0]) << "chunk " << chunk;
  }
}

// A micro-batch split where bf16 accumulation loses what later micro-batches add: the first holds
// one token repeated over 8 rows of 128, every position scored, so its 1,024 per-token gradients
// add up coherently; each of the eight after it scores one position of the same token, adding
// about 1/1,000 of the running sum to each element, below half a bf16 step (2⁻⁹ relative).
std::vector<Batch> uneven_split(int64_t vocab) {
  auto repeated = [&](int64_t rows, int64_t scored_position) {
    Batch b;
    b.batch = rows;
    b.seq = 128;
    const size_t n = size_t(rows * b.seq);
    b.tokens.assign(n, 5);
    b.targets.assign(n, static_cast<int32_t>((7 * 5 + 3) % vocab));
    if (scored_position >= 0)
      for (size_t i = 0; i < n; ++i)
        if (i != size_t(scored_position)) b.targets[i] = kIgnoreIndex;
    return b;
  };
  std::vector<Batch> split{repeated(8, -1)};
  for (int64_t m = 1; m <= 8; ++m)
    split.push_back(repeated(1, 15 * m));
  return split;
}

// What the micro-batches after the first add to a gradient: total − first, elementwise.
struct SplitGradients {
  std::vector<double> first, total;
  std::vector<double> rest() const {
    std::vector<double> out(total.size());
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = total[i] - first[i];
    return out;
  }
};

std::vector<double> widened(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// The model's own accumulation over the split (backward adds into the gradient buffer).
SplitGradients accumulated(Qwen3Model& model, const std::vector<Batch>& split, float scale) {
  SplitGradients g;
  model.zero_grads();
  for (size_t m = 0; m < split.size(); ++m) {
    model.forward(split[m]);
    model.backward(scale);
    if (m == 0) g.first = widened(model.grads_to_host());
  }
  g.total = widened(model.grads_to_host());
  return g;
}

// The reference: each micro-batch's fp32 CPU gradient on its own, summed on the host in fp64.
SplitGradients summed_in_fp64(Qwen3Model& model, const std::vector<Batch>& split, float scale) {
  SplitGradients g;
  for (size_t m = 0; m < split.size(); ++m) {
    model.zero_grads();
    model.forward(split[m]);
    model.backward(scale);
    const std::vector<float> one = model.grads_to_host();
    if (m == 0) g.first = widened(one), g.total.assign(one.size(), 0.0);
    for (size_t i = 0; i < one.size(); ++i)
      g.total[i] += one[i];
  }
  return g;
}

double relative_error(const std::vector<double>& ref, const std::vector<double>& got) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    diff += (ref[i] - got[i]) * (ref[i] - got[i]), norm += ref[i] * ref[i];
  return std::sqrt(diff / norm);
}

// grad_dtype's reason to exist: bf16 gradients round the running sum at every micro-batch, so the
// small micro-batches' contributions are lost where fp32 keeps them. Measured on what the eight
// small micro-batches add (total − first), against the fp64 sum of the CPU's per-micro-batch
// gradients: fp32 accumulation recovers it to bf16 activations' accuracy, bf16 loses it.
TEST(CudaModel, Fp32GradientsKeepContributionsThatBf16AccumulationLoses) {
  SKIP_WITHOUT_GPU();
  const ModelConfig config = qwen3::test_data::tiny_model_config();
  auto gpu = make_cuda_backend(0);
  auto cpu = make_cpu_backend();
  Qwen3Model gpu_model(config, *gpu), cpu_model(config, *cpu);
  gpu_model.init_weights(3);
  cpu_model.load_params(gpu_model.params_to_host());
  const std::vector<Batch> split = uneven_split(config.vocab_size);
  int64_t tokens = 0;
  for (const Batch& b : split)
    tokens += count_scored_tokens(b);
  const float scale = 1.0f / float(tokens);

  const std::vector<double> want = summed_in_fp64(cpu_model, split, scale).rest();
  ASSERT_EQ(gpu_model.grad_dtype(), DType::F32) << "fp32 is the default";
  const std::vector<double> fp32 = accumulated(gpu_model, split, scale).rest();
  gpu_model.set_grad_dtype(DType::BF16);
  const std::vector<double> bf16 = accumulated(gpu_model, split, scale).rest();

  const double fp32_error = relative_error(want, fp32), bf16_error = relative_error(want, bf16);
  size_t kept_by_fp32 = 0, lost_by_bf16 = 0, changed = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == 0) continue;
    changed += 1;
    kept_by_fp32 += fp32[i] != 0;
    lost_by_bf16 += bf16[i] == 0;
  }
  std::printf(
      "what 8 small micro-batches add, against fp64: fp32 gradients %.3g relative error, bf16 "
      "%.3g; of %zu elements they change, fp32 keeps a change in %zu, bf16 none in %zu\n",
      fp32_error, bf16_error, changed, kept_by_fp32, lost_by_bf16);
  // Measured on the emulated device: fp32 0.0037, bf16 1 (nothing kept); fp32 changes 96% of the
  // elements, bf16 leaves 97% untouched.
  EXPECT_LT(fp32_error, 0.05);
  EXPECT_GT(bf16_error, 0.9);
  EXPECT_GT(kept_by_fp32, changed * 9 / 10);
  EXPECT_GT(lost_by_bf16, changed * 9 / 10);
}

struct Curve {
  std::vector<double> losses, norms;
  std::vector<float> params;
};

// kTrainingSteps AdamW steps of the tiny model, 8 rows of 64 tokens per step, ZeRO stage 1 over one
// rank (or as `options` say).
Curve train_tiny(Backend& backend, Communicator& comm, AdamWOptions options = {}) {
  const ModelConfig config = qwen3::test_data::tiny_model_config();
  Qwen3Model model(config, backend, ShardLayout::flat_multiple(comm.size()));
  model.init_weights(9);
  SingleRankCommunicator host;
  ZeroAdamW optimizer(backend, comm, host, model.layout(), model.params_padded(),
                      model.grads_padded(), options);
  optimizer.load_master_from_params();
  Curve curve;
  for (int step = 0; step < kTrainingSteps; ++step) {
    const Batch global = learnable_batch(8, 64, config.vocab_size, step);
    std::vector<Batch> micro{batch_rows(global, 0, 4, false), batch_rows(global, 4, 4, false)};
    const StepResult r = train_step(model, optimizer, host, micro, 3e-3);
    curve.losses.push_back(r.loss);
    curve.norms.push_back(r.grad_norm);
  }
  curve.params = model.params_to_host();
  return curve;
}

const Curve& cpu_curve() {
  static const Curve curve = [] {
    auto cpu = make_cpu_backend();
    SingleRankCommunicator comm;
    return train_tiny(*cpu, comm);
  }();
  return curve;
}

// The CUDA curve may differ from the reference by this fraction of the loss at every step.
constexpr double kCurveBand = 0.05;

// The premise of the next test, checked everywhere: the task is learnable, so the reference curve
// falls by more than twice the band and following it is not the same as standing still.
TEST(CudaModel, TheReferenceCurveFalls) {
  const Curve& c = cpu_curve();
  std::printf("reference curve: loss %.4f at step 1, %.4f at step %d\n", c.losses.front(),
              c.losses.back(), kTrainingSteps);
  EXPECT_LT(c.losses.back(), (1.0 - 2.0 * kCurveBand) * c.losses.front())
      << "first " << c.losses.front() << ", last " << c.losses.back();
}

TEST(CudaModel, Bf16TrainingFollowsTheCpuLossCurve) {
  SKIP_WITHOUT_GPU();
  cuda::select_device_for_local_rank(0);
  auto gpu = make_cuda_backend(0);
  NcclCommunicator nccl;
  const Curve g = train_tiny(*gpu, nccl);
  const Curve& c = cpu_curve();
  for (size_t s = 0; s < c.losses.size(); ++s) {
    ASSERT_TRUE(std::isfinite(g.losses[s])) << "step " << s;
    // bf16 weights and activations drift from fp32 step by step; the band is still well inside
    // the curve's fall (TheReferenceCurveFalls).
    EXPECT_NEAR(g.losses[s], c.losses[s], kCurveBand * c.losses[s]) << "step " << s;
  }
}

// The gradient reduction over NCCL in many small buckets on the side stream, overlapping the
// backward pass, at ZeRO 1 and 2, against one collective after the backward: on one rank the
// reduction adds nothing, so any difference is a bucket missed, reduced twice or read before its
// collective finished (a missing event wait).
TEST(CudaModel, BucketedNcclReductionEqualsOneCollective) {
  SKIP_WITHOUT_GPU();
  cuda::select_device_for_local_rank(0);
  auto gpu = make_cuda_backend(0);
  NcclCommunicator nccl;
  for (int stage : {1, 2}) {
    AdamWOptions whole, bucketed;
    whole.zero_stage = bucketed.zero_stage = stage;
    whole.overlap_grad_reduce = false;
    bucketed.grad_bucket_bytes = 4096;  // a thousand fp32 values: dozens of buckets a step
    const Curve a = train_tiny(*gpu, nccl, whole), b = train_tiny(*gpu, nccl, bucketed);
    EXPECT_EQ(a.losses, b.losses) << "ZeRO " << stage;
    EXPECT_EQ(a.params, b.params) << "ZeRO " << stage;
  }
}

TEST(CudaModel, TwoRunsAreBitIdentical) {
  SKIP_WITHOUT_GPU();
  cuda::select_device_for_local_rank(0);
  auto gpu = make_cuda_backend(0);
  NcclCommunicator nccl;
  const Curve a = train_tiny(*gpu, nccl), b = train_tiny(*gpu, nccl);
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.norms, b.norms);
  EXPECT_EQ(a.params, b.params);
}

// Ids are checked on the GPU without a host synchronisation; the next synchronisation reports the
// first bad one, naming the op, and the backend stays usable.
TEST(CudaModel, BadTokenIdIsReportedAtTheNextSynchronisation) {
  SKIP_WITHOUT_GPU();
  const ModelConfig config = qwen3::test_data::tiny_model_config();
  auto gpu = make_cuda_backend(0);
  Qwen3Model model(config, *gpu);
  model.init_weights(1);
  Batch batch = learnable_batch(1, 16, config.vocab_size, 0);
  batch.tokens[5] = static_cast<int32_t>(config.vocab_size) + 7;
  try {
    model.forward(batch);
    FAIL() << "a token id past the vocabulary was not reported";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("embedding_forward: token id"), std::string::npos) << message;
    EXPECT_NE(message.find("at index 5"), std::string::npos) << message;
  }
  batch.tokens[5] = 1;
  EXPECT_TRUE(std::isfinite(model.forward(batch).mean()));
}

}  // namespace
}  // namespace qwen3
