#include "trainer/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/model/hf_checkpoint.h"
#include "core/model/qwen3_model.h"
#include "core/util/error.h"
#include "core/util/file_io.h"
#include "dataloader/eval_loader.h"
#include "dataloader/loader.h"
#include "parallel/shard_layout.h"
#include "parallel/zero_adamw.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluate.h"
#include "trainer/metrics.h"
#include "trainer/stage_report.h"
#include "trainer/stop_signal.h"
#include "trainer/train_step.h"

namespace qwen3 {

namespace {

using Clock = std::chrono::steady_clock;

class Run {
 public:
  Run(const RunConfig& run, Backend& backend, Communicator& comm, Communicator& host_comm,
      const TrainerOptions& options)
      : run_(run),
        backend_(backend),
        comm_(comm),
        host_(host_comm),
        options_(options),
        rank_(host_comm.rank()),
        world_(host_comm.size()),
        store_(run.output_dir, host_comm) {}

  RunOutcome execute();

 private:
  void say(const std::string& line) const {
    if (rank_ == 0 && options_.log) {
      std::fputs((line + "\n").c_str(), options_.log);
      std::fflush(options_.log);
    }
  }
  void prepare_output_dir();
  // Loads the newest checkpoint or initialises the weights; returns the stage to start.
  size_t restore_or_initialise();
  // Runs stage `s` from state_ (stage_step may be > 0 after a resume). Returns false when a stop
  // signal ended it.
  AttentionChoice choose_attention(const StageConfig& stage);
  bool run_stage(size_t s);
  // The parts of run_stage, in the order it runs them. begin_stage returns whether the stage
  // starts fresh (rather than mid-way from a checkpoint); load_optimizer where its state came
  // from ("fresh", or a checkpoint directory).
  bool begin_stage(size_t s);
  void configure_model(const StageConfig& stage);
  std::string load_optimizer(const StageConfig& stage, bool fresh, ZeroAdamW& optimizer);
  std::unique_ptr<TrainLoader> make_train_loader(const StageConfig& stage, bool fresh);
  std::vector<std::unique_ptr<EvalLoader>> make_eval_loaders(const StageConfig& stage) const;
  void announce_stage(size_t s, const std::string& optimizer_from,
                      const AttentionChoice& attention) const;
  // One optimizer step from the loader's next global batch; state_ advanced past it.
  StepRecord train_one_step(const StageConfig& stage, TrainLoader& loader, ZeroAdamW& optimizer);
  // Warns of a non-finite step; throws past max_nonfinite_steps of them in a row.
  void guard_nonfinite(const StepResult& result);
  // Whether an interval (eval, checkpoint) falls on this step before the stage's last, whose
  // evaluation and checkpoint closing the stage makes anyway.
  bool due_mid_stage(const StageConfig& stage, int64_t interval) const;
  void evaluate_stage(const StageConfig& stage, std::vector<std::unique_ptr<EvalLoader>>& loaders);
  void save(const ZeroAdamW& optimizer);
  // The highest stop signal any rank received (0: none); every rank gets the same answer.
  int stop_signal_on_any_rank();
  // On a stop signal or at --stop-at-step: writes a checkpoint and returns true.
  bool stop_here(const ZeroAdamW& optimizer);

