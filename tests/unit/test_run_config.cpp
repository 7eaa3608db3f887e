// The run file's typed reading (budgets, batches, defaults, overrides, the dump's round trip), the
// trainer state's text form, metrics truncation on resume, and the optimizer state's HDF5 files.
#include <gtest/gtest.h>

#include <fstream>

#include "core/model/qwen3_model.h"
#include "core/util/error.h"
#include "parallel/communicator.h"
#include "shard_test_util.h"
#include "trainer/checkpoint.h"
#include "trainer/metrics.h"
#include "trainer/optimizer_state.h"
#include "trainer/run_config.h"

namespace qwen3 {
namespace {

class RunConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    dir = test::fresh_dir();
    test::write_shard(dir + "/train-00000.h5", test::random_documents(20, 30, 90, 1000, 1023, 1));
    test::write_shard(dir + "/val-00000.h5", test::random_documents(5, 30, 90, 1000, 1023, 2));
  }
  std::string run_text(const std::string& stage_extra = "") const {
    return "model: " + std::string(QWEN3_SOURCE_DIR) +
           "/configs/models/tiny.yaml\n"
           "output_dir: " +
           dir +
           "/out\n"
           "seed: 9\n"
           "stages:\n"
           "  - name: one\n"
           "    train_data: [{name: a, path: '" +
           dir +
           "/train-*.h5'}]\n"
           "    eval_data: [{name: v, path: '" +
           dir +
           "/val-*.h5'}]\n"
           "    seq_len: 32\n"
           "    tokens: 5000\n"
           "    batch_tokens: 512\n"
           "    micro_batch: 2\n" +
           stage_extra;
  }
  std::string dir;
};

TEST_F(RunConfigTest, BudgetsBatchesAndDefaults) {
  const RunConfig run = parse_run_config(run_text(), "run.yaml", {}, 2);
  ASSERT_EQ(run.stages.size(), 1u);
  const StageConfig& s = run.stages[0];
  EXPECT_EQ(s.steps, 9);  // 5000 tokens / 512 per step, whole steps
  EXPECT_EQ(s.global_batch_rows(), 16);
  EXPECT_EQ(s.accumulation_steps(2), 4);  // 16 rows / (2 per micro-batch x 2 ranks)
  EXPECT_EQ(s.data_seed, 9u);             // the run's seed
  EXPECT_EQ(s.zero_stage, 1);
  EXPECT_EQ(s.optimizer.adamw.zero_stage, 1);
  EXPECT_EQ(s.optimizer.schedule.kind, ScheduleKind::Cosine);
  EXPECT_EQ(s.optimizer.schedule.total_steps, 9);
  EXPECT_DOUBLE_EQ(s.optimizer.adamw.beta2, AdamWOptions{}.beta2);
  EXPECT_EQ(s.optimizer.adamw.decay.no_decay, DecayRule{}.no_decay);
  EXPECT_EQ(s.train_data[0].files.size(), 1u);
  EXPECT_TRUE(s.optimizer.adamw.overlap_grad_reduce);
  EXPECT_EQ(s.optimizer.adamw.grad_bucket_bytes, 25 << 20);
  EXPECT_EQ(run.model_config.hidden_size, 64);
  EXPECT_EQ(run.checkpoint.keep_last, 3);
  EXPECT_EQ(s.attention, "auto");
  EXPECT_EQ(s.grad_dtype, "fp32");
}

TEST_F(RunConfigTest, OverridesReachListsAndNestedMappings) {
  const RunConfig run =
      parse_run_config(run_text(), "run.yaml",
                       {"stages.0.optimizer.lr=1e-4", "stages.0.optimizer.min_lr=0",
                        "stages.0.zero_stage=2", "stages.0.train_data.0.weight=3",
                        "checkpoint.keep_last=7", "stages.0.steps=4", "stages.0.tokens=0"},
                       1);
  const StageConfig& s = run.stages[0];
  EXPECT_DOUBLE_EQ(s.optimizer.schedule.lr, 1e-4);
  EXPECT_EQ(s.optimizer.adamw.zero_stage, 2);
  EXPECT_DOUBLE_EQ(s.train_data[0].weight, 3.0);
  EXPECT_EQ(run.checkpoint.keep_last, 7);
  EXPECT_EQ(s.steps, 4);

  const RunConfig tuned = parse_run_config(run_text("    grad_bucket_mb: 0.5\n"), "run.yaml",
                                           {"stages.0.overlap_grad_reduce=false"}, 1);
  EXPECT_FALSE(tuned.stages[0].optimizer.adamw.overlap_grad_reduce);
  EXPECT_EQ(tuned.stages[0].optimizer.adamw.grad_bucket_bytes, 1 << 19);
}

