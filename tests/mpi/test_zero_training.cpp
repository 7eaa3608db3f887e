// Data-parallel training on N ranks against one-rank training on the same global batch.
//
// Every rank also runs the one-rank reference itself (a SingleRankCommunicator, the whole global
// batch in one micro-batch, ZeRO stage 0), so no rank depends on another for the expectation.
// Tolerance: the two runs add the same numbers in different orders (rows split over ranks and
// micro-batches, gradients summed by MPI), so they differ by fp32 rounding. Losses and gradient
// norms must agree to 1e-5 relative at every step. After kSteps AdamW steps at lr 1e-3 (largest
// update 4e-3), the weights must agree to 5e-5 relative in L2 (|w − w₁| / |w₁ − w₀|; measured
// ≤ 6e-6) and to 2e-5 absolute per element (measured ≤ 4e-6). The per-element figure is the
// looser one because Adam divides by √v: where a gradient element is near zero, rounding moves
// its update by a visible fraction of lr.
// The norm check is what catches a wrong loss normalisation: Adam and clipping are nearly
// invariant to the gradient's scale, so the weights alone would not.
//
// Then the gradient reduction in buckets during the backward pass (overlap_grad_reduce) against
// the one collective after it, on the same ranks (ZeroOverlap, below).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../common/synthetic_batch.h"
#include "../common/tiny_model.h"
#include "core/model/qwen3_model.h"
#include "parallel/mpi_communicator.h"
#include "parallel/zero_adamw.h"
#include "trainer/train_step.h"

