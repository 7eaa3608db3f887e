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

constexpr double kBytesPerMiB = 1 << 20;

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

// Names end up in file names and metric lines.
std::function<std::string(const std::string&)> must_be_a_name(const std::string& note = "") {
  return [note](const std::string& v) {
    return valid_name(v) ? std::string()
                         : "'" + v + "' must be letters, digits, '.', '-' or '_'" + note;
  };
}

template <class V>
std::function<std::string(const V&)> must_not_be_negative_got() {
  return [](const V& v) {
    return v >= 0 ? std::string() : "must not be negative, got " + format_value(v);
  };
}

std::function<std::string(const double&)> must_lie_in_unit_interval() {
  return [](const double& v) {
    return v >= 0 && v < 1 ? std::string() : "must lie in [0, 1), got " + format_value(v);
  };
}

const OptionSchema<TrainSourceConfig>& train_source_schema() {
  static const OptionSchema<TrainSourceConfig> s = [] {
    using C = TrainSourceConfig;
    OptionSchema<C> o("train data source");
    o.required("name", &C::name, "source name, unique in the stage")
        .check(must_be_a_name())
        .required("path", &C::path, "shell glob of HDF5 shards (qwen3-prep's train-*.h5)")
        .optional("weight", &C::weight, "share of the samples, relative to the others")
        .check(must_be_positive<double>());
    return o;
  }();
  return s;
}

const OptionSchema<EvalSourceConfig>& eval_source_schema() {
  static const OptionSchema<EvalSourceConfig> s = [] {
    using C = EvalSourceConfig;
    OptionSchema<C> o("eval data source");
    o.required("name", &C::name, "source name, unique in the stage")
        .check(must_be_a_name())
        .required("path", &C::path, "shell glob of HDF5 shards (qwen3-prep's val-*.h5)")
        .optional("max_samples", &C::max_samples,
                  "windows per evaluation, the same ones each time; 0: all")
        .check(must_not_be_negative<int64_t>());
    return o;
  }();
  return s;
}

const OptionSchema<OptimizerConfig>& optimizer_schema() {
  static const OptionSchema<OptimizerConfig> s = [] {
    using C = OptimizerConfig;
    OptionSchema<C> o("optimizer");
    o.optional_at(
         "lr", [](C& c) -> double& { return c.schedule.lr; }, "peak learning rate")
        .check(must_be_positive<double>())
        .optional_at(
            "min_lr", [](C& c) -> double& { return c.schedule.min_lr; },
            "learning rate at the end of the decay")
        .named(
            "schedule", [](C& c) -> ScheduleKind& { return c.schedule.kind; }, parse_schedule_kind,
            schedule_kind_name,
            "constant, cosine or wsd (warmup-stable-decay), each after a linear warmup")
        .optional_at(
            "warmup_steps", [](C& c) -> int64_t& { return c.schedule.warmup_steps; },
            "linear warmup length")
        .optional_at(
            "decay_steps", [](C& c) -> int64_t& { return c.schedule.decay_steps; },
            "wsd: length of the final decay")
        .named(
            "decay_shape", [](C& c) -> DecayShape& { return c.schedule.decay_shape; },
            parse_decay_shape, decay_shape_name, "wsd: linear or 1-sqrt")
        .optional_at(
            "beta1", [](C& c) -> double& { return c.adamw.beta1; }, "AdamW beta1")
        .check(must_lie_in_unit_interval())
        .optional_at(
            "beta2", [](C& c) -> double& { return c.adamw.beta2; }, "AdamW beta2")
        .check(must_lie_in_unit_interval())
        .optional_at(
            "eps", [](C& c) -> double& { return c.adamw.eps; }, "AdamW epsilon")
        .check(must_be_positive<double>())
        .optional_at(
            "weight_decay", [](C& c) -> double& { return c.adamw.weight_decay; },
            "decoupled weight decay")
        .check(must_not_be_negative_got<double>())
        .optional_at(
            "grad_clip", [](C& c) -> double& { return c.adamw.grad_clip; },
            "global gradient-norm clipping threshold; 0: off")
        .check(must_not_be_negative_got<double>())
        .optional_at(
            "no_decay", [](C& c) -> std::vector<std::string>& { return c.adamw.decay.no_decay; },
            "parameters without weight decay: kinds (norm, embedding, linear) or name "
            "globs")
        .optional("carry_state", &C::carry_state,
                  "continue the previous stage's optimizer state instead of starting afresh");
    return o;
  }();
  return s;
}

