// The pieces of ZeRO that need no second rank: shard arithmetic, the weight-decay rule, the
// single-rank communicator and the optimizer ops' argument checks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/model/param_layout.h"
#include "core/ops/backend.h"
#include "core/util/error.h"
#include "parallel/communicator.h"
#include "parallel/decay_rule.h"
#include "parallel/shard_layout.h"

namespace {

using namespace qwen3;

ModelConfig tiny_config() {
  return load_model_config(std::string(QWEN3_SOURCE_DIR) + "/configs/models/tiny.yaml");
}

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
  ModelConfig untied = tiny_config();
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
  const ParamLayout layout(tiny_config());
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
