// qwen3-bench-zero: what ZeRO stages 0, 1 and 2 cost each rank, in memory and in bytes sent per
// optimizer step. A benchmark, not a test: it prints figures side by side.
//
//   mpirun -np N qwen3-bench-zero [--model M.yaml] [--layers L] [--micro-batches M] [--steps S]
//                                 [--markdown]
//
// Part 1, measured on this machine for the N ranks of the job: for each stage, a model on the CPU
// backend (--model with only its first L layers, so that four ranks fit in memory) and a ZeroAdamW
// over MPI run optimizer steps with the forward and backward passes replaced by seeded gradients:
// the collectives and the buffers do not depend on activations. With no backward pass to announce
// finished gradients, the reduction is the one collective after it (the bytes that the overlapped
// buckets send too). The communicator's CommStats and the buffer sizes are compared with
// zero_footprint() (parallel/zero_footprint.h), which should predict them to the byte.
//
// Part 2, computed with zero_footprint() for the full --model (Qwen3-0.6B by default) at rank
// counts this machine cannot run, in fp32 (CPU) and bf16 (CUDA) storage, the CUDA one with fp32 and
// with bf16 gradients. --markdown prints only
// this part, as GitHub markdown tables for docs/.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/model/qwen3_model.h"
#include "core/util/error.h"
#include "core/util/format.h"
#include "core/util/rng.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_environment.h"
#include "parallel/shard_layout.h"
#include "parallel/zero_adamw.h"
#include "parallel/zero_footprint.h"

namespace {

using namespace qwen3;
using Clock = std::chrono::steady_clock;

constexpr const char* kProgram = "qwen3-bench-zero";
constexpr uint64_t kGradientSeed = 20240917;  // fixed so that runs compare
// The seeded gradients are this many values, tiled over the buffer at a shift drawn per rank,
// step and micro-batch: drawing fresh normals for every element of a 0.6B-sized buffer on every
// micro-batch would take longer than the collectives being measured.
constexpr int64_t kPatternElements = int64_t{1} << 20;
// Small, as real gradients are; the values only have to be finite for the norm and the update.
constexpr double kGradientStd = 1e-4;
// Scored tokens each micro-batch claims for the token-count all-reduce (any positive count works:
// train_step only skips the update when the global count is zero).
constexpr int64_t kTokensPerMicroBatch = 8 * 2048;
constexpr double kLearningRate = 3e-4;
const int kPart2Ranks[] = {1, 2, 4, 8, 64};

struct Options {
  std::string model_path = "configs/models/qwen3-0.6b.yaml";
  int64_t layers = 1, micro_batches = 2, steps = 3;
  bool markdown = false;
};

constexpr const char* kUsage =
    "usage: [mpirun -np N] qwen3-bench-zero [--model M.yaml] [--layers L] [--micro-batches M] "
    "[--steps S] [--markdown]\n"
    "  --model          model YAML (default configs/models/qwen3-0.6b.yaml)\n"
    "  --layers         decoder layers of the measured model (default 1; the computed tables use "
    "the model's own)\n"
    "  --micro-batches  per optimizer step (default 2)\n"
    "  --steps          timed steps per ZeRO stage, after one warm-up (default 3)\n"
    "  --markdown       print only the computed tables, as GitHub markdown\n";

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr, "%s: %s\n%s", kProgram, problem.c_str(), kUsage);
  std::exit(2);
}

int64_t parse_positive(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1)
    usage(flag + " takes a positive integer, got '" + text + "'");
  return value;
}

// Parsed before MPI starts, so a mistyped flag exits with status 2 without a job to take down.
Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--markdown") {
      o.markdown = true;
      continue;
    }
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (flag != "--model" && flag != "--layers" && flag != "--micro-batches" && flag != "--steps")
      usage("unknown argument '" + flag + "'");
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--model")
      o.model_path = value;
    else if (flag == "--layers")
      o.layers = parse_positive(flag, value);
    else if (flag == "--micro-batches")
      o.micro_batches = parse_positive(flag, value);
    else
      o.steps = parse_positive(flag, value);
  }
  return o;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Peak resident memory, so that what the process really holds (MPI's temporaries, the libraries)
// can be set beside the buffers counted. Writing 5 to clear_refs (Linux 4.0 and later) restarts
// the kernel's high-water mark, VmHWM, so that each stage gets its own peak. Returns false where
// it cannot, and the peak then runs from the start of the process.
bool reset_peak_resident() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return clear_refs.good();
}