namespace {

using namespace qwen3;

constexpr int kSteps = 4;
constexpr int64_t kGlobalRows = 24;  // divides into 1, 2, 3, 4 ranks x 1 or 2 micro-batches
constexpr int64_t kSeq = 16;
constexpr double kLr = 1e-3;
constexpr double kWeightTolerance = 2e-5;
constexpr double kWeightRelativeL2Tolerance = 5e-5;
constexpr double kLossTolerance = 1e-5;

struct RunResult {
  std::vector<float> params;
  std::vector<StepResult> steps;
  size_t optimizer_bytes = 0, gradient_shard_bytes = 0;
  int64_t flat_size = 0;
  CommStats stats;                         // everything the run asked of the communicator
  std::vector<ZeroAdamW::Bucket> buckets;  // the last reduction's
};

AdamWOptions options_for(int stage, double grad_clip) {
  AdamWOptions o;
  o.zero_stage = stage;
  o.weight_decay = 0.1;
  o.grad_clip = grad_clip;
  return o;
}

RunResult train(Communicator& comm, const AdamWOptions& options, int micro_batches,
                int steps = kSteps, uint64_t seed = 5,
                const ModelConfig& config = qwen3::test_data::tiny_model_config()) {
  comm.reset_stats();
  auto backend = make_cpu_backend();
  Qwen3Model model(config, *backend, ShardLayout::flat_multiple(comm.size()));
  model.init_weights(seed);
  ZeroAdamW optimizer(*backend, comm, comm, model.layout(), model.params_padded(),
                      model.grads_padded(), options);
  optimizer.load_master_from_params();
  RunResult out;
  for (int s = 0; s < steps; ++s) {
    const Batch global =
        test_data::synthetic_global_batch(kGlobalRows, kSeq, config.vocab_size, seed, s);
    out.steps.push_back(train_step(
        model, optimizer, comm,
        test_data::rank_micro_batches(global, comm.rank(), comm.size(), micro_batches), kLr));
  }
  out.params = model.params_to_host();
  out.optimizer_bytes = optimizer.optimizer_state_bytes();
  out.gradient_shard_bytes = optimizer.gradient_shard_bytes();
  out.flat_size = model.layout().flat_size();
  out.stats = comm.stats();
  out.buckets = optimizer.last_buckets();
  return out;
}

const RunResult& reference(double grad_clip) {
  static std::map<double, RunResult> cache;
  auto it = cache.find(grad_clip);
  if (it == cache.end()) {
    SingleRankCommunicator single;
    it = cache.emplace(grad_clip, train(single, options_for(0, grad_clip), 1)).first;
  }
  return it->second;
}

struct Case {
  int stage;
  int micro_batches;
};

class ZeroTraining : public ::testing::TestWithParam<Case> {};

TEST_P(ZeroTraining, MatchesOneRankTrainingOnTheSameGlobalBatch) {
  const Case c = GetParam();
  auto comm = MpiCommunicator::world();
  // 0.5 engages clipping on the tiny model's first steps (checked below).
  const double clip = 0.5;
  const RunResult& ref = reference(clip);
  const RunResult run = train(*comm, options_for(c.stage, clip), c.micro_batches);

  bool clipped = false;
  for (int s = 0; s < kSteps; ++s) {
    const StepResult &a = run.steps[s], &b = ref.steps[s];
    EXPECT_FALSE(a.skipped);
    EXPECT_EQ(a.tokens, b.tokens) << "step " << s;
    EXPECT_NEAR(a.loss, b.loss, kLossTolerance * b.loss) << "step " << s;
    EXPECT_NEAR(a.grad_norm, b.grad_norm, kLossTolerance * b.grad_norm) << "step " << s;
    clipped = clipped || b.clip_coef < 1.0;
  }
  EXPECT_TRUE(clipped) << "the test should exercise clipping";
  double max_diff = 0.0, max_update = 0.0, diff_sq = 0.0, update_sq = 0.0;
  const std::vector<float> init = [] {
    auto be = make_cpu_backend();
    Qwen3Model m(qwen3::test_data::tiny_model_config(), *be);
    m.init_weights(5);
    return m.params_to_host();
  }();
  for (size_t i = 0; i < ref.params.size(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(run.params[i] - ref.params[i])));
    max_update = std::max(max_update, double(std::abs(ref.params[i] - init[i])));
    diff_sq += std::pow(double(run.params[i]) - double(ref.params[i]), 2);
    update_sq += std::pow(double(ref.params[i]) - double(init[i]), 2);
  }
  const double relative_l2 = std::sqrt(diff_sq / update_sq);
  if (comm->rank() == 0)
    std::printf(
        "  stage %d, %d ranks x %d micro-batches: max |w - w_1rank| = %.3g "
        "(largest update %.3g); |w - w_1rank| / |w_1rank - w_0| = %.3g\n",
        c.stage, comm->size(), c.micro_batches, max_diff, max_update, relative_l2);
  EXPECT_LE(max_diff, kWeightTolerance);
  EXPECT_LE(relative_l2, kWeightRelativeL2Tolerance);
  EXPECT_GT(max_update, 100 * kWeightTolerance) << "the weights should have moved";

  // Every rank ends with the same weights, bit for bit.
  std::vector<float> rank0 = run.params;
  comm->broadcast(rank0.data(), rank0.size(), DType::F32, 0);
  EXPECT_EQ(std::memcmp(rank0.data(), run.params.data(), rank0.size() * sizeof(float)), 0)
      << "rank " << comm->rank() << " differs from rank 0";
}

INSTANTIATE_TEST_SUITE_P(Stages, ZeroTraining,
                         ::testing::Values(Case{0, 1}, Case{0, 2}, Case{1, 1}, Case{1, 2},
                                           Case{2, 1}, Case{2, 2}),
                         [](const auto& info) {
                           return "Zero" + std::to_string(info.param.stage) + "_Micro" +
                                  std::to_string(info.param.micro_batches);
                         });

class ZeroMemory : public ::testing::TestWithParam<int> {};

