// The pieces of ZeRO that need no second rank: shard arithmetic, the weight-decay rule, the
// single-rank communicator, ZeroAdamW's step protocol (buckets, refused calls) and the optimizer
// ops' argument checks.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../common/tiny_model.h"
#include "core/model/param_layout.h"
#include "core/ops/backend.h"
#include "core/util/error.h"
#include "parallel/adamw.h"
#include "parallel/communicator.h"
#include "parallel/decay_rule.h"
#include "parallel/gradient_reducer.h"
#include "parallel/shard_layout.h"
#include "parallel/zero_adamw.h"

namespace {

using namespace qwen3;

TEST(ShardLayout, ShardsTileThePaddedBufferForAnyRankCount) {
  for (int64_t flat : {int64_t(1), int64_t(64), int64_t(1000), int64_t(596049920), int64_t(12345)})
    for (int world = 1; world <= 9; ++world) {
      int64_t next = 0;
      for (int rank = 0; rank < world; ++rank) {
        const ShardLayout s(flat, world, rank);
        EXPECT_EQ(s.begin(), next) << flat << " over " << world;
        EXPECT_EQ(s.begin() % ShardLayout::kShardAlignElements, 0);
        next = s.end();
        EXPECT_EQ(s.padded_size % world, 0);
        EXPECT_GE(s.padded_size, flat);
        // Padding is less than one aligned block per rank.
        EXPECT_LT(s.padded_size - flat, ShardLayout::flat_multiple(world));
      }
      EXPECT_EQ(next, ShardLayout(flat, world, 0).padded_size);
    }
  EXPECT_THROW(ShardLayout(100, 3, 3), Error);
  EXPECT_THROW(ShardLayout(100, 0, 0), Error);
}

TEST(DecayRule, DefaultLeavesNormsAndTheEmbeddingUndecayed) {
  ModelConfig untied = qwen3::test_data::tiny_model_config();
  untied.tie_word_embeddings = false;
  const ParamLayout layout(untied);
  const DecayRule rule;
  int decayed = 0;
  for (const ParamEntry& e : layout.entries()) {
    const bool expect = e.kind == ParamKind::Linear;  // the untied lm_head is a linear weight
    EXPECT_EQ(decays(rule, e), expect) << e.name;
    decayed += expect;
  }
  EXPECT_EQ(decayed, 7 * untied.num_hidden_layers + 1);
  EXPECT_NO_THROW(validate_decay_rule(rule, layout));
}

TEST(DecayRule, GlobsSelectByName) {
  const ParamLayout layout(qwen3::test_data::tiny_model_config());
  DecayRule rule;
  rule.no_decay = {"model.layers.*.mlp.*", "norm"};
  EXPECT_FALSE(decays(rule, layout.find("model.layers.1.mlp.up_proj.weight")));
  EXPECT_FALSE(decays(rule, layout.find("model.norm.weight")));
  EXPECT_TRUE(decays(rule, layout.find("model.layers.1.self_attn.q_proj.weight")));
  EXPECT_TRUE(decays(rule, layout.find("model.embed_tokens.weight")));
  rule.no_decay = {"model.layers.*.mlp.gate_prj.*"};
  try {
    validate_decay_rule(rule, layout);
    FAIL() << "a pattern matching nothing was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'model.layers.*.mlp.gate_prj.*' matches no parameter"),
              std::string::npos)
        << e.what();
  }
}

TEST(SingleRankCommunicator, CollectivesAreCopies) {
  SingleRankCommunicator comm;
  std::vector<float> a = {1, 2, 3}, b(3);
  comm.all_reduce(a.data(), b.data(), 3, DType::F32, ReduceOp::Sum);
  EXPECT_EQ(b, a);
  std::vector<float> c(3);
  comm.reduce_scatter(a.data(), c.data(), 3, DType::F32, ReduceOp::Sum);
  EXPECT_EQ(c, a);
  std::vector<float> d(3);
  comm.all_gather(a.data(), d.data(), 3, DType::F32);
  EXPECT_EQ(d, a);
  EXPECT_EQ(comm.all_reduce_value(2.5), 2.5);
  EXPECT_EQ(comm.all_reduce_value(int64_t(7)), 7);
  EXPECT_EQ(comm.stats().ring_bytes_sent, 0u);  // one rank sends nothing
}

