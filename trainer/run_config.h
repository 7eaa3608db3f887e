#pragma once
// A training run, as its YAML file describes it: a model, an output directory and an ordered list
// of stages, each with its own data, sequence length, RoPE base, budget, batch, optimizer and
// schedule. Read once at start-up, merged with `--set key.path=value` overrides, and validated
// against the number of ranks before any work starts; every error names the file (or the
// override), the line and the dotted key.
//
// Relative paths (model, init_from, output_dir, data globs) are taken from the working directory,
// as the shell would.
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/config.h"
#include "core/util/options.h"
#include "parallel/zero_adamw.h"
#include "trainer/lr_schedule.h"

namespace qwen3 {

// The run file's sections, typed. Each member that is an option gets its default from its
// initialiser here and its key, help and checks from the schema in run_config.cpp; the others are
// derived during validation.
struct TrainSourceConfig {
  std::string name;
  std::string path;  // shell glob of shard files
  double weight = 1.0;
  std::vector<std::string> files;  // what the glob matched at validation, sorted
};

struct EvalSourceConfig {
  std::string name;
  std::string path;
  int64_t max_samples = 0;  // windows per evaluation; 0: all
  std::vector<std::string> files;
};

struct OptimizerConfig {
  LrSchedule schedule;  // total_steps is the stage's step count
  AdamWOptions adamw;   // zero_stage comes from the stage
  // Continue from the previous stage's optimizer state (moments, master weights, step count),
  // or for the first stage from init_from's when it is a checkpoint of this trainer.
  bool carry_state = true;
};

struct StageConfig {
  std::string name;
  std::vector<TrainSourceConfig> train_data;
  std::vector<EvalSourceConfig> eval_data;
  int64_t seq_len = 0;
  double rope_theta = 0.0;   // 0: the model's
  int64_t tokens = 0;        // budget in tokens; or (after validation 0: the budget is steps)
  int64_t steps = 0;         // budget in optimizer steps (after validation: always set)
  int64_t batch_tokens = 0;  // global batch, all ranks: a multiple of seq_len
  int64_t micro_batch = 1;   // sequences per rank per forward/backward
  OptimizerConfig optimizer;
  int zero_stage = 1;
  std::string grad_dtype = "fp32";     // gradients accumulate and are reduced in fp32 or bf16
  bool overlap_grad_reduce = true;     // gradients reduced in buckets during the backward pass
  double grad_bucket_mb = 25.0;        // MiB per bucket (optimizer.adamw.grad_bucket_bytes)
  int64_t checkpoint_interval = 0;     // steps; 0: only at the end of the stage
  int64_t eval_interval = 0;           // steps; 0: only at the end of the stage
  bool document_attention = false;     // attention and positions restart at document boundaries
  std::string attention = "auto";      // attention kernels: auto, cudnn or flash
  int64_t data_seed = -1;              // sample order; -1 (after validation: never) the run's seed
  bool recompute_activations = false;  // re-run each layer's forward in the backward pass
  int64_t lm_head_chunk_tokens = 0;    // LM head and loss in chunks of this many tokens; 0: auto

  int64_t global_batch_rows() const { return batch_tokens / seq_len; }
  // Micro-batches per rank per step (gradient accumulation), for `world_size` ranks.
  int64_t accumulation_steps(int world_size) const {
    return global_batch_rows() / (micro_batch * world_size);
  }
};

struct CheckpointConfig {
  int64_t keep_last = 3;       // newest checkpoints kept; ends of stages are always kept
  bool save_on_signal = true;  // SIGTERM / SIGUSR1: checkpoint, then exit 0
};

struct RunConfig {
  std::string file;  // the YAML this came from
  std::string name = "run";
  std::string model;      // a model YAML, or a Hugging Face model directory
  std::string init_from;  // "" or a model/checkpoint directory whose weights start the run
  std::string output_dir;
  std::string backend = "cuda";  // "cuda" (bf16 on one GPU per rank) or "cpu" (fp32 reference)
  uint64_t seed = 1234;
  int64_t log_interval = 10;
  int64_t max_nonfinite_steps = 5;  // consecutive skipped steps tolerated before aborting
  CheckpointConfig checkpoint;
  std::vector<StageConfig> stages;

  ModelConfig model_config;  // read from `model` during validation
};

// Reads `path`, applies `overrides` ("key.path=value", lists indexed by number:
// "stages.0.optimizer.lr=1e-4"), validates everything, including that each stage's batch divides
// over `world_size` ranks, and returns the typed run. Throws qwen3::Error naming file, line and
// key.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides,
                          int world_size);
// The same from text (tests); `source_name` stands in for the file name.
RunConfig parse_run_config(const std::string& yaml_text, const std::string& source_name,
                           const std::vector<std::string>& overrides, int world_size);

// The resolved run (defaults filled in, overrides applied, budgets as steps) as YAML that
// load_run_config reads back to the same run.
std::string dump_run_config(const RunConfig& run);

// Every key of the run file, per section, with type, default and help.
std::string run_config_help();

}  // namespace qwen3