TEST_P(ZeroMemory, OptimizerStatePerRankIsAboutOneNth) {
  const Case c{GetParam(), 1};
  auto comm = MpiCommunicator::world();
  const RunResult run = train(*comm, options_for(c.stage, 1.0), 1, 1);
  const int n = comm->size();
  // fp32 master weights, first and second moments: 12 bytes per element covered.
  const double total = 12.0 * double(run.flat_size);
  const double per_rank = double(run.optimizer_bytes);
  if (c.stage == 0) {
    EXPECT_GE(per_rank, total);
  } else {
    // The padding adds at most n · 64 elements in all, i.e. 64 per rank.
    EXPECT_LE(per_rank, total / n + 12.0 * ShardLayout::kShardAlignElements);
    EXPECT_GE(per_rank, total / n);
  }
  if (comm->rank() == 0)
    std::printf(
        "  stage %d on %d ranks: optimizer state %.0f bytes per rank = %.4f of the "
        "%.0f-byte total (1/N = %.4f); gradient shards %zu bytes\n",
        c.stage, n, per_rank, per_rank / total, total, 1.0 / n, run.gradient_shard_bytes);
}

INSTANTIATE_TEST_SUITE_P(Stages, ZeroMemory, ::testing::Values(0, 1, 2),
                         [](const auto& info) { return "Zero" + std::to_string(info.param); });

TEST(ZeroTrainingFaults, NonFiniteGradientSkipsTheUpdateOnEveryRank) {
  auto comm = MpiCommunicator::world();
  const ModelConfig config = qwen3::test_data::tiny_model_config();
  auto backend = make_cpu_backend();
  Qwen3Model model(config, *backend, ShardLayout::flat_multiple(comm->size()));
  model.init_weights(3);
  // One NaN weight in the last layer's down projection (the same on every rank) makes the loss
  // and every gradient it touches NaN.
  std::vector<float> params = model.params_to_host();
  params[size_t(model.layout().find("model.layers.1.mlp.down_proj.weight").offset)] = NAN;
  model.load_params(params);
  ZeroAdamW optimizer(*backend, *comm, *comm, model.layout(), model.params_padded(),
                      model.grads_padded(), options_for(2, 1.0));
  optimizer.load_master_from_params();
  const Batch global =
      test_data::synthetic_global_batch(kGlobalRows, kSeq, config.vocab_size, 3, 0);
  const StepResult r =
      train_step(model, optimizer, *comm,
                 test_data::rank_micro_batches(global, comm->rank(), comm->size(), 1), kLr);
  EXPECT_TRUE(r.skipped);
  EXPECT_FALSE(std::isfinite(r.grad_norm));
  EXPECT_EQ(optimizer.steps_taken(), 0);
  const std::vector<float> after = model.params_to_host();
  EXPECT_EQ(std::memcmp(after.data(), params.data(), after.size() * sizeof(float)), 0)
      << "weights changed in a skipped step";
}

TEST(ZeroTrainingFaults, WrongBufferSizeIsAClearError) {
  auto comm = MpiCommunicator::world();
  if (comm->size() == 1) GTEST_SKIP() << "one rank needs no padding";
  auto backend = make_cpu_backend();
  Qwen3Model model(qwen3::test_data::tiny_model_config(), *backend);  // not padded for the ranks
  if (model.padded_size() % ShardLayout::flat_multiple(comm->size()) == 0)
    GTEST_SKIP() << "the tiny model happens to divide evenly";
  try {
    ZeroAdamW optimizer(*backend, *comm, *comm, model.layout(), model.params_padded(),
                        model.grads_padded(), options_for(1, 1.0));
    FAIL() << "unpadded buffers accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("flat_multiple"), std::string::npos) << e.what();
  }
}

// ---- The reduction in buckets during the backward pass, against one collective after it ----
//
// The same ranks, data and options but for overlap_grad_reduce. A four-layer variant of the tiny
// model announces six times per backward (head, four layers, embedding), so small buckets make up
// to six. On 2 to 4 ranks every shard boundary falls inside a layer or the embedding, so buckets
// straddle shards. On 1 and 2 ranks each element is the sum of at most two values, whatever the
// collective, so the runs must agree bit for bit; on 3 and 4, MPI_Reduce may add the values in
// another order than MPI_Reduce_scatter_block or a whole-buffer MPI_Allreduce, so they may differ
// by fp32 rounding in the reduced gradient, which AdamW's division by √v can magnify for
// elements near zero (the same effect as in the tolerances above, on a smaller scale).
constexpr double kOverlapLossTolerance = 1e-6;
constexpr double kOverlapWeightTolerance = 1e-5;