TEST(SingleRankCommunicator, ReduceScatterWindowCopiesTheWindowOnly) {
  SingleRankCommunicator comm;
  const std::vector<float> send = {1, 2, 3, 4, 5, 6};
  std::vector<float> recv(6, -1.0f);
  comm.reduce_scatter_window(send.data(), recv.data(), 6, 2, 3, DType::F32, ReduceOp::Sum);
  EXPECT_EQ(recv, (std::vector<float>{-1, -1, 3, 4, 5, -1}));
  EXPECT_EQ(comm.stats().payload_bytes, 3 * sizeof(float));
  EXPECT_EQ(comm.stats().ring_bytes_sent, 0u);
  EXPECT_THROW(
      comm.reduce_scatter_window(send.data(), recv.data(), 6, 4, 3, DType::F32, ReduceOp::Sum),
      Error);
}

// ZeroAdamW's step protocol on one rank, driven by hand: which backwards go out in buckets, where
// the buckets fall, and the calls it refuses.
class ZeroAdamWSteps : public ::testing::Test {
 protected:
  ZeroAdamW make(int stage, bool overlap) {
    AdamWOptions options;
    options.zero_stage = stage;
    options.overlap_grad_reduce = overlap;
    options.grad_bucket_bytes = 1;  // every announcement launches a bucket
    return ZeroAdamW(*backend, comm, comm, layout, params->view(DType::F32, {shard.padded_size}),
                     grads->view(DType::F32, {shard.padded_size}), options);
  }
  using Buckets = std::vector<std::pair<int64_t, int64_t>>;
  static Buckets buckets_of(const ZeroAdamW& optimizer) {
    Buckets out;
    for (const ZeroAdamW::Bucket& b : optimizer.last_buckets())
      out.emplace_back(b.begin, b.end);
    return out;
  }
  // What a two-layer backward announces: final norm, layer 1, layer 0, embedding.
  void announce_backward(ZeroAdamW& optimizer) const {
    optimizer.gradients_final(layout[layout.final_norm()].offset);
    optimizer.gradients_final(layout.layer_begin(1));
    optimizer.gradients_final(layout.layer_begin(0));
    optimizer.gradients_final(0);
  }

  std::unique_ptr<Backend> backend = make_cpu_backend();
  SingleRankCommunicator comm;
  ParamLayout layout{qwen3::test_data::tiny_model_config()};
  ShardLayout shard{layout.flat_size(), 1, 0};
  std::unique_ptr<Buffer> params = backend->allocate(size_t(shard.padded_size) * sizeof(float));
  std::unique_ptr<Buffer> grads = backend->allocate(size_t(shard.padded_size) * sizeof(float));
};

TEST_F(ZeroAdamWSteps, StagesZeroAndOneBucketOnlyTheLastMicroBatch) {
  const Buckets expected = {{layout[layout.final_norm()].offset, shard.padded_size},
                            {layout.layer_begin(1), layout[layout.final_norm()].offset},
                            {layout.layer_begin(0), layout.layer_begin(1)},
                            {0, layout.layer_begin(0)}};
  for (int stage : {0, 1}) {
    ZeroAdamW optimizer = make(stage, true);
    optimizer.zero_grad(2);
    announce_backward(optimizer);  // the first micro-batch: accumulated, not reduced
    EXPECT_TRUE(optimizer.last_buckets().empty()) << "stage " << stage;
    optimizer.micro_batch_done();
    announce_backward(optimizer);
    optimizer.micro_batch_done();
    optimizer.reduce_gradients();
    EXPECT_EQ(buckets_of(optimizer), expected) << "stage " << stage;
  }
}

