#include "trainer/run_config.h"

#include <fmt/format.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "core/model/hf_checkpoint.h"
#include "core/model/param_layout.h"
#include "core/util/error.h"
#include "parallel/decay_rule.h"

namespace qwen3 {

namespace {

// What the YAML says, before cross-field checks turn it into the typed structs of the header.
struct RunFields {
  std::string name, model, init_from, output_dir, backend;
  int64_t seed = 0, log_interval = 0, max_nonfinite_steps = 0;
  YAML::Node checkpoint, stages;
};

struct CheckpointFields {
  int64_t keep_last = 0;
  bool save_on_signal = true;
};

struct StageFields {
  std::string name, attention, grad_dtype;
  YAML::Node train_data, eval_data, optimizer;
  int64_t seq_len = 0, tokens = 0, steps = 0, batch_tokens = 0, micro_batch = 0, zero_stage = 0,
          checkpoint_interval = 0, eval_interval = 0, data_seed = 0, lm_head_chunk_tokens = 0;
  double rope_theta = 0, grad_bucket_mb = 0;
  bool document_attention = false, recompute_activations = false, overlap_grad_reduce = true;
};

struct OptimizerFields {
  std::string schedule, decay_shape;
  double lr = 0, min_lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0, grad_clip = 0;
  int64_t warmup_steps = 0, decay_steps = 0;
  YAML::Node no_decay;
  bool carry_state = true;
};

struct TrainSourceFields {
  std::string name, path;
  double weight = 0;
};

struct EvalSourceFields {
  std::string name, path;
  int64_t max_samples = 0;
};

constexpr double kBytesPerMiB = 1 << 20;

const OptionSchema<RunFields>& run_schema() {
  static const OptionSchema<RunFields> s = [] {
    using F = RunFields;
    OptionSchema<F> o("run");
    o.optional("name", &F::name, std::string("run"), "a name for logs and metrics")
        .required("model", &F::model,
                  "model YAML (configs/models/), or a Hugging Face model directory, whose "
                  "weights then start the run unless init_from names others")
        .optional("init_from", &F::init_from, std::string(),
                  "start from these weights: a Hugging Face model directory or a checkpoint of "
                  "this trainer (whose optimizer state the first stage may carry over)")
        .required("output_dir", &F::output_dir,
                  "checkpoints/, metrics.jsonl and run_config.yaml go here; a run resumes from "
                  "the newest valid checkpoint in it")
        .optional("backend", &F::backend, std::string("cuda"),
                  "cuda: bf16 on one GPU per rank, NCCL between ranks; cpu: the fp32 reference "
                  "backend (tests, demos, machines without a GPU)")
        .optional("seed", &F::seed, int64_t{1234}, "weight initialisation and sample order")
        .optional("log_interval", &F::log_interval, int64_t{10},
                  "steps between progress lines (metrics.jsonl gets every step)")
        .optional("max_nonfinite_steps", &F::max_nonfinite_steps, int64_t{5},
                  "steps in a row with a non-finite loss or gradient norm (skipped, no update) "
                  "before the run stops with an error")
        .optional("checkpoint", &F::checkpoint, YAML::Node(), "checkpoint settings (see below)")
        .required("stages", &F::stages, "the ordered list of stages (see below)");
    return o;
  }();
  return s;
}

const OptionSchema<CheckpointFields>& checkpoint_schema() {
  static const OptionSchema<CheckpointFields> s = [] {
    using F = CheckpointFields;
    OptionSchema<F> o("checkpoint");
    o.optional("keep_last", &F::keep_last, int64_t{3},
               "newest checkpoints kept (the last checkpoint of each stage is always kept)")
        .optional("save_on_signal", &F::save_on_signal, true,
                  "on SIGTERM or SIGUSR1 (Slurm's warning before a time limit), write a "
                  "checkpoint and exit 0 so that a requeued job resumes");
    return o;
  }();
  return s;
}

const OptionSchema<StageFields>& stage_schema() {
  static const OptionSchema<StageFields> s = [] {
    using F = StageFields;
    OptionSchema<F> o("stage");
    o.required("name", &F::name, "stage name: letters, digits, '-' and '_'")
        .required("train_data", &F::train_data, "list of {name, path (glob), weight}")
        .optional("eval_data", &F::eval_data, YAML::Node(),
                  "list of {name, path (glob), max_samples}")
        .required("seq_len", &F::seq_len, "tokens per sequence, at most max_position_embeddings")
        .optional("rope_theta", &F::rope_theta, 0.0,
                  "RoPE base for this stage; 0 keeps the model's (Qwen3's long-context stage "
                  "raises it from 10,000 to 1,000,000)")
        .optional("tokens", &F::tokens, int64_t{0},
                  "budget in tokens (rounded down to whole steps); give tokens or steps")
        .optional("steps", &F::steps, int64_t{0}, "budget in optimizer steps")
        .required("batch_tokens", &F::batch_tokens,
                  "global batch in tokens, all ranks together: a multiple of seq_len x "
                  "micro_batch x ranks")
        .optional("micro_batch", &F::micro_batch, int64_t{1},
                  "sequences per rank per forward/backward; the rest is gradient accumulation")
        .optional("optimizer", &F::optimizer, YAML::Node(), "AdamW and schedule (see below)")
        .optional("zero_stage", &F::zero_stage, int64_t{1},
                  "0: optimizer state replicated; 1: sharded; 2: gradients sharded too")
        .optional("grad_dtype", &F::grad_dtype, std::string("fp32"),
                  "dtype gradients accumulate over micro-batches and are reduced across ranks "
                  "in: fp32, or bf16 (half the memory and traffic on the CUDA backend, but the "
                  "running sum is rounded to 8 bits at every micro-batch, so small contributions "
                  "are lost); the CPU backend is fp32 throughout")
        .optional("overlap_grad_reduce", &F::overlap_grad_reduce,
                  AdamWOptions{}.overlap_grad_reduce,
                  "reduce the gradients in buckets while the backward pass runs (on GPUs, on a "
                  "second CUDA stream), instead of in one collective after it; the same sums, "
                  "possibly added in another order on more than two ranks")
        .optional("grad_bucket_mb", &F::grad_bucket_mb,
                  double(AdamWOptions{}.grad_bucket_bytes) / kBytesPerMiB,
                  "with overlap_grad_reduce: a bucket goes out once this many MiB of gradients "
                  "are final (25: one Qwen3-0.6B layer); buckets end at layers")
        .optional("checkpoint_interval", &F::checkpoint_interval, int64_t{0},
                  "steps between checkpoints; 0: only at the end of the stage")
        .optional("eval_interval", &F::eval_interval, int64_t{0},
                  "steps between evaluations; 0: only at the end of the stage")
        .optional("document_attention", &F::document_attention, false,
                  "attention and positions restart at every document boundary in a sequence")
        .optional("attention", &F::attention, std::string("auto"),
                  "attention kernels on the CUDA backend: auto (cuDNN's fused attention where it "
                  "is installed and takes the stage's shape, else flash), cudnn (the same, with a "
                  "warning when it falls back) or flash (the project's own tensor-core kernels); "
                  "the stage banner names the choice")
        .optional("data_seed", &F::data_seed, int64_t{-1},
                  "seed of the sample order; -1: the run's seed")
        .optional("recompute_activations", &F::recompute_activations, false,
                  "keep only each layer's input and re-run the layer in the backward pass: "
                  "about a third more compute for a fraction of the activation memory (long "
                  "sequences)")
        .optional("lm_head_chunk_tokens", &F::lm_head_chunk_tokens, int64_t{0},
                  "tokens the LM head and loss process at once, so that [tokens, vocab] logits "
                  "are never held whole; 0: automatic (at most 2^28 logits at a time)");
    return o;
  }();
  return s;
}

const OptionSchema<OptimizerFields>& optimizer_schema() {
  static const OptionSchema<OptimizerFields> s = [] {
    using F = OptimizerFields;
    const AdamWOptions d;
    const LrSchedule ds;
    OptionSchema<F> o("optimizer");
    o.optional("lr", &F::lr, ds.lr, "peak learning rate")
        .optional("min_lr", &F::min_lr, ds.min_lr, "learning rate at the end of the decay")
        .optional("schedule", &F::schedule, std::string("cosine"),
                  "constant, cosine or wsd (warmup-stable-decay), each after a linear warmup")
        .optional("warmup_steps", &F::warmup_steps, int64_t{0}, "linear warmup length")
        .optional("decay_steps", &F::decay_steps, int64_t{0}, "wsd: length of the final decay")
        .optional("decay_shape", &F::decay_shape, std::string("1-sqrt"), "wsd: linear or 1-sqrt")
        .optional("beta1", &F::beta1, d.beta1, "AdamW beta1")
        .optional("beta2", &F::beta2, d.beta2, "AdamW beta2")
        .optional("eps", &F::eps, d.eps, "AdamW epsilon")
        .optional("weight_decay", &F::weight_decay, d.weight_decay, "decoupled weight decay")
        .optional("grad_clip", &F::grad_clip, d.grad_clip,
                  "global gradient-norm clipping threshold; 0: off")
        .optional("no_decay", &F::no_decay, YAML::Node(),
                  "parameters without weight decay: kinds (norm, embedding, linear) or name "
                  "globs; default [norm, embedding]")
        .optional("carry_state", &F::carry_state, true,
                  "continue the previous stage's optimizer state instead of starting afresh");
    return o;
  }();
  return s;
}

const OptionSchema<TrainSourceFields>& train_source_schema() {
  static const OptionSchema<TrainSourceFields> s = [] {
    using F = TrainSourceFields;
    OptionSchema<F> o("train data source");
    o.required("name", &F::name, "source name, unique in the stage")
        .required("path", &F::path, "shell glob of HDF5 shards (qwen3-prep's train-*.h5)")
        .optional("weight", &F::weight, 1.0, "share of the samples, relative to the others");
    return o;
  }();
  return s;
}

const OptionSchema<EvalSourceFields>& eval_source_schema() {
  static const OptionSchema<EvalSourceFields> s = [] {
    using F = EvalSourceFields;
    OptionSchema<F> o("eval data source");
    o.required("name", &F::name, "source name, unique in the stage")
        .required("path", &F::path, "shell glob of HDF5 shards (qwen3-prep's val-*.h5)")
        .optional("max_samples", &F::max_samples, int64_t{0},
                  "windows per evaluation, the same ones each time; 0: all");
    return o;
  }();
  return s;
}

// Reports a problem with `key` of a mapping read with `at`, at the key's line if it was written
// and at the mapping otherwise.
struct Blame {
  const KeyLocations& at;
  SourceLocation mapping;
  std::string prefix;
  [[noreturn]] void operator()(const std::string& key, const std::string& message) const {
    auto it = at.find(key);
    throw_config_error(it != at.end() ? it->second : mapping, prefix + key, message);
  }
};

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Sorted regular files matching `pattern`; empty when none.
std::vector<std::string> match_files(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t matches{};
  if (glob(pattern.c_str(), 0, nullptr, &matches) == 0)
    for (size_t i = 0; i < matches.gl_pathc; ++i)
      if (is_file(matches.gl_pathv[i])) out.emplace_back(matches.gl_pathv[i]);
  globfree(&matches);
  std::sort(out.begin(), out.end());
  return out;
}

// Paths may name environment variables, ${NAME}, so that one run file serves clusters whose data
// live in different places (`path: ${QWEN3_DATA}/fineweb-edu/train-*.h5`).
std::string expand_environment(const std::string& text, const Blame& fail, const std::string& key) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    const size_t close = text.find('}', i + 2);
    if (close == std::string::npos) fail(key, "'" + text + "' has a '${' without its '}'");
    const std::string name = text.substr(i + 2, close - i - 2);
    const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
    if (!value)
      fail(key, "'" + text + "' uses the environment variable " + name + ", which is not set");
    out += value;
    i = close + 1;
  }
  return out;
}

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