const OptionSchema<StageConfig>& stage_schema() {
  static const OptionSchema<StageConfig> s = [] {
    using C = StageConfig;
    OptionSchema<C> o("stage");
    o.required("name", &C::name, "stage name: letters, digits, '-' and '_'")
        .check(must_be_a_name(" (it names files)"))
        .list("train_data", &C::train_data, train_source_schema(), true,
              "list of {name, path (glob), weight}")
        .list("eval_data", &C::eval_data, eval_source_schema(), false,
              "list of {name, path (glob), max_samples}")
        .required("seq_len", &C::seq_len, "tokens per sequence, at most max_position_embeddings")
        .check(must_be_positive<int64_t>())
        .optional("rope_theta", &C::rope_theta,
                  "RoPE base for this stage; 0 keeps the model's (Qwen3's long-context stage "
                  "raises it from 10,000 to 1,000,000)")
        .check<double>([](const double& v) {
          return v == 0 || v > 1 ? std::string()
                                 : "must be 0 (the model's) or above 1, got " + format_value(v);
        })
        .optional("tokens", &C::tokens,
                  "budget in tokens (rounded down to whole steps); give tokens or steps")
        .optional("steps", &C::steps, "budget in optimizer steps")
        .required("batch_tokens", &C::batch_tokens,
                  "global batch in tokens, all ranks together: a multiple of seq_len x "
                  "micro_batch x ranks")
        .optional("micro_batch", &C::micro_batch,
                  "sequences per rank per forward/backward; the rest is gradient accumulation")
        .check(must_be_positive<int64_t>())
        .section("optimizer", &C::optimizer, optimizer_schema(), "AdamW and schedule (see below)")
        .optional("zero_stage", &C::zero_stage,
                  "0: optimizer state replicated; 1: sharded; 2: gradients sharded too")
        .check<int>([](const int& v) {
          return v >= 0 && v <= 2 ? std::string() : "must be 0, 1 or 2, got " + format_value(v);
        })
        .optional("grad_dtype", &C::grad_dtype,
                  "dtype gradients accumulate over micro-batches and are reduced across ranks "
                  "in: fp32, or bf16 (half the memory and traffic on the CUDA backend, but the "
                  "running sum is rounded to 8 bits at every micro-batch, so small contributions "
                  "are lost); the CPU backend is fp32 throughout")
        .check(must_be_one_of({"fp32", "bf16"}))
        .optional("overlap_grad_reduce", &C::overlap_grad_reduce,
                  "reduce the gradients in buckets while the backward pass runs (on GPUs, on a "
                  "second CUDA stream), instead of in one collective after it; the same sums, "
                  "possibly added in another order on more than two ranks")
        .optional("grad_bucket_mb", &C::grad_bucket_mb,
                  "with overlap_grad_reduce: a bucket goes out once this many MiB of gradients "
                  "are final (25: one Qwen3-0.6B layer); buckets end at layers")
        .check<double>([](const double& v) {
          // At least one byte; at most 1 TiB, which is already more than any model's gradient.
          constexpr double kMaxBucketMiB = 1 << 20;
          return v * kBytesPerMiB >= 1 && v <= kMaxBucketMiB
                     ? std::string()
                     : fmt::format("must lie between one byte (1/1048576) and {} MiB, got {}",
                                   kMaxBucketMiB, v);
        })
        .optional("checkpoint_interval", &C::checkpoint_interval,
                  "steps between checkpoints; 0: only at the end of the stage")
        .check(must_not_be_negative<int64_t>())
        .optional("eval_interval", &C::eval_interval,
                  "steps between evaluations; 0: only at the end of the stage")
        .check(must_not_be_negative<int64_t>())
        .optional("document_attention", &C::document_attention,
                  "attention and positions restart at every document boundary in a sequence")
        .optional("attention", &C::attention,
                  "attention kernels on the CUDA backend: auto (cuDNN's fused attention where it "
                  "is installed and takes the stage's shape, else flash), cudnn (the same, with a "
                  "warning when it falls back) or flash (the project's own tensor-core kernels); "
                  "the stage banner names the choice")
        .check(must_be_one_of({"auto", "cudnn", "flash"}))
        .optional("data_seed", &C::data_seed, "seed of the sample order; -1: the run's seed")
        .optional("recompute_activations", &C::recompute_activations,
                  "keep only each layer's input and re-run the layer in the backward pass: "
                  "about a third more compute for a fraction of the activation memory (long "
                  "sequences)")
        .optional("lm_head_chunk_tokens", &C::lm_head_chunk_tokens,
                  "tokens the LM head and loss process at once, so that [tokens, vocab] logits "
                  "are never held whole; 0: automatic (at most 2^28 logits at a time)")
        .check(must_not_be_negative<int64_t>(" (0: automatic)"));
    return o;
  }();
  return s;
}

