// Evaluation: one pass of the eval loader against a direct forward over the same windows read
// straight from the source; the per-position buckets adding up to the total; padding rows and
// rank splits not changing what is counted.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/util/error.h"
#include "dataloader/eval_loader.h"
#include "dataloader/source.h"
#include "parallel/communicator.h"
#include "shard_test_util.h"
#include "trainer/evaluate.h"

namespace qwen3 {
namespace {

const std::string kConfigs = std::string(QWEN3_SOURCE_DIR) + "/configs/models/";
constexpr int64_t kSeq = 16;

class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::fresh_dir();
    // Two shards of several documents each, so windows pack documents and cross their ends.
    for (int s = 0; s < 2; ++s)
      test::write_shard(dir + "/val-0000" + std::to_string(s) + ".h5",
                        test::random_documents(8, 3, 20, 1024, 1023, 40 + s));
    model.init_weights(5);
  }

  EvalLoaderConfig loader_config(int64_t global_batch, int rank = 0, int world_size = 1) const {
    EvalLoaderConfig c;
    c.name = "val";
    c.path = dir + "/val-*.h5";
    c.seq_len = kSeq;
    c.global_batch = global_batch;
    c.rank = rank;
    c.world_size = world_size;
    c.vocab_size = config.vocab_size;
    return c;
  }

  // Every window of the source in one batch, read directly (not through the eval loader), and its
  // forward pass: the reference for the totals and, per position, for the buckets.
  struct Direct {
    int64_t samples = 0;
    LossSum loss;
    std::vector<double> position_loss;     // [kSeq] summed over windows
    std::vector<int64_t> position_tokens;  // [kSeq]
  };
  Direct direct(int64_t max_samples = 0) {
    Source source("val", dir + "/val-*.h5", kSeq, config.vocab_size);
    Direct d;
    d.samples =
        max_samples > 0 ? std::min(max_samples, source.num_samples()) : source.num_samples();
    Batch b;
    b.batch = d.samples;
    b.seq = kSeq;
    const auto n = static_cast<size_t>(d.samples * kSeq);
    b.tokens.assign(n, 0);
    b.targets.assign(n, 0);
    b.positions.assign(n, 0);
    b.doc_ids.assign(n, 0);
    for (int64_t w = 0; w < d.samples; ++w)
      read_window_into_row(source, w, b, w);
    d.loss = model.forward(b);
    const std::vector<float> losses = model.token_losses_to_host();
    d.position_loss.assign(kSeq, 0.0);
    d.position_tokens.assign(kSeq, 0);
    for (int64_t w = 0; w < d.samples; ++w)
      for (int64_t t = 0; t < kSeq; ++t) {
        const auto i = static_cast<size_t>(w * kSeq + t);
        if (b.targets[i] == kIgnoreIndex) continue;
        d.position_loss[static_cast<size_t>(t)] += losses[i];
        d.position_tokens[static_cast<size_t>(t)] += 1;
      }
    return d;
  }

  std::string dir;
  ModelConfig config = load_model_config(kConfigs + "tiny.yaml");
  std::unique_ptr<Backend> backend = make_cpu_backend();
  Qwen3Model model{config, *backend};
  SingleRankCommunicator comm;
};

void expect_close(double actual, double expected, const char* what) {
  EXPECT_NEAR(actual, expected, 1e-5 * std::max(1.0, std::abs(expected))) << what;
}