void check_list(const YAML::Node& node, const std::string& file, const std::string& path,
                const OverrideLocations& overrides) {
  if (node.IsSequence() && node.size() > 0) return;
  SourceLocation where = location_of(node, file);
  auto it = overrides.find(path);
  if (it != overrides.end()) where = SourceLocation{it->second, 0, 0};
  throw_config_error(where, path, "must be a non-empty list");
}

OptimizerConfig read_optimizer(const YAML::Node& node, const std::string& file,
                               const std::string& prefix, const OverrideLocations& overrides,
                               int64_t stage_steps, const ParamLayout& layout) {
  OptimizerFields f;
  const YAML::Node mapping =
      node.IsDefined() && !node.IsNull() ? node : YAML::Node(YAML::NodeType::Map);
  const KeyLocations at = optimizer_schema().read(mapping, file, f, prefix, &overrides);
  const Blame fail{at, location_of(mapping, file), prefix};

  OptimizerConfig out;
  LrSchedule& s = out.schedule;
  try {
    s.kind = parse_schedule_kind(f.schedule);
  } catch (const Error& e) {
    fail("schedule", without_rank_prefix(e.what()));
  }
  try {
    s.decay_shape = parse_decay_shape(f.decay_shape);
  } catch (const Error& e) {
    fail("decay_shape", without_rank_prefix(e.what()));
  }
  s.lr = f.lr;
  s.min_lr = f.min_lr;
  s.warmup_steps = f.warmup_steps;
  s.decay_steps = f.decay_steps;
  s.total_steps = stage_steps;
  if (!(f.lr > 0) || !std::isfinite(f.lr))
    fail("lr", fmt::format("must be positive, got {}", f.lr));
  if (!(f.min_lr >= 0 && f.min_lr <= f.lr))
    fail("min_lr", fmt::format("must lie in [0, lr = {}], got {}", f.lr, f.min_lr));
  if (f.warmup_steps < 0 || f.warmup_steps > stage_steps)
    fail("warmup_steps",
         fmt::format("{} must lie in [0, the stage's {} steps]", f.warmup_steps, stage_steps));
  if (s.kind == ScheduleKind::WarmupStableDecay &&
      (f.decay_steps < 1 || f.decay_steps > stage_steps - f.warmup_steps))
    fail("decay_steps", fmt::format("{} must lie in [1, steps - warmup_steps = {}] for wsd",
                                    f.decay_steps, stage_steps - f.warmup_steps));
  s.validate(prefix.substr(0, prefix.size() - 1));

  AdamWOptions& a = out.adamw;
  a.beta1 = f.beta1;
  a.beta2 = f.beta2;
  a.eps = f.eps;
  a.weight_decay = f.weight_decay;
  a.grad_clip = f.grad_clip;
  if (!(f.beta1 >= 0 && f.beta1 < 1))
    fail("beta1", fmt::format("must lie in [0, 1), got {}", f.beta1));
  if (!(f.beta2 >= 0 && f.beta2 < 1))
    fail("beta2", fmt::format("must lie in [0, 1), got {}", f.beta2));
  if (!(f.eps > 0)) fail("eps", fmt::format("must be positive, got {}", f.eps));
  if (!(f.weight_decay >= 0))
    fail("weight_decay", fmt::format("must not be negative, got {}", f.weight_decay));
  if (!(f.grad_clip >= 0))
    fail("grad_clip", fmt::format("must not be negative, got {}", f.grad_clip));
  if (f.no_decay.IsDefined() && !f.no_decay.IsNull()) {
    if (!f.no_decay.IsSequence()) fail("no_decay", "must be a list of kinds or name globs");
    a.decay.no_decay.clear();
    for (const auto& item : f.no_decay) {
      if (!item.IsScalar()) fail("no_decay", "entries must be strings");
      a.decay.no_decay.push_back(item.Scalar());
    }
    try {
      validate_decay_rule(a.decay, layout);
    } catch (const Error& e) {
      fail("no_decay", without_rank_prefix(e.what()));
    }
  }
  out.carry_state = f.carry_state;
  return out;
}

