// qwen3-bench-step: times whole optimizer steps of a model, the way qwen3-train runs them:
// forward and backward over the micro-batches, the gradient reduction (bucketed on the side
// stream where the backend has one), global-norm clipping and the ZeRO AdamW update, ending with a
// device synchronisation inside the timing. One rank (MPI starts as a singleton; NCCL over one
// GPU with the CUDA backend). bench/train_vs_pytorch.py runs PyTorch on the same step beside it.
//
//   qwen3-bench-step --model M.yaml [--backend cpu|cuda] [--batch B] [--micro-batch MB]
//                    [--seq T] [--recompute] [--lm-head-chunk-tokens N] [--zero-stage 0|1|2]
//                    [--no-overlap] [--warmup W] [--iters K] [--threads N]
//                    [--dry-run [--device-name NAME]]
//
// --batch is sequences per step, --micro-batch sequences per forward (default: all of them).
// --dry-run prints the JSON line below without making a backend or stepping, for the FLOP count
// and the peak of the device named by --device-name (as the driver names it). The last line of
// output is one JSON object: the step's tokens, median / min / max seconds over the timed steps,
// tokens/s, FLOPs per token (6N + 12·L·H·hd·S, train_flops_per_token), achieved FLOP/s, the
// device's dense bf16 peak and MFU (null where the device is not in the datasheet table), the peak
// bytes in the backend's buffers, and each step's loss.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda/device_peaks.h"
#include "core/model/qwen3_model.h"
#include "core/util/rng.h"
#include "parallel/mpi_environment.h"
#include "parallel/shard_layout.h"
#include "parallel/zero_adamw.h"
#include "trainer/compute_setup.h"
#include "trainer/metrics.h"
#include "trainer/train_step.h"

namespace {

using namespace qwen3;

struct BenchOptions {
  std::string model_path, backend = "cpu", device_name;
  int64_t batch = 4, micro_batch = 0, seq = 512, threads = 0, iters = 5, warmup = 1;
  int64_t lm_head_chunk_tokens = 0, zero_stage = 1;
  bool recompute = false, overlap = true, dry_run = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "qwen3-bench-step: %s\n"
               "usage: qwen3-bench-step --model M.yaml [--backend cpu|cuda] [--batch B] "
               "[--micro-batch MB] [--seq T] [--recompute] [--lm-head-chunk-tokens N] "
               "[--zero-stage 0|1|2] [--no-overlap] [--warmup W] [--iters K] [--threads N] "
               "[--dry-run [--device-name NAME]]\n",
               why.c_str());
  std::exit(2);
}

BenchOptions parse_options(int argc, char** argv) {
  BenchOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--recompute") {
      o.recompute = true;
      continue;
    }
    if (key == "--no-overlap") {
      o.overlap = false;
      continue;
    }
    if (key == "--dry-run") {
      o.dry_run = true;
      continue;
    }
    if (i + 1 >= argc) usage(key + " needs a value");
    const std::string value = argv[++i];
    if (key == "--model") {
      o.model_path = value;
      continue;
    }
    if (key == "--backend") {
      o.backend = value;
      continue;
    }
    if (key == "--device-name") {
      o.device_name = value;
      continue;
    }
    int64_t* target = key == "--batch"                  ? &o.batch
                      : key == "--micro-batch"          ? &o.micro_batch
                      : key == "--seq"                  ? &o.seq
                      : key == "--threads"              ? &o.threads
                      : key == "--iters"                ? &o.iters
                      : key == "--warmup"               ? &o.warmup
                      : key == "--lm-head-chunk-tokens" ? &o.lm_head_chunk_tokens
                      : key == "--zero-stage"           ? &o.zero_stage
                                                        : nullptr;
    if (!target) usage("unknown argument '" + key + "'");
    try {
      size_t used = 0;
      *target = std::stoll(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      usage(key + " takes an integer, not '" + value + "'");
    }
  }
  if (o.model_path.empty()) usage("--model is required");
  if (o.micro_batch == 0) o.micro_batch = o.batch;
  if (o.batch < 1 || o.seq < 1 || o.iters < 1 || o.warmup < 0 || o.micro_batch < 1 ||
      o.batch % o.micro_batch != 0)
    usage("--batch, --seq and --iters must be positive and --micro-batch must divide --batch");
  if (o.zero_stage < 0 || o.zero_stage > 2) usage("--zero-stage is 0, 1 or 2");
  if (o.backend != "cpu" && o.backend != "cuda") usage("--backend is cpu or cuda");
  return o;
}

// The step's micro-batches: seeded random tokens, scored on every next token.
std::vector<Batch> synthetic_micro_batches(const BenchOptions& o, int64_t vocab) {
  std::vector<Batch> out;
  for (int64_t first = 0; first < o.batch; first += o.micro_batch) {
    Batch b;
    b.batch = o.micro_batch;
    b.seq = o.seq;
    const size_t n = static_cast<size_t>(o.micro_batch * o.seq);
    for (size_t i = 0; i < n; ++i)
      b.tokens.push_back(
          static_cast<int32_t>(random_bits(7, uint64_t(first), i) % uint64_t(vocab)));
    b.labels = b.tokens;
    out.push_back(std::move(b));
  }
  return out;
}