const OptionSchema<CheckpointConfig>& checkpoint_schema() {
  static const OptionSchema<CheckpointConfig> s = [] {
    using C = CheckpointConfig;
    OptionSchema<C> o("checkpoint");
    o.optional("keep_last", &C::keep_last,
               "newest checkpoints kept (the last checkpoint of each stage is always kept)")
        .check(must_be_at_least<int64_t>(1))
        .optional("save_on_signal", &C::save_on_signal,
                  "on SIGTERM or SIGUSR1 (Slurm's warning before a time limit), write a "
                  "checkpoint and exit 0 so that a requeued job resumes");
    return o;
  }();
  return s;
}

const OptionSchema<RunConfig>& run_schema() {
  static const OptionSchema<RunConfig> s = [] {
    using C = RunConfig;
    OptionSchema<C> o("run");
    o.optional("name", &C::name, "a name for logs and metrics")
        .check(must_be_a_name())
        .required("model", &C::model,
                  "model YAML (configs/models/), or a Hugging Face model directory, whose "
                  "weights then start the run unless init_from names others")
        .optional("init_from", &C::init_from,
                  "start from these weights: a Hugging Face model directory or a checkpoint of "
                  "this trainer (whose optimizer state the first stage may carry over)")
        .required("output_dir", &C::output_dir,
                  "checkpoints/, metrics.jsonl and run_config.yaml go here; a run resumes from "
                  "the newest valid checkpoint in it")
        .optional("backend", &C::backend,
                  "cuda: bf16 on one GPU per rank, NCCL between ranks; cpu: the fp32 reference "
                  "backend (tests, demos, machines without a GPU)")
        .check<std::string>([](const std::string& v) {
          return v == "cuda" || v == "cpu" ? std::string() : "must be cuda or cpu, got '" + v + "'";
        })
        .optional("seed", &C::seed, "weight initialisation and sample order")
        .optional("log_interval", &C::log_interval,
                  "steps between progress lines (metrics.jsonl gets every step)")
        .check(must_be_at_least<int64_t>(1))
        .optional("max_nonfinite_steps", &C::max_nonfinite_steps,
                  "steps in a row with a non-finite loss or gradient norm (skipped, no update) "
                  "before the run stops with an error")
        .check(must_not_be_negative<int64_t>())
        .section("checkpoint", &C::checkpoint, checkpoint_schema(),
                 "checkpoint settings (see below)")
        .list("stages", &C::stages, stage_schema(), true, "the ordered list of stages (see below)");
    return o;
  }();
  return s;
}

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
std::string expand_environment(const std::string& text, const KeyLocations& at,
                               const std::string& key) {
  const auto fail = [&](const std::string& path, const std::string& message) {
    blame_key(at, path, message);
  };
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

// The rules that tie one option to others, the model or the number of ranks, and the values
// derived from them, for stage `index` as read. `at`: where each key was written.
void resolve_optimizer(OptimizerConfig& o, const StageConfig& stage, const std::string& prefix,
                       const ParamLayout& layout, const KeyLocations& at) {
  const auto fail = [&](const std::string& key, const std::string& message) {
    blame_key(at, prefix + key, message);
  };
  LrSchedule& s = o.schedule;
  const int64_t steps = stage.steps;
  s.total_steps = steps;
  if (!(s.min_lr >= 0 && s.min_lr <= s.lr))
    fail("min_lr", fmt::format("must lie in [0, lr = {}], got {}", s.lr, s.min_lr));
  if (s.warmup_steps < 0 || s.warmup_steps > steps)
    fail("warmup_steps",
         fmt::format("{} must lie in [0, the stage's {} steps]", s.warmup_steps, steps));
  if (s.kind == ScheduleKind::WarmupStableDecay &&
      (s.decay_steps < 1 || s.decay_steps > steps - s.warmup_steps))
    fail("decay_steps", fmt::format("{} must lie in [1, steps - warmup_steps = {}] for wsd",
                                    s.decay_steps, steps - s.warmup_steps));
  s.validate(prefix.substr(0, prefix.size() - 1));
  try {
    validate_decay_rule(o.adamw.decay, layout);
  } catch (const Error& e) {
    fail("no_decay", without_rank_prefix(e.what()));
  }
  AdamWOptions& a = o.adamw;
  a.zero_stage = stage.zero_stage;
  a.overlap_grad_reduce = stage.overlap_grad_reduce;
  a.grad_bucket_bytes = static_cast<int64_t>(std::llround(stage.grad_bucket_mb * kBytesPerMiB));
}

// A data source's glob, with ${NAME}s expanded, and the files it matches.
template <class Source>
void resolve_sources(std::vector<Source>& sources, const std::string& prefix,
                     const KeyLocations& at) {
  std::set<std::string> names;
  for (size_t i = 0; i < sources.size(); ++i) {
    Source& source = sources[i];
    const std::string sp = fmt::format("{}.{}.", prefix, i);
    if (!names.insert(source.name).second)
      blame_key(at, sp + "name", "'" + source.name + "' appears twice");
    source.path = expand_environment(source.path, at, sp + "path");
    source.files = match_files(source.path);
    if (source.files.empty()) blame_key(at, sp + "path", "'" + source.path + "' matches no files");
  }
}

void resolve_stage(StageConfig& st, int index, const RunConfig& run, const ParamLayout& layout,
                   int world_size, const KeyLocations& at) {
  const std::string prefix = fmt::format("stages.{}.", index);
  const auto fail = [&](const std::string& key, const std::string& message) {
    blame_key(at, prefix + key, message);
  };
  const ModelConfig& model = run.model_config;
  if (st.seq_len > model.max_position_embeddings)
    fail("seq_len", fmt::format("{} is above the model's max_position_embeddings {}", st.seq_len,
                                model.max_position_embeddings));
  const int64_t rows_unit = st.seq_len * st.micro_batch * world_size;
  if (st.batch_tokens < 1 || st.batch_tokens % rows_unit != 0)
    fail("batch_tokens",
         fmt::format("{} is not a multiple of seq_len x micro_batch x ranks = {} x {} x {} = {}; "
                     "the nearest that are: {} or {}",
                     st.batch_tokens, st.seq_len, st.micro_batch, world_size, rows_unit,
                     std::max<int64_t>(1, st.batch_tokens / rows_unit) * rows_unit,
                     (st.batch_tokens / rows_unit + 1) * rows_unit));
  if ((st.tokens > 0) == (st.steps > 0))
    fail(st.tokens > 0 ? "steps" : "tokens",
         fmt::format("give exactly one positive budget, tokens or steps (got tokens {}, steps {})",
                     st.tokens, st.steps));
  if (st.tokens < 0 || st.steps < 0)
    fail(st.tokens < 0 ? "tokens" : "steps", "must not be negative");
  if (st.steps == 0) {
    st.steps = st.tokens / st.batch_tokens;
    if (st.steps < 1)
      fail("tokens",
           fmt::format("{} is less than one global batch ({} tokens)", st.tokens, st.batch_tokens));
    st.tokens = 0;  // the budget is in steps from here on
  }
  if (st.data_seed < 0) st.data_seed = static_cast<int64_t>(run.seed);
  resolve_sources(st.train_data, prefix + "train_data", at);
  resolve_sources(st.eval_data, prefix + "eval_data", at);
  resolve_optimizer(st.optimizer, st, prefix + "optimizer.", layout, at);
}

void resolve_run(RunConfig& run, int world_size, const KeyLocations& at) {
  run.model = expand_environment(run.model, at, "model");
  try {
    run.model_config =
        is_directory(run.model) ? load_hf_config(run.model) : load_model_config(run.model);
  } catch (const Error& e) {
    blame_key(at, "model",
              fmt::format("'{}' is not a usable model YAML or Hugging Face directory: {}",
                          run.model, without_rank_prefix(e.what())));
  }
  run.init_from = expand_environment(run.init_from, at, "init_from");
  // A model given as a Hugging Face directory is also where the weights start, unless init_from
  // says otherwise.
  if (run.init_from.empty() && is_directory(run.model)) run.init_from = run.model;
  if (!run.init_from.empty() && !is_hf_model_dir(run.init_from))
    blame_key(at, "init_from",
              "'" + run.init_from +
                  "' is not a model directory (config.json with model.safetensors); "
                  "for a later stage, run the earlier one first");
  run.output_dir = expand_environment(run.output_dir, at, "output_dir");
  if (run.output_dir.empty()) blame_key(at, "output_dir", "must not be empty");

  const ParamLayout layout(run.model_config);
  std::set<std::string> names;
  for (size_t i = 0; i < run.stages.size(); ++i) {
    StageConfig& st = run.stages[i];
    resolve_stage(st, static_cast<int>(i), run, layout, world_size, at);
    if (!names.insert(st.name).second)
      blame_key(at, fmt::format("stages.{}", i) + ".name",
                "'" + st.name + "' is the name of an earlier stage too");
  }
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
  RunConfig run;
  KeyLocations at;
  run_schema().read(root, file, run, at, "", &over);
  run.file = file;
  resolve_run(run, world_size, at);
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
  YAML::Emitter e;
  run_schema().emit(run, e);
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