StageConfig read_stage(const YAML::Node& node, const std::string& file, int index,
                       const OverrideLocations& overrides, const RunFields& run,
                       const ModelConfig& model, const ParamLayout& layout, int world_size) {
  const std::string prefix = fmt::format("stages.{}.", index);
  StageFields f;
  const KeyLocations at = stage_schema().read(node, file, f, prefix, &overrides);
  const Blame fail{at, location_of(node, file), prefix};

  StageConfig st;
  st.name = f.name;
  if (!valid_name(f.name))
    fail("name", "'" + f.name + "' must be letters, digits, '.', '-' or '_' (it names files)");
  st.seq_len = f.seq_len;
  if (f.seq_len < 1) fail("seq_len", fmt::format("must be positive, got {}", f.seq_len));
  if (f.seq_len > model.max_position_embeddings)
    fail("seq_len", fmt::format("{} is above the model's max_position_embeddings {}", f.seq_len,
                                model.max_position_embeddings));
  st.rope_theta = f.rope_theta;
  if (f.rope_theta != 0 && !(f.rope_theta > 1))
    fail("rope_theta", fmt::format("must be 0 (the model's) or above 1, got {}", f.rope_theta));
  st.micro_batch = f.micro_batch;
  if (f.micro_batch < 1)
    fail("micro_batch", fmt::format("must be positive, got {}", f.micro_batch));
  st.batch_tokens = f.batch_tokens;
  const int64_t rows_unit = f.seq_len * f.micro_batch * world_size;
  if (f.batch_tokens < 1 || f.batch_tokens % rows_unit != 0)
    fail("batch_tokens",
         fmt::format("{} is not a multiple of seq_len x micro_batch x ranks = {} x {} x {} = {}; "
                     "the nearest that are: {} or {}",
                     f.batch_tokens, f.seq_len, f.micro_batch, world_size, rows_unit,
                     std::max<int64_t>(1, f.batch_tokens / rows_unit) * rows_unit,
                     (f.batch_tokens / rows_unit + 1) * rows_unit));
  if ((f.tokens > 0) == (f.steps > 0))
    fail(f.tokens > 0 ? "steps" : "tokens",
         fmt::format("give exactly one positive budget, tokens or steps (got tokens {}, steps {})",
                     f.tokens, f.steps));
  if (f.tokens < 0 || f.steps < 0) fail(f.tokens < 0 ? "tokens" : "steps", "must not be negative");
  st.tokens = f.tokens;
  st.steps = f.steps > 0 ? f.steps : f.tokens / f.batch_tokens;
  if (st.steps < 1)
    fail("tokens",
         fmt::format("{} is less than one global batch ({} tokens)", f.tokens, f.batch_tokens));
  st.zero_stage = static_cast<int>(f.zero_stage);
  if (f.zero_stage < 0 || f.zero_stage > 2)
    fail("zero_stage", fmt::format("must be 0, 1 or 2, got {}", f.zero_stage));
  st.grad_dtype = f.grad_dtype;
  if (f.grad_dtype != "fp32" && f.grad_dtype != "bf16")
    fail("grad_dtype", fmt::format("'{}' is not one of fp32, bf16", f.grad_dtype));
  st.overlap_grad_reduce = f.overlap_grad_reduce;
  st.grad_bucket_mb = f.grad_bucket_mb;
  // At least one byte; at most 1 TiB, which is already more than any model's gradient.
  constexpr double kMaxBucketMiB = 1 << 20;
  if (!(f.grad_bucket_mb * kBytesPerMiB >= 1) || !(f.grad_bucket_mb <= kMaxBucketMiB))
    fail("grad_bucket_mb", fmt::format("must lie between one byte (1/1048576) and {} MiB, got {}",
                                       kMaxBucketMiB, f.grad_bucket_mb));
  st.checkpoint_interval = f.checkpoint_interval;
  if (f.checkpoint_interval < 0) fail("checkpoint_interval", "must not be negative");
  st.eval_interval = f.eval_interval;
  if (f.eval_interval < 0) fail("eval_interval", "must not be negative");
  st.document_attention = f.document_attention;
  st.attention = f.attention;
  if (f.attention != "auto" && f.attention != "cudnn" && f.attention != "flash")
    fail("attention", fmt::format("'{}' is not one of auto, cudnn, flash", f.attention));
  st.recompute_activations = f.recompute_activations;
  st.lm_head_chunk_tokens = f.lm_head_chunk_tokens;
  if (f.lm_head_chunk_tokens < 0)
    fail("lm_head_chunk_tokens", "must not be negative (0: automatic)");
  st.data_seed =
      f.data_seed >= 0 ? static_cast<uint64_t>(f.data_seed) : static_cast<uint64_t>(run.seed);

  check_list(f.train_data, file, prefix + "train_data", overrides);
  std::set<std::string> names;
  for (size_t i = 0; i < f.train_data.size(); ++i) {
    const std::string sp = fmt::format("{}train_data.{}.", prefix, i);
    TrainSourceFields sf;
    const KeyLocations sat = train_source_schema().read(f.train_data[i], file, sf, sp, &overrides);
    const Blame sfail{sat, location_of(f.train_data[i], file), sp};
    if (!valid_name(sf.name))
      sfail("name", "'" + sf.name + "' must be letters, digits, '.', '-' or '_'");
    if (!names.insert(sf.name).second) sfail("name", "'" + sf.name + "' appears twice");
    if (!(sf.weight > 0) || !std::isfinite(sf.weight))
      sfail("weight", fmt::format("must be positive, got {}", sf.weight));
    const std::string path = expand_environment(sf.path, sfail, "path");
    TrainSourceConfig source{sf.name, path, sf.weight, match_files(path)};
    if (source.files.empty()) sfail("path", "'" + path + "' matches no files");
    st.train_data.push_back(std::move(source));
  }
  names.clear();
  if (f.eval_data.IsDefined() && !f.eval_data.IsNull()) {
    check_list(f.eval_data, file, prefix + "eval_data", overrides);
    for (size_t i = 0; i < f.eval_data.size(); ++i) {
      const std::string sp = fmt::format("{}eval_data.{}.", prefix, i);
      EvalSourceFields sf;
      const KeyLocations sat = eval_source_schema().read(f.eval_data[i], file, sf, sp, &overrides);
      const Blame sfail{sat, location_of(f.eval_data[i], file), sp};
      if (!valid_name(sf.name))
        sfail("name", "'" + sf.name + "' must be letters, digits, '.', '-' or '_'");
      if (!names.insert(sf.name).second) sfail("name", "'" + sf.name + "' appears twice");
      if (sf.max_samples < 0) sfail("max_samples", "must not be negative");
      const std::string path = expand_environment(sf.path, sfail, "path");
      EvalSourceConfig source{sf.name, path, sf.max_samples, match_files(path)};
      if (source.files.empty()) sfail("path", "'" + path + "' matches no files");
      st.eval_data.push_back(std::move(source));
    }
  }
  st.optimizer =
      read_optimizer(f.optimizer, file, prefix + "optimizer.", overrides, st.steps, layout);
  st.optimizer.adamw.zero_stage = st.zero_stage;
  st.optimizer.adamw.overlap_grad_reduce = st.overlap_grad_reduce;
  st.optimizer.adamw.grad_bucket_bytes =
      static_cast<int64_t>(std::llround(st.grad_bucket_mb * kBytesPerMiB));
  return st;
}