ModelConfig four_layer_config() {
  ModelConfig config = qwen3::test_data::tiny_model_config();
  config.num_hidden_layers = 4;
  return config;
}

struct OverlapCase {
  int stage;
  int micro_batches;
  int64_t bucket_bytes;
  size_t buckets;  // expected per reduction (fp32 layer: 49,408 elements, 197,632 bytes)
};

class ZeroOverlap : public ::testing::TestWithParam<OverlapCase> {};

TEST_P(ZeroOverlap, BucketsDuringTheBackwardGiveTheOneCollectivesResult) {
  const OverlapCase c = GetParam();
  auto comm = MpiCommunicator::world();
  AdamWOptions whole = options_for(c.stage, 0.5);
  whole.overlap_grad_reduce = false;
  AdamWOptions bucketed = whole;
  bucketed.overlap_grad_reduce = true;
  bucketed.grad_bucket_bytes = c.bucket_bytes;
  const ModelConfig config = four_layer_config();
  const RunResult a = train(*comm, whole, c.micro_batches, kSteps, 5, config);
  const RunResult b = train(*comm, bucketed, c.micro_batches, kSteps, 5, config);

  // The buckets tile the padded buffer from its end down; on several ranks some straddle shards.
  const ShardLayout shard(b.flat_size, comm->size(), 0);
  EXPECT_TRUE(a.buckets.empty());
  ASSERT_EQ(b.buckets.size(), c.buckets);
  int64_t end = shard.padded_size;
  int straddling = 0;
  for (const ZeroAdamW::Bucket& bucket : b.buckets) {
    EXPECT_EQ(bucket.end, end);
    EXPECT_LT(bucket.begin, bucket.end);
    end = bucket.begin;
    straddling += bucket.begin / shard.shard_size != (bucket.end - 1) / shard.shard_size;
  }
  EXPECT_EQ(end, 0);
  if (comm->size() > 1) {
    EXPECT_GE(straddling, 1) << "no bucket straddles a shard boundary";
  }

  // The same bytes in more calls; the ring model rounds each call to a whole byte.
  EXPECT_EQ(b.stats.payload_bytes, a.stats.payload_bytes);
  EXPECT_GE(b.stats.calls, a.stats.calls);
  EXPECT_NEAR(double(b.stats.ring_bytes_sent), double(a.stats.ring_bytes_sent),
              0.5 * double(a.stats.calls + b.stats.calls));

  const bool bitwise = comm->size() <= 2;
  for (int s = 0; s < kSteps; ++s) {
    const StepResult &x = a.steps[s], &y = b.steps[s];
    EXPECT_EQ(y.tokens, x.tokens);
    if (bitwise) {
      EXPECT_EQ(y.loss, x.loss) << "step " << s;
      EXPECT_EQ(y.grad_norm, x.grad_norm) << "step " << s;
      EXPECT_EQ(y.clip_coef, x.clip_coef) << "step " << s;
    } else {
      EXPECT_NEAR(y.loss, x.loss, kOverlapLossTolerance * x.loss) << "step " << s;
      EXPECT_NEAR(y.grad_norm, x.grad_norm, kOverlapLossTolerance * x.grad_norm) << "step " << s;
    }
  }
  double max_diff = 0.0;
  for (size_t i = 0; i < a.params.size(); ++i)
    max_diff = std::max(max_diff, double(std::abs(a.params[i] - b.params[i])));
  if (comm->rank() == 0)
    std::printf("  stage %d, %d ranks x %d micro-batches, %zu buckets: max |w - w_whole| = %.3g\n",
                c.stage, comm->size(), c.micro_batches, b.buckets.size(), max_diff);
  if (bitwise)
    EXPECT_EQ(std::memcmp(a.params.data(), b.params.data(), a.params.size() * sizeof(float)), 0);
  else
    EXPECT_LE(max_diff, kOverlapWeightTolerance);
}

