#pragma once
// Checkpoints of a run: `<output_dir>/checkpoints/step-NNNNNNNN/`, one directory per checkpoint,
//   config.json, model.safetensors   the weights, a Hugging Face model directory as it is
//   optimizer/shard-*.h5             the sharded AdamW state (trainer/optimizer_state.h)
//   trainer_state.yaml               stage, steps, tokens, loader position, seeds, schedule
//   manifest.yaml                    every file above with its size and CRC-32, written last
// and `checkpoints/latest`, a symbolic link to the newest one.
//
// Writes are atomic: every rank writes its files into `.tmp-step-NNNNNNNN/` and fsyncs them; rank 0
// then writes the manifest, renames the directory into place, fsyncs the parent and only then
// moves `latest`. A job killed at any point leaves the previous checkpoints as they were, and a
// directory without a verified manifest is never loaded.
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/qwen3_model.h"
#include "parallel/communicator.h"
#include "parallel/zero_adamw.h"

namespace qwen3 {

// Where the run stands, enough to continue it exactly.
struct TrainerState {
  std::string run_name;
  int64_t stage = 0;  // index into the run's stages
  std::string stage_name;
  int64_t stage_step = 0;   // optimizer steps done in this stage
  int64_t stage_steps = 0;  // the stage's budget
  bool stage_complete = false;
  int64_t global_step = 0;   // steps done over all stages
  int64_t tokens_seen = 0;   // input tokens trained on, all stages
  int64_t stage_tokens = 0;  // of which in this stage
  int64_t nonfinite_in_a_row = 0;
  int64_t skipped_steps = 0;  // over the run
  // Randomness: the weights were initialised from `seed`; the sample order is a function of
  // data_seed and the loader position below. Training draws no other random numbers (Qwen3 uses
  // no dropout), so these are the whole RNG state.
  uint64_t seed = 0, data_seed = 0;
  double rope_theta = 0;
  double last_lr = 0;
  int world_size = 0;  // when written; a resume may use another
  int zero_stage = 0;
  std::string schedule;  // the stage's LR schedule, for people
  std::string loader;    // LoaderState::to_text(); empty once the stage is complete

  std::string to_text() const;
  // `origin` names the file in errors.
  static TrainerState from_text(const std::string& text, const std::string& origin);
};

class CheckpointStore {
 public:
  // `host_comm` spans every rank of the run; rank 0 does the directory work.
  CheckpointStore(std::string output_dir, Communicator& host_comm);

  std::string checkpoints_dir() const { return output_dir_ + "/checkpoints"; }
  std::string dir_for_step(int64_t global_step) const;

  // Collective. Writes model, optimizer shards and `state` as the checkpoint of
  // state.global_step, then keeps the newest `keep_last` (and every stage's last). Returns the
  // checkpoint's directory.
  std::string save(const Qwen3Model& model, const ZeroAdamW& optimizer, const TrainerState& state,
                   int64_t keep_last);

  // Collective. The newest checkpoint that verifies, or "" when there is none. Rank 0 checks each
  // from the newest down and lists those it rejected, and why, in `rejected` (on rank 0 only).
  // Also clears temporary directories an interrupted write left behind.
  std::string find_latest_valid(std::vector<std::string>* rejected);

 private:
  std::string output_dir_;
  Communicator& comm_;
};

// Checks that every file of `dir`'s manifest is there with its size and CRC-32; throws naming the
// first file that is not.
void verify_checkpoint(const std::string& dir);
// True when `dir` holds a manifest and trainer state, i.e. is a checkpoint of this trainer rather
// than only a model directory.
bool is_trainer_checkpoint(const std::string& dir);
TrainerState read_trainer_state(const std::string& dir);
// Fills `optimizer`'s range from the checkpoint's shard files (any rank count or ZeRO stage).
void load_optimizer_state(const std::string& dir, ZeroAdamW& optimizer, const ParamLayout& layout);

// Test hook for the kill-during-write test: when the environment variable
// QWEN3_TEST_KILL_DURING_CHECKPOINT equals a checkpoint's global step, rank 0 SIGKILLs itself
// after the files are written and before the manifest, the worst moment.
constexpr const char* kKillDuringCheckpointEnv = "QWEN3_TEST_KILL_DURING_CHECKPOINT";

}  // namespace qwen3