// Applies "a.b.0.c=value" to the document, creating missing mapping keys (the schema then judges
// them) and refusing list indices out of range. Returns the override locations by path.
OverrideLocations apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides) {
  OverrideLocations out;
  for (const std::string& text : overrides) {
    const size_t eq = text.find('=');
    const std::string blame = "--set " + text;
    QWEN3_CHECK(eq != std::string::npos && eq > 0,
                "{}: expected KEY.PATH=VALUE, e.g. stages.0.optimizer.lr=1e-4", blame);
    const std::string path = text.substr(0, eq);
    std::vector<std::string> parts;
    for (size_t begin = 0;;) {
      const size_t dot = path.find('.', begin);
      parts.push_back(path.substr(begin, dot - begin));
      if (dot == std::string::npos) break;
      begin = dot + 1;
    }
    for (const std::string& part : parts)
      QWEN3_CHECK(!part.empty(), "{}: empty component in key path '{}'", blame, path);
    YAML::Node value = load_yaml_text(text.substr(eq + 1), blame);
    YAML::Node node = root;
    std::string parent;  // the dotted path walked so far
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string& part = parts[i];
      const bool last = i + 1 == parts.size();
      if (node.IsSequence()) {
        char* end = nullptr;
        const long index = std::strtol(part.c_str(), &end, 10);
        QWEN3_CHECK(*end == '\0' && index >= 0 && size_t(index) < node.size(),
                    "{}: '{}' is a list of {} entries; '{}' is not an index into it", blame, parent,
                    node.size(), part);
        if (last) {
          node[size_t(index)] = value;
        } else {
          YAML::Node child = node[size_t(index)];
          node.reset(child);
        }
      } else {
        QWEN3_CHECK(node.IsMap() || node.IsNull(), "{}: '{}' is a single value; it has no key '{}'",
                    blame, parent, part);
        if (last) {
          node[part] = value;
        } else {
          if (!node[part].IsDefined() || node[part].IsNull())
            node[part] = YAML::Node(YAML::NodeType::Map);
          YAML::Node child = node[part];
          node.reset(child);
        }
      }
      parent += (parent.empty() ? "" : ".") + part;
    }
    out[path] = blame;
  }
  return out;
}