// Bucket sizes: 1 byte launches at every announcement; 150,000 bytes waits for the head's small
// range to join the last layer; 300,000 takes two layers per bucket; 25 MiB (the default) takes
// the whole buffer in one bucket at the end of the backward.
INSTANTIATE_TEST_SUITE_P(
    Stages, ZeroOverlap,
    ::testing::Values(OverlapCase{0, 2, 1, 6}, OverlapCase{0, 2, 150000, 5},
                      OverlapCase{0, 2, 300000, 3}, OverlapCase{0, 2, int64_t{25} << 20, 1},
                      OverlapCase{1, 2, 1, 6}, OverlapCase{1, 2, 150000, 5},
                      OverlapCase{1, 2, 300000, 3}, OverlapCase{1, 2, int64_t{25} << 20, 1},
                      OverlapCase{2, 2, 1, 6}, OverlapCase{2, 2, 150000, 5},
                      OverlapCase{2, 2, 300000, 3}, OverlapCase{2, 2, int64_t{25} << 20, 1},
                      OverlapCase{0, 1, 1, 6}, OverlapCase{1, 1, 1, 6}, OverlapCase{2, 1, 1, 6}),
    [](const auto& info) {
      return "Zero" + std::to_string(info.param.stage) + "_Micro" +
             std::to_string(info.param.micro_batches) + "_Bucket" +
             std::to_string(info.param.bucket_bytes) + "B";
    });

// A caller that never wires the model's hook (the optimizer driven by hand) gets the one
// collective after the backward, with overlap_grad_reduce on: the same step as with it off.
TEST(ZeroOverlapUnwired, WithoutTheHookTheReductionIsOneCollective) {
  auto comm = MpiCommunicator::world();
  const ModelConfig config = qwen3::test_data::tiny_model_config();
  for (int stage : {0, 1, 2}) {
    AdamWOptions options = options_for(stage, 0.5);
    options.overlap_grad_reduce = false;
    const RunResult expected = train(*comm, options, 2, 2);

    options.overlap_grad_reduce = true;
    options.grad_bucket_bytes = 1;
    auto backend = make_cpu_backend();
    Qwen3Model model(config, *backend, ShardLayout::flat_multiple(comm->size()));
    model.init_weights(5);
    ZeroAdamW optimizer(*backend, *comm, *comm, model.layout(), model.params_padded(),
                        model.grads_padded(), options);
    optimizer.load_master_from_params();
    for (int s = 0; s < 2; ++s) {
      const Batch global =
          test_data::synthetic_global_batch(kGlobalRows, kSeq, config.vocab_size, 5, s);
      const std::vector<Batch> micro =
          test_data::rank_micro_batches(global, comm->rank(), comm->size(), 2);
      int64_t tokens = 0;
      for (const Batch& b : micro)
        tokens += count_scored_tokens(b);
      tokens = comm->all_reduce_value(tokens);
      optimizer.zero_grad(2);
      for (const Batch& b : micro) {
        model.forward(b);
        model.backward(static_cast<float>(1.0 / double(tokens)));
        optimizer.micro_batch_done();
      }
      const double norm = optimizer.reduce_gradients();
      EXPECT_TRUE(optimizer.last_buckets().empty()) << "stage " << stage;
      EXPECT_EQ(norm, expected.steps[size_t(s)].grad_norm) << "stage " << stage << ", step " << s;
      optimizer.update(kLr, norm);
    }
    const std::vector<float> params = model.params_to_host();
    EXPECT_EQ(std::memcmp(params.data(), expected.params.data(), params.size() * sizeof(float)), 0)
        << "stage " << stage;
  }
}

}  // namespace