TEST_F(ZeroAdamWSteps, StageTwoBucketsEveryMicroBatchAndFinishesWhatWasNotAnnounced) {
  ZeroAdamW optimizer = make(2, true);
  optimizer.zero_grad(2);
  announce_backward(optimizer);
  optimizer.micro_batch_done();
  EXPECT_EQ(optimizer.last_buckets().size(), 4u);
  // A backward that stops announcing at layer 1: the rest goes out as one more bucket.
  optimizer.gradients_final(layout.layer_begin(1));
  optimizer.micro_batch_done();
  EXPECT_EQ(buckets_of(optimizer),
            (Buckets{{layout.layer_begin(1), shard.padded_size}, {0, layout.layer_begin(1)}}));
  optimizer.reduce_gradients();
}

TEST_F(ZeroAdamWSteps, WithoutOverlapOrAnnouncementsTheReductionIsOneCollective) {
  ZeroAdamW off = make(1, false);
  off.zero_grad(1);
  announce_backward(off);
  off.micro_batch_done();
  off.reduce_gradients();
  EXPECT_TRUE(off.last_buckets().empty());
  ZeroAdamW unwired = make(2, true);
  unwired.zero_grad(1);
  unwired.micro_batch_done();
  EXPECT_TRUE(unwired.last_buckets().empty());
}

TEST_F(ZeroAdamWSteps, CallsOutOfOrderAreRefused) {
  ZeroAdamW optimizer = make(2, true);
  EXPECT_THROW(optimizer.zero_grad(0), Error);
  optimizer.zero_grad(1);
  optimizer.gradients_final(layout.layer_begin(1));
  try {
    optimizer.gradients_final(layout.layer_begin(1) + 1);
    FAIL() << "a higher offset after a lower one accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ever lower offsets"), std::string::npos) << e.what();
  }
  optimizer.micro_batch_done();
  try {
    optimizer.micro_batch_done();
    FAIL() << "more micro-batches than zero_grad was told accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the step has 1 micro-batches"), std::string::npos)
        << e.what();
  }
  optimizer.reduce_gradients();
  optimizer.zero_grad(2);
  optimizer.micro_batch_done();
  try {
    optimizer.reduce_gradients();
    FAIL() << "a reduction before the step's last micro-batch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("after 1 of the step's 2 micro-batches"),
              std::string::npos)
        << e.what();
  }
  AdamWOptions no_buckets;
  no_buckets.grad_bucket_bytes = 0;
  EXPECT_THROW(
      (void)ZeroAdamW(*backend, comm, comm, layout, params->view(DType::F32, {shard.padded_size}),
                      grads->view(DType::F32, {shard.padded_size}), no_buckets),
      Error);
}