RunConfig parse_document(YAML::Node root, const std::string& file,
                         const std::vector<std::string>& overrides, int world_size) {
  QWEN3_CHECK(world_size >= 1, "a run needs at least one rank, got {}", world_size);
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  const OverrideLocations over = apply_overrides(root, overrides);
  RunFields f;
  const KeyLocations at = run_schema().read(root, file, f, "", &over);
  const Blame fail{at, location_of(root, file), ""};

  RunConfig run;
  run.file = file;
  run.name = f.name;
  if (!valid_name(f.name))
    fail("name", "'" + f.name + "' must be letters, digits, '.', '-' or '_'");
  run.model = expand_environment(f.model, fail, "model");
  try {
    run.model_config =
        is_directory(run.model) ? load_hf_config(run.model) : load_model_config(run.model);
  } catch (const Error& e) {
    fail("model", fmt::format("'{}' is not a usable model YAML or Hugging Face directory: {}",
                              run.model, without_rank_prefix(e.what())));
  }
  run.init_from = expand_environment(f.init_from, fail, "init_from");
  // A model given as a Hugging Face directory is also where the weights start, unless init_from
  // says otherwise.
  if (run.init_from.empty() && is_directory(run.model)) run.init_from = run.model;
  if (!run.init_from.empty() && !is_hf_model_dir(run.init_from))
    fail("init_from", "'" + run.init_from +
                          "' is not a model directory (config.json with model.safetensors); "
                          "for a later stage, run the earlier one first");
  run.output_dir = expand_environment(f.output_dir, fail, "output_dir");
  if (run.output_dir.empty()) fail("output_dir", "must not be empty");
  if (f.backend != "cuda" && f.backend != "cpu")
    fail("backend", "must be cuda or cpu, got '" + f.backend + "'");
  run.backend = f.backend;
  if (f.seed < 0) fail("seed", "must not be negative");
  run.seed = static_cast<uint64_t>(f.seed);
  run.log_interval = f.log_interval;
  if (f.log_interval < 1) fail("log_interval", "must be at least 1");
  run.max_nonfinite_steps = f.max_nonfinite_steps;
  if (f.max_nonfinite_steps < 0) fail("max_nonfinite_steps", "must not be negative");

  CheckpointFields cf;
  const YAML::Node ck = f.checkpoint.IsDefined() && !f.checkpoint.IsNull()
                            ? f.checkpoint
                            : YAML::Node(YAML::NodeType::Map);
  const KeyLocations cat = checkpoint_schema().read(ck, file, cf, "checkpoint.", &over);
  if (cf.keep_last < 1)
    Blame{cat, location_of(ck, file), "checkpoint."}("keep_last", "must be at least 1");
  run.checkpoint.keep_last = cf.keep_last;
  run.checkpoint.save_on_signal = cf.save_on_signal;

  check_list(f.stages, file, "stages", over);
  const ParamLayout layout(run.model_config);
  std::set<std::string> names;
  for (size_t i = 0; i < f.stages.size(); ++i) {
    StageConfig st = read_stage(f.stages[i], file, static_cast<int>(i), over, f, run.model_config,
                                layout, world_size);
    if (!names.insert(st.name).second)
      throw_config_error(location_of(f.stages[i], file), fmt::format("stages.{}.name", i),
                         "'" + st.name + "' is the name of an earlier stage too");
    run.stages.push_back(std::move(st));
  }
  return run;
}

}  // namespace

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides,
                          int world_size) {
  return parse_document(load_yaml_file(path), path, overrides, world_size);
}