TEST_F(RunConfigTest, DumpReadsBackToTheSameRun) {
  const RunConfig run = parse_run_config(
      run_text("    optimizer: {schedule: wsd, decay_steps: 3, lr: 0.0003, no_decay: [norm]}\n"
               "    overlap_grad_reduce: false\n    grad_bucket_mb: 1.5\n    attention: flash\n"
               "    grad_dtype: bf16\n"),
      "run.yaml", {}, 1);
  const std::string dumped = dump_run_config(run);
  const RunConfig again = parse_run_config(dumped, "dumped.yaml", {}, 1);
  EXPECT_EQ(dump_run_config(again), dumped);
  EXPECT_EQ(again.stages[0].optimizer.schedule.kind, ScheduleKind::WarmupStableDecay);
  EXPECT_EQ(again.stages[0].optimizer.adamw.decay.no_decay, std::vector<std::string>{"norm"});
  EXPECT_NE(dumped.find("lr: 0.0003"), std::string::npos) << dumped;
  EXPECT_FALSE(again.stages[0].optimizer.adamw.overlap_grad_reduce);
  EXPECT_EQ(again.stages[0].optimizer.adamw.grad_bucket_bytes, 3 << 19);
  EXPECT_EQ(again.stages[0].attention, "flash");
  EXPECT_EQ(again.stages[0].grad_dtype, "bf16");
}