  const RunConfig& run_;
  Backend& backend_;
  Communicator& comm_;
  Communicator& host_;
  TrainerOptions options_;
  int rank_, world_;
  CheckpointStore store_;
  std::unique_ptr<Qwen3Model> model_;
  std::unique_ptr<MetricsLog> metrics_;
  TrainerState state_;
  std::string resumed_from_;  // checkpoint the run resumed from, "" when it started afresh
  std::optional<LoaderState> resume_loader_;
  // Where the next fresh stage may carry optimizer state from: the previous stage's last
  // checkpoint, or init_from when it is one of ours.
  std::string carry_source_;
  int64_t last_saved_step_ = -1;
  bool last_saved_complete_ = false;  // whether that checkpoint marks its stage complete
  // Seconds per token, smoothed over steps, for the ETA.
  double seconds_per_token_ = 0.0;
};

void Run::prepare_output_dir() {
  if (rank_ == 0) {
    std::filesystem::create_directories(run_.output_dir);
    write_file_atomic(run_.output_dir + "/run_config.yaml", dump_run_config(run_));
  }
  host_.barrier();
}

size_t Run::restore_or_initialise() {
  model_ =
      std::make_unique<Qwen3Model>(run_.model_config, backend_, ShardLayout::flat_multiple(world_));
  std::vector<std::string> rejected;
  const std::string latest = store_.find_latest_valid(&rejected);
  for (const std::string& why : rejected)
    say("warning: skipping checkpoint: " + why);

  size_t start = 0;
  if (!latest.empty()) {
    state_ = read_trainer_state(latest);
    QWEN3_CHECK(state_.stage >= 0 && size_t(state_.stage) < run_.stages.size() &&
                    run_.stages[size_t(state_.stage)].name == state_.stage_name,
                "checkpoint '{}' is in stage {} '{}', but {} has no such stage at that place: "
                "resume with the run file that wrote it, or use another output_dir",
                latest, state_.stage + 1, state_.stage_name, run_.file);
    load_hf_weights(*model_, latest);
    resumed_from_ = latest;
    last_saved_step_ = state_.global_step;
    last_saved_complete_ = state_.stage_complete;
    if (state_.stage_complete) {
      start = size_t(state_.stage) + 1;
      carry_source_ = latest;
    } else {
      start = size_t(state_.stage);
      resume_loader_ = LoaderState::from_text(state_.loader, latest + "/trainer_state.yaml");
    }
    // Optimizer state is read back mid-stage, or at a stage boundary when the next stage carries
    // it; then a different rank count means resharding.
    const bool reads_state = !state_.stage_complete || (start < run_.stages.size() &&
                                                        run_.stages[start].optimizer.carry_state);
    say(fmt::format("resuming from {} (stage '{}', step {}/{}, {} tokens seen){}", latest,
                    state_.stage_name, state_.stage_step, state_.stage_steps, state_.tokens_seen,
                    world_ != state_.world_size
                        ? fmt::format("; written by {} ranks, now {}{}", state_.world_size, world_,
                                      reads_state ? ": optimizer state resharded" : "")
                        : ""));
  } else {
    state_ = TrainerState{};
    state_.run_name = run_.name;
    state_.seed = run_.seed;
    if (!run_.init_from.empty()) {
      load_hf_weights(*model_, run_.init_from);
      if (is_trainer_checkpoint(run_.init_from)) {
        if (rank_ == 0) verify_checkpoint(run_.init_from);
        carry_source_ = run_.init_from;
      }
      say("starting from the weights in " + run_.init_from);
    } else {
      model_->init_weights(run_.seed);
      say(fmt::format("starting from initial weights (seed {})", run_.seed));
    }
  }
  if (rank_ == 0)
    metrics_ = std::make_unique<MetricsLog>(run_.output_dir + "/metrics.jsonl",
                                            latest.empty() ? 0 : state_.global_step);
  return start;
}

int Run::stop_signal_on_any_rank() {
  return static_cast<int>(
      host_.all_reduce_value(static_cast<int64_t>(stop_signal_received()), ReduceOp::Max));
}

bool Run::stop_here(const ZeroAdamW& optimizer) {
  const int signal_number = stop_signal_on_any_rank();
  if (signal_number != 0) {
    say(
        fmt::format("{} received: writing a checkpoint and stopping; run the same command to "
                    "resume",
                    signal_name(signal_number)));
  } else if (options_.stop_at_step > 0 && state_.global_step >= options_.stop_at_step) {
    say(fmt::format("step {} reached (--stop-at-step): writing a checkpoint and stopping",
                    state_.global_step));
  } else {
    return false;
  }
  save(optimizer);
  return true;
}

void Run::save(const ZeroAdamW& optimizer) {
  // Already saved: a resume from this very checkpoint, a stop right after an interval one, or a
  // stop before the first step of a stage, whose start the previous stage's last checkpoint
  // already is (overwriting it would lose that stage's end).
  if (last_saved_step_ == state_.global_step && (last_saved_complete_ == state_.stage_complete ||
                                                 (last_saved_complete_ && state_.stage_step == 0)))
    return;
  const auto t0 = Clock::now();
  const std::string dir = store_.save(*model_, optimizer, state_, run_.checkpoint.keep_last);
  last_saved_step_ = state_.global_step;
  last_saved_complete_ = state_.stage_complete;
  say(fmt::format("checkpoint {} written in {:.1f}s", dir,
                  std::chrono::duration<double>(Clock::now() - t0).count()));
}

void Run::evaluate_stage(const StageConfig& stage,
                         std::vector<std::unique_ptr<EvalLoader>>& loaders) {
  for (size_t i = 0; i < loaders.size(); ++i) {
    EvalResult r =
        evaluate(*model_, *loaders[i], host_, stage.micro_batch, 0, stage.document_attention);
    r.name = stage.eval_data[i].name;
    say(fmt::format("eval [{}] step {} | {}: loss {:.4f} | ppl {:.2f} | {} tokens", stage.name,
                    state_.stage_step, r.name, r.loss(), r.perplexity(), r.tokens));
    if (metrics_) {
      nlohmann::json j = {{"kind", "eval"},
                          {"stage", state_.stage + 1},
                          {"stage_name", stage.name},
                          {"step", state_.global_step},
                          {"stage_step", state_.stage_step},
                          {"tokens", state_.tokens_seen},
                          {"source", r.name},
                          {"loss", r.loss()},
                          {"perplexity", r.perplexity()},
                          {"eval_tokens", r.tokens}};
      metrics_->append(j.dump());
    }
  }
}

// The attention kernels for the stage's shape (its `attention` key), with a warning where the
// choice falls back from cuDNN for a reason worth one.
AttentionChoice Run::choose_attention(const StageConfig& stage) {
  const ModelConfig& m = run_.model_config;
  AttentionRequest request;
  request.kernels = stage.attention;
  request.batch = stage.micro_batch;
  request.seq = stage.seq_len;
  request.q_heads = m.num_attention_heads;
  request.kv_heads = m.num_key_value_heads;
  request.head_dim = m.head_dim;
  request.documents = stage.document_attention;
  AttentionChoice choice = backend_.choose_attention(request);
  if (choice.warn)
    say(fmt::format("warning: stage '{}' asked for attention: {}; running {}: {}", stage.name,
                    stage.attention, choice.kernels, choice.note));
  return choice;
}

// A stage from state_ (stage_step may be > 0 after a resume): set up, then one step at a time
// with the parts that follow each step, then closed (evaluation, the stage-end checkpoint).
bool Run::run_stage(size_t s) {
  const StageConfig& stage = run_.stages[s];
  const bool fresh = begin_stage(s);
  configure_model(stage);
  const AttentionChoice attention = choose_attention(stage);
  ZeroAdamW optimizer(backend_, comm_, host_, model_->layout(), model_->params_padded(),
                      model_->grads_padded(), stage.optimizer.adamw);
  const std::string optimizer_from = load_optimizer(stage, fresh, optimizer);
  const std::unique_ptr<TrainLoader> loader = make_train_loader(stage, fresh);
  std::vector<std::unique_ptr<EvalLoader>> eval_loaders = make_eval_loaders(stage);
  announce_stage(s, optimizer_from, attention);
  StageReport report(
      run_, s, world_, options_.peak_flops_per_device,
      [this](const std::string& line) { say(line); }, metrics_.get(), seconds_per_token_);

  // A signal during start-up. A stage resumed at its last step has none left to run: it is
  // closed first (evaluation, stage-end checkpoint).
  if (state_.stage_step < stage.steps && stop_here(optimizer)) return false;
  while (state_.stage_step < stage.steps) {
    const StepRecord step = train_one_step(stage, *loader, optimizer);
    report.record(state_, step);
    guard_nonfinite(step.result);
    report.progress(state_, step);
    // Before any evaluation, so that a stop is never delayed by one.
    if (stop_here(optimizer)) return false;
    if (due_mid_stage(stage, stage.eval_interval)) evaluate_stage(stage, eval_loaders);
    if (due_mid_stage(stage, stage.checkpoint_interval)) save(optimizer);
  }

  evaluate_stage(stage, eval_loaders);
  state_.stage_complete = true;
  state_.loader.clear();
  save(optimizer);
  carry_source_ = store_.dir_for_step(state_.global_step);
  say(fmt::format("stage '{}' done: {} steps, {} tokens{}", stage.name, stage.steps,
                  state_.stage_tokens, report.loss_summary()));
  return true;
}

bool Run::begin_stage(size_t s) {
  const StageConfig& stage = run_.stages[s];
  // Mid-stage resumes carry a loader position; every other start of a stage is fresh.
  const bool fresh = !resume_loader_.has_value();
  if (fresh) {
    state_.stage = int64_t(s);
    state_.stage_name = stage.name;
    state_.stage_step = 0;
    state_.stage_tokens = 0;
    state_.stage_complete = false;
  }
  state_.stage_steps = stage.steps;
  state_.data_seed = static_cast<uint64_t>(stage.data_seed);
  state_.world_size = world_;
  state_.zero_stage = stage.zero_stage;
  state_.schedule =
      fmt::format("{} lr {} min_lr {} warmup {} decay {} over {} steps",
                  schedule_kind_name(stage.optimizer.schedule.kind), stage.optimizer.schedule.lr,
                  stage.optimizer.schedule.min_lr, stage.optimizer.schedule.warmup_steps,
                  stage.optimizer.schedule.decay_steps, stage.steps);
  state_.rope_theta = stage.rope_theta > 0 ? stage.rope_theta : run_.model_config.rope_theta;
  return fresh;
}

void Run::configure_model(const StageConfig& stage) {
  model_->set_rope_theta(state_.rope_theta);
  MemoryOptions memory;
  memory.recompute_layers = stage.recompute_activations;
  memory.lm_head_chunk_tokens = stage.lm_head_chunk_tokens;
  model_->set_memory_options(memory);
  // Its micro-batch is the stage's largest (evaluations use it too, their last one smaller).
  model_->reserve_activations(stage.micro_batch, stage.seq_len);
  // bf16 gradients are the storage dtype's; on the CPU backend that is fp32 as well.
  model_->set_grad_dtype(stage.grad_dtype == "bf16" ? backend_.storage_dtype() : DType::F32);
}

std::string Run::load_optimizer(const StageConfig& stage, bool fresh, ZeroAdamW& optimizer) {
  if (!fresh) {
    load_optimizer_state(resumed_from_, optimizer, model_->layout());
    return resumed_from_;
  }
  if (stage.optimizer.carry_state && !carry_source_.empty()) {
    load_optimizer_state(carry_source_, optimizer, model_->layout());
    return carry_source_;
  }
  optimizer.load_master_from_params();
  return "fresh";
}

std::unique_ptr<TrainLoader> Run::make_train_loader(const StageConfig& stage, bool fresh) {
  LoaderConfig lc;
  for (const TrainSourceConfig& d : stage.train_data)
    lc.sources.push_back(SourceSpec{d.name, d.path, d.weight});
  lc.seq_len = stage.seq_len;
  lc.global_batch = stage.global_batch_rows();
  lc.seed = static_cast<uint64_t>(stage.data_seed);
  lc.rank = rank_;
  lc.world_size = world_;
  lc.vocab_size = run_.model_config.vocab_size;
  const std::string loader_origin = resumed_from_ + "/trainer_state.yaml";
  auto loader =
      std::make_unique<TrainLoader>(lc, fresh ? nullptr : &*resume_loader_, loader_origin);
  resume_loader_.reset();
  state_.loader = loader->state().to_text();
  return loader;
}

std::vector<std::unique_ptr<EvalLoader>> Run::make_eval_loaders(const StageConfig& stage) const {
  std::vector<std::unique_ptr<EvalLoader>> loaders;
  for (const EvalSourceConfig& d : stage.eval_data) {
    EvalLoaderConfig ec;
    ec.name = d.name;
    ec.path = d.path;
    ec.seq_len = stage.seq_len;
    ec.global_batch = stage.micro_batch * world_;
    ec.rank = rank_;
    ec.world_size = world_;
    ec.vocab_size = run_.model_config.vocab_size;
    ec.max_samples = d.max_samples;
    loaders.push_back(std::make_unique<EvalLoader>(ec));
  }
  return loaders;
}

void Run::announce_stage(size_t s, const std::string& optimizer_from,
                         const AttentionChoice& attention) const {
  const StageConfig& stage = run_.stages[s];
  say(fmt::format(
      "stage {}/{} '{}': {} steps of {} tokens ({} sequences of {}; {} per rank as {} "
      "micro-batches of {}), RoPE base {}, ZeRO {}, {} schedule, optimizer state: "
      "{}; {} gradients reduced {}; attention: {}{}",
      s + 1, run_.stages.size(), stage.name, stage.steps, stage.batch_tokens,
      stage.global_batch_rows(), stage.seq_len, stage.global_batch_rows() / world_,
      stage.accumulation_steps(world_), stage.micro_batch, state_.rope_theta, stage.zero_stage,
      schedule_kind_name(stage.optimizer.schedule.kind), optimizer_from,
      model_->grad_dtype() == DType::F32 ? "fp32" : "bf16",
      stage.overlap_grad_reduce
          ? fmt::format("in {} MiB buckets during the backward pass", stage.grad_bucket_mb)
          : std::string("after the backward pass"),
      attention.kernels, attention.note.empty() ? "" : " (" + attention.note + ")"));
}

StepRecord Run::train_one_step(const StageConfig& stage, TrainLoader& loader,
                               ZeroAdamW& optimizer) {
  const auto t0 = Clock::now();
  const LoaderBatch lb = loader.next();
  std::vector<Batch> micro;
  for (int64_t m = 0; m < stage.accumulation_steps(world_); ++m)
    micro.push_back(
        batch_rows(lb.batch, m * stage.micro_batch, stage.micro_batch, stage.document_attention));
  StepRecord step;
  step.lr = stage.optimizer.schedule.at(state_.stage_step);
  step.result = train_step(*model_, optimizer, host_, micro, step.lr);
  step.seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  ++state_.stage_step;
  ++state_.global_step;
  state_.tokens_seen += stage.batch_tokens;
  state_.stage_tokens += stage.batch_tokens;
  state_.last_lr = step.lr;
  state_.loader = loader.state().to_text();
  const StepResult& r = step.result;
  if (r.skipped) ++state_.skipped_steps;
  const bool nonfinite = !std::isfinite(r.loss) || !std::isfinite(r.grad_norm);
  state_.nonfinite_in_a_row = nonfinite ? state_.nonfinite_in_a_row + 1 : 0;
  return step;
}

void Run::guard_nonfinite(const StepResult& r) {
  if (state_.nonfinite_in_a_row == 0) return;
  say(
      fmt::format("warning: step {} had a non-finite {} ({}); update skipped ({} in a row, "
                  "{} tolerated)",
                  state_.global_step, std::isfinite(r.loss) ? "gradient norm" : "loss",
                  std::isfinite(r.loss) ? r.grad_norm : r.loss, state_.nonfinite_in_a_row,
                  run_.max_nonfinite_steps));
  if (state_.nonfinite_in_a_row <= run_.max_nonfinite_steps) return;
  const int64_t first_bad = state_.global_step - state_.nonfinite_in_a_row + 1;
  std::string newest = "none was written";
  if (last_saved_step_ >= 0)
    newest = store_.dir_for_step(last_saved_step_) +
             (last_saved_step_ >= first_bad ? ", written during these steps" : "");
  throw_error(fmt::format(
      "stopping: {} steps in a row (global steps {}..{}) had a non-finite loss or gradient "
      "norm, more than max_nonfinite_steps = {}; the newest checkpoint: {}. Lower the "
      "learning rate or look at those steps' data.",
      state_.nonfinite_in_a_row, first_bad, state_.global_step, run_.max_nonfinite_steps, newest));
}

bool Run::due_mid_stage(const StageConfig& stage, int64_t interval) const {
  return state_.stage_step < stage.steps && interval > 0 && state_.stage_step % interval == 0;
}

RunOutcome Run::execute() {
  prepare_output_dir();
  const size_t start = restore_or_initialise();
  if (start >= run_.stages.size()) {
    say(fmt::format("every stage of {} is already done (checkpoint {}); nothing to train",
                    run_.file, resumed_from_));
    return RunOutcome::Completed;
  }
  for (size_t s = start; s < run_.stages.size(); ++s)
    if (!run_stage(s)) return RunOutcome::Stopped;
  say(fmt::format("run '{}' complete: {} steps, {} tokens; final checkpoint {}", run_.name,
                  state_.global_step, state_.tokens_seen, store_.dir_for_step(state_.global_step)));
  return RunOutcome::Completed;
}

}  // namespace

RunOutcome run_training(const RunConfig& run, Backend& backend, Communicator& comm,
                        Communicator& host_comm, const TrainerOptions& options) {
  Run r(run, backend, comm, host_comm, options);
  return r.execute();
}

}  // namespace qwen3