// VmHWM in bytes, or 0 where /proc/self/status has none.
int64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  int64_t kib = 0;
  while (status >> key) {
    if (key == "VmHWM:") {
      status >> kib;
      return kib * 1024;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

// ---- tables, as aligned text or as GitHub markdown ----

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  bool first_column_is_label = false;  // left-aligned; every other column is numbers
};

std::string render_text(const Table& t, const std::string& indent) {
  std::vector<size_t> width(t.header.size());
  for (size_t c = 0; c < width.size(); ++c) {
    width[c] = t.header[c].size();
    for (const auto& row : t.rows)
      width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = indent;
    for (size_t c = 0; c < cells.size(); ++c)
      out += c == 0 && t.first_column_is_label ? fmt::format("{:<{}}", cells[c], width[c])
             : c == 0                          ? fmt::format("{:>{}}", cells[c], width[c])
                                               : fmt::format("  {:>{}}", cells[c], width[c]);
    return out + "\n";
  };
  std::string out = line(t.header);
  for (const auto& row : t.rows)
    out += line(row);
  return out;
}

std::string render_markdown(const Table& t) {
  auto line = [](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (const std::string& cell : cells)
      out += " " + cell + " |";
    return out + "\n";
  };
  std::string out = line(t.header) + "|";
  for (size_t c = 0; c < t.header.size(); ++c)
    out += c == 0 && t.first_column_is_label ? ":---|" : "---:|";
  out += "\n";
  for (const auto& row : t.rows)
    out += line(row);
  return out;
}

// ---- Part 1: measured ----

// Seeded stand-ins for the gradients a backward pass adds.
class GradientPattern {
 public:
  explicit GradientPattern(int rank)
      : values_(static_cast<size_t>(kPatternElements)), rank_(static_cast<uint64_t>(rank)) {
    fill_normal(values_.data(), kPatternElements, 0.0, kGradientStd, kGradientSeed, rank_);
  }

  // Adds values into every tensor of `layout` in `grads`, as backward() accumulates into the
  // buffer. The alignment gaps between tensors and the ZeRO padding at the end stay zero, as a
  // real backward leaves them.
  void add_into(const ParamLayout& layout, float* grads, uint64_t draw) const {
    int64_t source = static_cast<int64_t>(random_bits(kGradientSeed, rank_, draw) %
                                          static_cast<uint64_t>(kPatternElements));
    for (const ParamEntry& e : layout.entries()) {
      float* out = grads + e.offset;
      for (int64_t done = 0; done < e.numel();) {
        const int64_t run = std::min(e.numel() - done, kPatternElements - source);
        const float* in = values_.data() + source;
        for (int64_t i = 0; i < run; ++i)
          out[done + i] += in[i];
        done += run;
        source = (source + run) % kPatternElements;
      }
    }
  }

 private:
  std::vector<float> values_;
  uint64_t rank_ = 0;
};

// One optimizer step as trainer/train_step.cpp's train_step() makes it, call for call on the
// optimizer and the host communicator, with each micro-batch's forward and backward replaced by
// adding seeded gradients. Returns this rank's wall seconds in the optimizer's part: everything
// but filling the gradients and the `sync` barriers that keep one rank's filling out of the
// others' collectives. `sync` is a communicator of its own, so the measured one counts only what
// a training step sends.
double emulated_train_step(Qwen3Model& model, ZeroAdamW& optimizer, Communicator& host_comm,
                           Communicator& sync, const GradientPattern& pattern, int micro_batches,
                           int64_t step) {
  double optimizer_seconds = 0;
  auto start = Clock::now();
  const int64_t tokens = host_comm.all_reduce_value(kTokensPerMicroBatch * micro_batches);
  optimizer.zero_grad(micro_batches);
  optimizer_seconds += seconds_since(start);

  float* grads = model.grads_padded().as<float>();
  double local_loss = 0;
  for (int m = 0; m < micro_batches; ++m) {
    pattern.add_into(model.layout(), grads, static_cast<uint64_t>(step * micro_batches + m));
    local_loss += 2.5 * double(kTokensPerMicroBatch);  // what forward() would return
    sync.barrier();
    start = Clock::now();
    optimizer.micro_batch_done();
    optimizer_seconds += seconds_since(start);
  }

  start = Clock::now();
  const double norm = optimizer.reduce_gradients();
  const double loss_sum = host_comm.all_reduce_value(local_loss);
  // train_step skips the update (and its all-gather) for these; the step measured must not.
  QWEN3_CHECK(tokens > 0 && std::isfinite(norm) && std::isfinite(loss_sum),
              "step {}: {} tokens, gradient norm {}, loss sum {}: the update would be skipped",
              step, tokens, norm, loss_sum);
  optimizer.update(kLearningRate, norm);
  optimizer_seconds += seconds_since(start);
  return optimizer_seconds;
}

struct Measured {
  uint64_t weights = 0, gradients = 0, optimizer = 0;
  uint64_t ring_bytes_sent = 0;  // per step
  int64_t collectives = 0;       // per step
  bool same_every_step = true;
  double optimizer_seconds = 0;  // per step, mean over the timed steps
  int64_t peak_resident = 0;     // bytes, VmHWM with this stage's buffers alive
};

Measured measure_stage(const ModelConfig& config, Backend& backend, MpiCommunicator& comm,
                       MpiCommunicator& sync, const GradientPattern& pattern, int stage,
                       int micro_batches, int64_t steps) {
  Qwen3Model model(config, backend, ShardLayout::flat_multiple(comm.size()));
  QWEN3_CHECK(model.grads_padded().dtype == DType::F32,
              "the CPU backend was expected to store fp32 gradients");
  AdamWOptions options;
  options.zero_stage = stage;
  ZeroAdamW optimizer(backend, comm, comm, model.layout(), model.params_padded(),
                      model.grads_padded(), options);
  optimizer.load_master_from_params();

  Measured out;
  out.weights = model.params_padded().bytes();
  out.gradients = model.grads_padded().bytes() + optimizer.gradient_shard_bytes();
  out.optimizer = optimizer.optimizer_state_bytes();

  // The warm-up step pays for first touches and MPI's connection set-up; not counted.
  emulated_train_step(model, optimizer, comm, sync, pattern, micro_batches, 0);
  for (int64_t s = 1; s <= steps; ++s) {
    comm.reset_stats();
    out.optimizer_seconds +=
        emulated_train_step(model, optimizer, comm, sync, pattern, micro_batches, s);
    const CommStats& stats = comm.stats();
    if (s == 1) {
      out.ring_bytes_sent = stats.ring_bytes_sent;
      out.collectives = stats.calls;
    } else if (stats.ring_bytes_sent != out.ring_bytes_sent || stats.calls != out.collectives) {
      out.same_every_step = false;
    }
  }
  out.optimizer_seconds /= double(steps);
  out.peak_resident = peak_resident_bytes();
  return out;
}

// Equal on every rank, or the range over ranks for the message.
struct OverRanks {
  int64_t min = 0, max = 0;
};

OverRanks over_ranks(Communicator& sync, int64_t value) {
  return {sync.all_reduce_value(value, ReduceOp::Min), sync.all_reduce_value(value, ReduceOp::Max)};
}

std::string bytes_cell(uint64_t bytes) {
  return fmt::format("{} ({} B)", human_bytes(double(bytes)), with_commas(int64_t(bytes)));
}

// Returns the number of figures that differ from the prediction (the same on every rank).
int run_measured(const Options& o, const ModelConfig& full_config, const MpiEnvironment& mpi,
                 MpiCommunicator& comm, MpiCommunicator& sync) {
  const bool printer = comm.rank() == 0;
  const int ranks = comm.size(), micro_batches = static_cast<int>(o.micro_batches);
  ModelConfig config = full_config;
  config.num_hidden_layers = o.layers;
  const ParamLayout layout(config);
  const ShardLayout shard(layout.flat_size(), ranks, 0);
  if (printer) {
    fmt::print(
        "Part 1, measured: {} with {} of its {} layers ({} parameters, flat buffer {} elements, "
        "padded to {} for {} rank{}), CPU backend fp32, MPI; {} micro-batches per step, 1 warm-up "
        "and {} timed steps per stage; gradients seeded, no forward or backward.\n",
        config.name, o.layers, full_config.num_hidden_layers,
        with_commas(layout.unique_parameters()), with_commas(layout.flat_size()),
        with_commas(shard.padded_size), ranks, ranks == 1 ? "" : "s", micro_batches, o.steps);
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && mpi.local_size() > cores)
      fmt::print("{} ranks share this node's {} cores: the times are for information only.\n",
                 mpi.local_size(), cores);
    std::fflush(stdout);
  }

  auto backend = make_cpu_backend();
  const GradientPattern pattern(comm.rank());
  int differences = 0;
  bool peak_is_per_stage = true;
  int64_t run_peak = 0;  // this rank's, over the stages
  for (int stage = 0; stage <= 2; ++stage) {
    const auto stage_start = Clock::now();
    peak_is_per_stage = reset_peak_resident() && peak_is_per_stage;
    const Measured m =
        measure_stage(config, *backend, comm, sync, pattern, stage, micro_batches, o.steps);
    const ZeroFootprint p = zero_footprint(layout.flat_size(), /*storage_bytes=*/4,
                                           /*grad_bytes=*/4, stage, ranks, micro_batches);
    const double slowest_seconds = sync.all_reduce_value(m.optimizer_seconds, ReduceOp::Max);

    Table t{{"per rank", "measured", "predicted", "measured/predicted", ""}, {}, true};
    int stage_differences = 0;
    std::vector<std::string> notes;
    auto compare = [&](const char* what, int64_t measured, int64_t predicted, bool in_bytes) {
      const OverRanks r = over_ranks(sync, measured);
      const bool equal = r.min == predicted && r.max == predicted;
      stage_differences += !equal;
      auto cell = [&](int64_t v) { return in_bytes ? bytes_cell(uint64_t(v)) : with_commas(v); };
      const std::string ratio =
          predicted != 0 ? fmt::format("{:.3f}", double(measured) / double(predicted)) : "-";
      std::string verdict = equal ? "exact" : "DIFFERS";
      if (!equal) {
        verdict += fmt::format(" by {}", with_commas(measured - predicted));
        if (r.min != r.max)
          notes.push_back(fmt::format("{} differs across ranks: {} to {}", what, with_commas(r.min),
                                      with_commas(r.max)));
      }
      t.rows.push_back({what, cell(measured), cell(predicted), ratio, verdict});
    };
    compare("weights", int64_t(m.weights), int64_t(p.weights), true);
    compare("gradients", int64_t(m.gradients), int64_t(p.gradients), true);
    compare("optimizer state", int64_t(m.optimizer), int64_t(p.optimizer), true);
    compare("total memory", int64_t(m.weights + m.gradients + m.optimizer),
            int64_t(p.total_memory()), true);
    compare("sent per step (ring)", int64_t(m.ring_bytes_sent), int64_t(p.ring_bytes_sent), true);
    compare("collectives per step", m.collectives, p.collectives, false);
    if (sync.all_reduce_value(int64_t(m.same_every_step ? 0 : 1), ReduceOp::Max) != 0) {
      stage_differences += 1;
      notes.push_back("traffic differed between timed steps; the table shows the first");
    }
    differences += stage_differences;
    // Beyond the buffers counted: the process itself (libraries, MPI's shared-memory segments)
    // and whatever MPI allocates inside a collective.
    run_peak = std::max(run_peak, m.peak_resident);
    const int64_t peak = sync.all_reduce_value(m.peak_resident, ReduceOp::Max);
    const int64_t uncounted = sync.all_reduce_value(
        m.peak_resident - int64_t(m.weights + m.gradients + m.optimizer), ReduceOp::Max);
    if (printer) {
      fmt::print(
          "\nZeRO stage {}, {} rank{}: optimizer part {:.3f} s per step (slowest rank); "
          "stage built and run in {:.1f} s\n{}  peak resident memory{}: {} on the largest rank, "
          "up to {} beyond the buffers counted\n",
          stage, ranks, ranks == 1 ? "" : "s", slowest_seconds, seconds_since(stage_start),
          render_text(t, "  "), peak_is_per_stage ? " during the stage" : " (since start)",
          human_bytes(double(peak)), human_bytes(double(uncounted)));
      for (const std::string& note : notes)
        fmt::print("  note: {}\n", note);
      std::fflush(stdout);
    }
  }

  // Summed over ranks, the per-rank peaks bound what the job held at once. (Not getrusage's
  // ru_maxrss: resetting VmHWM above resets it too.)
  const int64_t peak_max = sync.all_reduce_value(run_peak, ReduceOp::Max);
  const int64_t peak_sum = sync.all_reduce_value(run_peak, ReduceOp::Sum);
  if (printer) {
    fmt::print(
        "\npeak resident memory of the run: {} on the largest rank, {} summed over {} rank{}\n",
        human_bytes(double(peak_max)), human_bytes(double(peak_sum)), ranks, ranks == 1 ? "" : "s");
    fmt::print(differences == 0
                   ? "every measured figure equals zero_footprint()'s prediction\n"
                   : "{} measured figure(s) differ from zero_footprint()'s prediction\n",
               differences);
  }
  return differences;
}