// The reducer knows no update rule and the rule no ranks: driven by hand, a GradientReducer
// feeding AdamW gives the parameters ZeroAdamW gives, to the bit, and AdamW names its state as
// the optimizer-state files do.
TEST_F(ZeroAdamWSteps, ReducerFeedingAdamWByHandIsZeroAdamW) {
  std::vector<float> start(size_t(shard.padded_size)), gradient(start.size());
  for (size_t i = 0; i < start.size(); ++i) {
    start[i] = 0.01f * float(int(i % 97) - 48);
    gradient[i] = 0.001f * float(int(i % 89) - 44);
  }
  const TensorView p = params->view(DType::F32, {shard.padded_size});
  const TensorView g = grads->view(DType::F32, {shard.padded_size});
  const auto run_step = [&](auto&& zero_grad, auto&& micro_batch_done, auto&& reduce,
                            auto&& update) {
    backend->upload(start.data(), p);
    zero_grad();
    backend->upload(gradient.data(), g);
    micro_batch_done();
    update(reduce());
    std::vector<float> out(start.size());
    backend->download(p, out.data());
    return out;
  };
  AdamWOptions options;
  options.grad_clip = 0.01;  // clipping on: the coefficient is the reducer's
  ZeroAdamW zero(*backend, comm, comm, layout, p, g, options);
  const std::vector<float> by_zero = run_step(
      [&] {
        zero.load_master_from_params();
        zero.zero_grad(1);
      },
      [&] { zero.micro_batch_done(); }, [&] { return zero.reduce_gradients(); },
      [&](double norm) { zero.update(1e-2, norm); });

  GradientReducerOptions reducer_options;
  reducer_options.grad_clip = options.grad_clip;
  GradientReducer reducer(*backend, comm, comm, shard, g, reducer_options);
  AdamWHyperparameters hyper;
  AdamW adamw(*backend, layout, reducer.range_begin(), reducer.range_end(), hyper);
  const TensorView own = p.rows(reducer.range_begin(), reducer.range_end() - reducer.range_begin());
  double clip = 1.0;
  const std::vector<float> by_hand = run_step(
      [&] {
        adamw.load_master_from_params(own);
        reducer.zero_grad(1);
      },
      [&] { reducer.micro_batch_done(); }, [&] { return reducer.reduce_gradients(); },
      [&](double norm) {
        clip = reducer.clip_coefficient(norm);
        adamw.step(reducer.reduced(), 1e-2, clip, own);
      });
  EXPECT_LT(clip, 1.0);  // clipping did happen
  EXPECT_EQ(by_hand, by_zero);
  EXPECT_NE(by_hand, start);
  EXPECT_EQ(adamw.steps_taken(), 1);

  std::vector<std::string> names;
  for (const OptimizerStateTensor& t : zero.update_rule().state()) {
    names.push_back(t.name);
    EXPECT_EQ(t.values.numel(), zero.range_end() - zero.range_begin()) << t.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"master", "exp_avg", "exp_avg_sq"}));
  EXPECT_STREQ(zero.update_rule().name(), "adamw");
}

TEST(OptimizerOps, ArgumentsAreChecked) {
  auto backend = make_cpu_backend();
  std::vector<float> m(8), g(8), a(8), v(7);
  const TensorView master{m.data(), DType::F32, Device::CPU, Shape{8}};
  const TensorView grad{g.data(), DType::F32, Device::CPU, Shape{8}};
  const TensorView avg{a.data(), DType::F32, Device::CPU, Shape{8}};
  const TensorView short_v{v.data(), DType::F32, Device::CPU, Shape{7}};
  try {
    backend->adamw_update(master, grad, avg, short_v, AdamWHyper{});
    FAIL() << "mismatched v accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adamw_update: argument 'v' has shape [7]"),
              std::string::npos)
        << e.what();
  }
  AdamWHyper zero_step;
  zero_step.step = 0;
  EXPECT_THROW(backend->adamw_update(master, grad, avg, avg, zero_step), Error);
  const TensorView ids{g.data(), DType::I32, Device::CPU, Shape{8}};
  EXPECT_THROW(backend->sum_squares(ids), Error);
  EXPECT_THROW(backend->accumulate(grad, ids), Error);
}

TEST(OptimizerOps, SumSquaresDoesNotDependOnThreadCount) {
  std::vector<float> x(300000);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = float(std::sin(double(i))) * 1e-3f;
  const TensorView view{x.data(), DType::F32, Device::CPU, Shape{int64_t(x.size())}};
  double expect = 0;
  for (float f : x)
    expect += double(f) * double(f);
  const double one = make_cpu_backend(1)->sum_squares(view);
  const double two = make_cpu_backend(2)->sum_squares(view);
  EXPECT_EQ(one, two);
  EXPECT_NEAR(one, expect, 1e-12 * expect);
}

}  // namespace