TEST_F(RunConfigTest, ErrorsNameFileLineAndKey) {
  auto message = [&](const std::string& extra, std::vector<std::string> overrides = {},
                     int ranks = 1) {
    try {
      parse_run_config(run_text(extra), "run.yaml", overrides, ranks);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message("    attention: fastest\n")
                .find("run.yaml:12:5: key 'stages.0.attention' 'fastest' is not one of auto, "
                      "cudnn, flash"),
            std::string::npos)
      << message("    attention: fastest\n");
  EXPECT_NE(message("    grad_dtype: fp16\n")
                .find("run.yaml:12:5: key 'stages.0.grad_dtype' 'fp16' is not one of fp32, bf16"),
            std::string::npos)
      << message("    grad_dtype: fp16\n");
  EXPECT_NE(message("    zero_stage: 3\n")
                .find("run.yaml:12:5: key 'stages.0.zero_stage' must be "
                      "0, 1 or 2"),
            std::string::npos)
      << message("    zero_stage: 3\n");
  EXPECT_NE(message("    grad_bucket_mb: 0\n")
                .find("run.yaml:12:5: key 'stages.0.grad_bucket_mb' must lie between one byte"),
            std::string::npos)
      << message("    grad_bucket_mb: 0\n");
  EXPECT_NE(message("", {"stages.0.grad_bucket_mb=-3"})
                .find("--set stages.0.grad_bucket_mb=-3: key 'stages.0.grad_bucket_mb'"),
            std::string::npos)
      << message("", {"stages.0.grad_bucket_mb=-3"});
  EXPECT_NE(
      message("    overlap_grad_reduce: sometimes\n").find("key 'stages.0.overlap_grad_reduce'"),
      std::string::npos)
      << message("    overlap_grad_reduce: sometimes\n");
  EXPECT_NE(message("    overlap_grad_reduction: true\n")
                .find("unknown stage key (did you mean 'stages.0.overlap_grad_reduce'?)"),
            std::string::npos)
      << message("    overlap_grad_reduction: true\n");
  EXPECT_NE(message("", {}, 3).find("key 'stages.0.batch_tokens' 512 is not a multiple of seq_len "
                                    "x micro_batch x ranks = 32 x 2 x 3 = 192; the nearest that "
                                    "are: 384 or 576"),
            std::string::npos)
      << message("", {}, 3);
  EXPECT_NE(message("    optimizer: {warmup_steps: 20}\n")
                .find("key 'stages.0.optimizer.warmup_steps' 20 must lie in [0, the stage's 9 "
                      "steps]"),
            std::string::npos);
  EXPECT_NE(message("", {"stages.0.seq_len"}).find("expected KEY.PATH=VALUE"), std::string::npos);
  EXPECT_NE(message("", {"seed.x=1"}).find("'seed' is a single value; it has no key 'x'"),
            std::string::npos)
      << message("", {"seed.x=1"});
  EXPECT_NE(message("    eval_data: [{name: v, path: '/nonexistent/*.h5'}]\n").find("run.yaml:"),
            std::string::npos);
}

TEST(TrainerState, TextRoundTrip) {
  TrainerState s;
  s.run_name = "r";
  s.stage = 2;
  s.stage_name = "long";
  s.stage_step = 17;
  s.stage_steps = 40;
  s.global_step = 117;
  s.tokens_seen = 123456789012;
  s.stage_tokens = 5;
  s.nonfinite_in_a_row = 1;
  s.skipped_steps = 3;
  s.seed = 18446744073709551557ull;  // above INT64_MAX: seeds are unsigned
  s.data_seed = 4;
  s.rope_theta = 1e6;
  s.last_lr = 0.1 + 0.2;  // not a short decimal: must survive exactly
  s.world_size = 8;
  s.zero_stage = 2;
  s.schedule = "cosine lr 0.0003";
  s.loader = "seed: 4\nsamples_consumed: 99\n";
  const TrainerState t = TrainerState::from_text(s.to_text(), "state.yaml");
  EXPECT_EQ(t.to_text(), s.to_text());
  EXPECT_EQ(t.seed, s.seed);
  EXPECT_EQ(t.last_lr, s.last_lr);
  EXPECT_EQ(t.loader, s.loader);
  EXPECT_EQ(t.tokens_seen, s.tokens_seen);
  EXPECT_THROW(TrainerState::from_text("format: 1\nrun_name: x\n", "bad.yaml"), Error);
}

TEST(MetricsLog, ResumeDropsLaterStepsAndATornLine) {
  const std::string path = testing::TempDir() + "metrics_" + std::to_string(getpid()) + ".jsonl";
  {
    std::ofstream out(path);
    for (int step = 1; step <= 5; ++step)
      out << "{\"kind\":\"train\",\"step\":" << step << "}\n";
    out << "{\"kind\":\"train\",\"st";  // a crash in the middle of a line
  }
  {
    MetricsLog log(path, 3);
    log.append("{\"kind\":\"train\",\"step\":4}");
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text,
            "{\"kind\":\"train\",\"step\":1}\n{\"kind\":\"train\",\"step\":2}\n"
            "{\"kind\":\"train\",\"step\":3}\n{\"kind\":\"train\",\"step\":4}\n");
  std::remove(path.c_str());
}

TEST(OptimizerState, ShardFileRoundTripsAndRefusesAnotherModel) {
  const std::string dir = test::fresh_dir();
  auto backend = make_cpu_backend(1);
  const ModelConfig config =
      load_model_config(std::string(QWEN3_SOURCE_DIR) + "/configs/models/tiny.yaml");
  Qwen3Model model(config, *backend);
  model.init_weights(3);
  SingleRankCommunicator comm;
  AdamWOptions options;
  options.zero_stage = 0;
  ZeroAdamW first(*backend, comm, comm, model.layout(), model.params_padded(), model.grads_padded(),
                  options);
  first.load_master_from_params();
  // Moments with values that differ per element.
  std::vector<float> m(static_cast<size_t>(first.range_end() - first.range_begin()));
  for (size_t i = 0; i < m.size(); ++i)
    m[i] = 1e-3f * static_cast<float>(i % 977);
  backend->upload(m.data(), first.exp_avg());
  first.set_steps_taken(12);
  const std::string file = dir + "/shard.h5";
  write_optimizer_shard(file, first, model.layout());

  ZeroAdamW second(*backend, comm, comm, model.layout(), model.params_padded(),
                   model.grads_padded(), options);
  read_optimizer_shards({file}, second, model.layout());
  EXPECT_EQ(second.steps_taken(), 12);
  std::vector<float> a(m.size()), b(m.size());
  backend->download(second.exp_avg(), b.data());
  EXPECT_EQ(b, m);
  backend->download(first.master(), a.data());
  backend->download(second.master(), b.data());
  EXPECT_EQ(a, b);

  ModelConfig other = config;
  other.intermediate_size += 64;
  Qwen3Model other_model(other, *backend);
  ZeroAdamW third(*backend, comm, comm, other_model.layout(), other_model.params_padded(),
                  other_model.grads_padded(), options);
  try {
    read_optimizer_shards({file}, third, other_model.layout());
    FAIL() << "state of another model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to another model"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(read_optimizer_shards({}, second, model.layout()), Error);  // nothing covers it
}

}  // namespace
}  // namespace qwen3