// ---- Part 2: computed ----

std::string computed_tables(const Options& o, const ModelConfig& config) {
  const ParamLayout layout(config);
  const int64_t psi = layout.unique_parameters();
  const int micro_batches = static_cast<int>(o.micro_batches);
  std::string out;
  const std::string intro = fmt::format(
      "Part 2, computed with zero_footprint() for {} ({} layers): Ψ = {} unique parameters, flat "
      "buffer {} elements (alignment padding included), padded per rank count to a multiple of "
      "64 · N; {} micro-batches per step. Sent: bytes per rank per step under ring collectives, "
      "the three 8-byte scalar all-reduces included.",
      config.name, config.num_hidden_layers, with_commas(psi), with_commas(layout.flat_size()),
      micro_batches);
  out += (o.markdown ? intro : "\n" + intro) + "\n";

  struct Precision {
    const char* title;
    int storage_bytes, grad_bytes;
  };
  const Precision precisions[] = {
      {"CPU: fp32 weights and gradients, fp32 optimizer state", 4, 4},
      {"GPU, grad_dtype fp32 (the default): bf16 weights, fp32 gradients, fp32 optimizer state", 2,
       4},
      {"GPU, grad_dtype bf16: bf16 weights and gradients, fp32 optimizer state", 2, 2}};
  for (const Precision& precision : precisions) {
    Table t{{"stage", "ranks", "weights", "gradients", "optimizer state", "total per rank",
             "sent per rank per step", "sent per parameter"},
            {}};
    for (int stage = 0; stage <= 2; ++stage) {
      for (int ranks : kPart2Ranks) {
        const ZeroFootprint f = zero_footprint(layout.flat_size(), precision.storage_bytes,
                                               precision.grad_bytes, stage, ranks, micro_batches);
        t.rows.push_back({std::to_string(stage), std::to_string(ranks),
                          human_bytes(double(f.weights)), human_bytes(double(f.gradients)),
                          human_bytes(double(f.optimizer)), human_bytes(double(f.total_memory())),
                          human_bytes(double(f.ring_bytes_sent)),
                          fmt::format("{:.2f} B", double(f.ring_bytes_sent) / double(psi))});
      }
    }
    out += o.markdown ? fmt::format("\n**{}**\n\n{}", precision.title, render_markdown(t))
                      : fmt::format("\n{}\n{}", precision.title, render_text(t, "  "));
  }
  const std::string notes =
      "The working gradient buffer is counted full at every stage: the buckets that overlap the "
      "backward pass are reduced out of it in place, so it does not shrink. Bucketing "
      "(overlap_grad_reduce) sends the same bytes in more, smaller collectives.\n"
      "With g the gradient's bytes per element and s the weights': stage 0 all-reduces "
      "2(N - 1)/N · Ψ·g per step, stage 1 reduce-scatters (N - 1)/N · Ψ·g and all-gathers "
      "(N - 1)/N · Ψ·s, stage 2 reduce-scatters every micro-batch, M(N - 1)/N · Ψ·g, then "
      "all-gathers.";
  out += "\n" + notes + "\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  try {
    qwen3::MpiEnvironment mpi(&argc, &argv);
    auto comm = qwen3::MpiCommunicator::world();
    // Barriers and the reductions of the report go over their own communicator, so that the
    // measured one counts exactly what a training step sends.
    auto sync = qwen3::MpiCommunicator::world();
    const qwen3::ModelConfig config = qwen3::load_model_config(options.model_path);

    int differences = 0;
    if (!options.markdown) differences = run_measured(options, config, mpi, *comm, *sync);
    if (comm->rank() == 0) {
      std::fputs(computed_tables(options, config).c_str(), stdout);
      std::fflush(stdout);
    }
    // Every rank knows the count, so they all exit alike.
    return differences == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    qwen3::MpiEnvironment::abort_job(kProgram, e.what());
  }
}