struct Timing {
  std::vector<double> seconds;  // timed steps, sorted
  std::vector<double> losses;   // every step's, warm-up included
};

// The peak and MFU fields for a device name ("cpu" has none).
std::string peak_json(const std::string& device, double achieved_flops) {
  const auto peaks = cuda::device_peaks(device);
  if (!peaks) return "\"peak_flops\": null, \"mfu\": null";
  return fmt::format("\"peak_flops\": {:.6g}, \"mfu\": {}", peaks->bf16_dense_flops,
                     achieved_flops > 0
                         ? fmt::format("{:.6f}", achieved_flops / peaks->bf16_dense_flops)
                         : "null");
}

std::string result_json(const BenchOptions& o, const ModelConfig& config, const std::string& device,
                        const Timing& t, size_t peak_bytes) {
  const double tokens = double(o.batch * o.seq);
  const double flops_per_token = train_flops_per_token(config, o.seq);
  std::string out = fmt::format(
      "{{\"backend\": \"{}\", \"device\": \"{}\", \"batch\": {}, \"micro_batch\": {}, \"seq\": "
      "{}, \"recompute\": {}, \"tokens\": {}, \"flops_per_token\": {:.6g}",
      o.backend, device, o.batch, o.micro_batch, o.seq, o.recompute ? "true" : "false",
      int64_t(tokens), flops_per_token);
  if (t.seconds.empty()) return out + ", " + peak_json(device, 0) + "}";
  const double median = t.seconds[t.seconds.size() / 2];
  const double achieved = tokens * flops_per_token / median;
  out += fmt::format(
      ", \"median_s\": {:.6f}, \"min_s\": {:.6f}, \"max_s\": {:.6f}, \"tokens_per_s\": {:.1f}, "
      "\"achieved_flops\": {:.6g}, {}, \"peak_memory_bytes\": {}, \"losses\": [",
      median, t.seconds.front(), t.seconds.back(), tokens / median, achieved,
      peak_json(device, achieved), peak_bytes);
  for (size_t i = 0; i < t.losses.size(); ++i)
    out += fmt::format("{}{:.6f}", i ? ", " : "", t.losses[i]);
  return out + "]}";
}

Timing time_steps(const BenchOptions& o, Qwen3Model& model, ZeroAdamW& optimizer,
                  Communicator& host, const std::vector<Batch>& micro_batches) {
  Timing t;
  for (int64_t it = 0; it < o.warmup + o.iters; ++it) {
    const auto start = std::chrono::steady_clock::now();
    const StepResult r = train_step(model, optimizer, host, micro_batches, 3e-4);
    model.backend().synchronize();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("step %lld: %.4f s, loss %.4f, grad norm %.3f%s\n", static_cast<long long>(it), s,
                r.loss, r.grad_norm, it < o.warmup ? " (warm-up)" : "");
    std::fflush(stdout);
    t.losses.push_back(r.loss);
    if (it >= o.warmup) t.seconds.push_back(s);
  }
  std::sort(t.seconds.begin(), t.seconds.end());
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const BenchOptions o = parse_options(argc, argv);
  try {
    const ModelConfig config = load_model_config(o.model_path);
    if (o.dry_run) {
      // No backend is made: the device is the one named (for its peak), or the backend's name.
      const std::string device = o.device_name.empty() ? o.backend : o.device_name;
      std::printf("%s\n", result_json(o, config, device, Timing{}, 0).c_str());
      return 0;
    }
    MpiEnvironment mpi(&argc, &argv);
    auto world = MpiCommunicator::world();
    ComputeSetup compute = make_compute_setup(o.backend, mpi.local_rank(), *world);
    if (o.threads > 0 && o.backend == "cpu") compute.backend = make_cpu_backend(int(o.threads));
    std::printf("qwen3-bench-step: %s, %s; %lld × %lld tokens a step in micro-batches of %lld%s\n",
                config.name.c_str(), compute.description.c_str(), static_cast<long long>(o.batch),
                static_cast<long long>(o.seq), static_cast<long long>(o.micro_batch),
                o.recompute ? ", layers recomputed" : "");

    Qwen3Model model(config, *compute.backend, ShardLayout::flat_multiple(world->size()));
    model.init_weights(1234);
    MemoryOptions memory;
    memory.recompute_layers = o.recompute;
    memory.lm_head_chunk_tokens = o.lm_head_chunk_tokens;
    model.set_memory_options(memory);
    AdamWOptions adamw;
    adamw.zero_stage = static_cast<int>(o.zero_stage);
    adamw.overlap_grad_reduce = o.overlap;
    ZeroAdamW optimizer(*compute.backend, compute.gradient_comm(*world), *world, model.layout(),
                        model.params_padded(), model.grads_padded(), adamw);
    optimizer.load_master_from_params();

    const Timing t =
        time_steps(o, model, optimizer, *world, synthetic_micro_batches(o, config.vocab_size));
    std::printf("%s\n", result_json(o, config, compute.device_name, t,
                                    compute.backend->memory_stats().peak_bytes)
                            .c_str());
    return 0;
  } catch (const std::exception& e) {
    MpiEnvironment::abort_job("qwen3-bench-step", e.what());
  }
}