RunConfig parse_run_config(const std::string& yaml_text, const std::string& source_name,
                           const std::vector<std::string>& overrides, int world_size) {
  return parse_document(load_yaml_text(yaml_text, source_name), source_name, overrides, world_size);
}

std::string dump_run_config(const RunConfig& run) {
  // Shortest text that reads back to the same double: 0.0003, not 0.00029999999999999997.
  auto number = [](double v) { return fmt::format("{}", v); };
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << run.name;
  e << YAML::Key << "model" << YAML::Value << run.model;
  e << YAML::Key << "init_from" << YAML::Value << run.init_from;
  e << YAML::Key << "output_dir" << YAML::Value << run.output_dir;
  e << YAML::Key << "backend" << YAML::Value << run.backend;
  e << YAML::Key << "seed" << YAML::Value << run.seed;
  e << YAML::Key << "log_interval" << YAML::Value << run.log_interval;
  e << YAML::Key << "max_nonfinite_steps" << YAML::Value << run.max_nonfinite_steps;
  e << YAML::Key << "checkpoint" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "keep_last" << YAML::Value << run.checkpoint.keep_last;
  e << YAML::Key << "save_on_signal" << YAML::Value << run.checkpoint.save_on_signal;
  e << YAML::EndMap;
  e << YAML::Key << "stages" << YAML::Value << YAML::BeginSeq;
  for (const StageConfig& st : run.stages) {
    const LrSchedule& s = st.optimizer.schedule;
    const AdamWOptions& a = st.optimizer.adamw;
    e << YAML::BeginMap;
    e << YAML::Key << "name" << YAML::Value << st.name;
    e << YAML::Key << "train_data" << YAML::Value << YAML::BeginSeq;
    for (const TrainSourceConfig& d : st.train_data)
      e << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << d.name << YAML::Key
        << "path" << YAML::Value << d.path << YAML::Key << "weight" << YAML::Value
        << number(d.weight) << YAML::EndMap;
    e << YAML::EndSeq;
    if (!st.eval_data.empty()) {
      e << YAML::Key << "eval_data" << YAML::Value << YAML::BeginSeq;
      for (const EvalSourceConfig& d : st.eval_data)
        e << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << d.name
          << YAML::Key << "path" << YAML::Value << d.path << YAML::Key << "max_samples"
          << YAML::Value << d.max_samples << YAML::EndMap;
      e << YAML::EndSeq;
    }
    e << YAML::Key << "seq_len" << YAML::Value << st.seq_len;
    e << YAML::Key << "rope_theta" << YAML::Value << number(st.rope_theta);
    e << YAML::Key << "steps" << YAML::Value << st.steps;
    e << YAML::Key << "batch_tokens" << YAML::Value << st.batch_tokens;
    e << YAML::Key << "micro_batch" << YAML::Value << st.micro_batch;
    e << YAML::Key << "zero_stage" << YAML::Value << st.zero_stage;
    e << YAML::Key << "grad_dtype" << YAML::Value << st.grad_dtype;
    e << YAML::Key << "overlap_grad_reduce" << YAML::Value << st.overlap_grad_reduce;
    e << YAML::Key << "grad_bucket_mb" << YAML::Value << number(st.grad_bucket_mb);
    e << YAML::Key << "checkpoint_interval" << YAML::Value << st.checkpoint_interval;
    e << YAML::Key << "eval_interval" << YAML::Value << st.eval_interval;
    e << YAML::Key << "document_attention" << YAML::Value << st.document_attention;
    e << YAML::Key << "attention" << YAML::Value << st.attention;
    e << YAML::Key << "data_seed" << YAML::Value << st.data_seed;
    e << YAML::Key << "recompute_activations" << YAML::Value << st.recompute_activations;
    e << YAML::Key << "lm_head_chunk_tokens" << YAML::Value << st.lm_head_chunk_tokens;
    e << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "lr" << YAML::Value << number(s.lr);
    e << YAML::Key << "min_lr" << YAML::Value << number(s.min_lr);
    e << YAML::Key << "schedule" << YAML::Value << schedule_kind_name(s.kind);
    e << YAML::Key << "warmup_steps" << YAML::Value << s.warmup_steps;
    e << YAML::Key << "decay_steps" << YAML::Value << s.decay_steps;
    e << YAML::Key << "decay_shape" << YAML::Value << decay_shape_name(s.decay_shape);
    e << YAML::Key << "beta1" << YAML::Value << number(a.beta1);
    e << YAML::Key << "beta2" << YAML::Value << number(a.beta2);
    e << YAML::Key << "eps" << YAML::Value << number(a.eps);
    e << YAML::Key << "weight_decay" << YAML::Value << number(a.weight_decay);
    e << YAML::Key << "grad_clip" << YAML::Value << number(a.grad_clip);
    e << YAML::Key << "no_decay" << YAML::Value << YAML::Flow << a.decay.no_decay;
    e << YAML::Key << "carry_state" << YAML::Value << st.optimizer.carry_state;
    e << YAML::EndMap;
    e << YAML::EndMap;
  }
  e << YAML::EndSeq;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

std::string run_config_help() {
  return "Run file (top level):\n" + run_schema().help() + "\ncheckpoint:\n" +
         checkpoint_schema().help() + "\nstages[i]:\n" + stage_schema().help() +
         "\nstages[i].train_data[j]:\n" + train_source_schema().help() +
         "\nstages[i].eval_data[j]:\n" + eval_source_schema().help() + "\nstages[i].optimizer:\n" +
         optimizer_schema().help();
}

}  // namespace qwen3