TEST_F(EvaluateTest, MatchesADirectForwardAndBucketsAddUp) {
  const Direct d = direct();
  ASSERT_GT(d.samples, 4);
  // Three rows per batch leaves a padded last batch; two-row micro-batches split each batch
  // unevenly.
  EvalLoader loader(loader_config(3));
  ASSERT_GT(loader.num_batches() * 3, d.samples) << "the test wants padding rows";
  const int64_t width = 5;  // 16 positions: buckets of 5, 5, 5 and 1
  const EvalResult r = evaluate(model, loader, comm, 2, width, true);
  EXPECT_EQ(r.samples, d.samples);
  EXPECT_EQ(r.tokens, d.loss.tokens);
  EXPECT_EQ(r.tokens, d.samples * kSeq);
  expect_close(r.loss_sum, d.loss.sum, "loss sum");
  expect_close(r.loss(), d.loss.mean(), "mean loss");
  expect_close(r.perplexity(), std::exp(d.loss.mean()), "perplexity");
  EXPECT_GT(r.loss(), 0.0);

  EXPECT_EQ(r.bucket_width, width);
  ASSERT_EQ(r.bucket_loss_sum.size(), 4u);
  ASSERT_EQ(r.bucket_tokens.size(), 4u);
  double bucket_sum = 0.0;
  int64_t bucket_tokens = 0;
  for (size_t b = 0; b < 4; ++b) {
    double expected_loss = 0.0;
    int64_t expected_tokens = 0;
    for (size_t t = b * width; t < std::min<size_t>((b + 1) * width, kSeq); ++t) {
      expected_loss += d.position_loss[t];
      expected_tokens += d.position_tokens[t];
    }
    EXPECT_EQ(r.bucket_tokens[b], expected_tokens) << "bucket " << b;
    expect_close(r.bucket_loss_sum[b], expected_loss, "bucket loss sum");
    expect_close(r.bucket_loss(b), expected_loss / double(expected_tokens), "bucket mean");
    bucket_sum += r.bucket_loss_sum[b];
    bucket_tokens += r.bucket_tokens[b];
  }
  EXPECT_EQ(r.bucket_tokens[3], d.samples) << "the last bucket holds one position per window";
  EXPECT_EQ(bucket_tokens, r.tokens);
  expect_close(bucket_sum, r.loss_sum, "buckets against the total");

  // A second pass, even after one abandoned half-way, gives the same result.
  ASSERT_TRUE(loader.next().has_value());
  const EvalResult again = evaluate(model, loader, comm, 2, width, true);
  EXPECT_EQ(again.samples, r.samples);
  EXPECT_EQ(again.loss_sum, r.loss_sum);
}

TEST_F(EvaluateTest, PaddingRowsAndRankSplitsAreNotCounted) {
  const Direct d = direct();
  // Eight rows per batch over two simulated ranks: the last batch's padding falls on both ranks
  // or only on rank 1, depending on the window count; either way every window counts once.
  EvalLoader rank0(loader_config(8, 0, 2)), rank1(loader_config(8, 1, 2));
  ASSERT_NE(d.samples % 8, 0) << "the test wants a padded last batch";
  const EvalResult r0 = evaluate(model, rank0, comm, 3, 4, true);
  const EvalResult r1 = evaluate(model, rank1, comm, 3, 4, true);
  EXPECT_EQ(r0.samples + r1.samples, d.samples);
  EXPECT_EQ(r0.tokens + r1.tokens, d.samples * kSeq);
  expect_close(r0.loss_sum + r1.loss_sum, d.loss.sum, "two ranks' loss sums");
  for (size_t b = 0; b < 4; ++b)
    EXPECT_EQ(r0.bucket_tokens[b] + r1.bucket_tokens[b], d.samples * 4) << "bucket " << b;

  // One row at a time gives the same totals as one large micro-batch.
  EvalLoader single(loader_config(8));
  const EvalResult one_row = evaluate(model, single, comm, 1, 0, true);
  const EvalResult all_rows = evaluate(model, single, comm, 8, 0, true);
  EXPECT_EQ(one_row.samples, d.samples);
  EXPECT_EQ(all_rows.samples, d.samples);
  expect_close(one_row.loss_sum, all_rows.loss_sum, "micro-batch size");
  // Without a width there are no buckets.
  EXPECT_EQ(one_row.bucket_width, 0);
  EXPECT_TRUE(one_row.bucket_tokens.empty());
  EXPECT_TRUE(one_row.bucket_loss_sum.empty());
}

TEST_F(EvaluateTest, MaxSamplesAndAWideBucket) {
  const Direct d = direct(3);
  EvalLoaderConfig c = loader_config(2);
  c.max_samples = 3;
  EvalLoader loader(c);
  const EvalResult r = evaluate(model, loader, comm, 4, 4096, true);
  EXPECT_EQ(r.samples, 3);
  expect_close(r.loss_sum, d.loss.sum, "first three windows");
  ASSERT_EQ(r.bucket_tokens.size(), 1u);
  EXPECT_EQ(r.bucket_tokens[0], r.tokens);
}

TEST_F(EvaluateTest, RefusesBadArguments) {
  EvalLoader loader(loader_config(2));
  EXPECT_THROW(evaluate(model, loader, comm, 0, 4, true), Error);
  EXPECT_THROW(evaluate(model, loader, comm, 1, -1, true), Error);
  const EvalResult empty;
  EXPECT_EQ(empty.loss(), 0.0);
  EXPECT_EQ(empty.perplexity(), 1.0);
  EXPECT_THROW(empty.bucket_loss(0), Error);
}

}  // namespace
}  // namespace qwen3
