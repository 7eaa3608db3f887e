// qwen3-dump-train: a few data-parallel AdamW steps of a seeded model on seeded synthetic data,
// under mpirun or alone. Rank 0 writes what an independent implementation needs to replay them
// (tests/python/test_adamw_torch.py), and the tool doubles as the rank-failure probe.
//
//   [mpirun -np N] qwen3-dump-train --model M.yaml --out DIR [--steps K] [--rows B] [--seq T]
//       [--micro-batches M] [--zero-stage 0|1|2] [--lr X] [--weight-decay X] [--grad-clip X]
//       [--beta1 X] [--beta2 X] [--eps X] [--seed S]
//       [--fail-rank R --fail-step S [--fail-how throw|kill]]
//
// DIR receives config.json, layout.tsv, options.json, params_init.f32, tokens_<s>.i32 and
// targets_<s>.i32 (the global batch of step s), params_final.f32 and steps.jsonl (loss,
// grad_norm, clip_coef, tokens per step).
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "../common/dump_files.h"
#include "../common/synthetic_batch.h"
#include "core/model/qwen3_model.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_environment.h"
#include "parallel/zero_adamw.h"
#include "trainer/train_step.h"

namespace {

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr,
               "qwen3-dump-train: %s\nusage: qwen3-dump-train --model M.yaml --out DIR [--steps K] "
               "[--rows B] [--seq T] [--micro-batches M] [--zero-stage S] [--lr X] "
               "[--weight-decay X] [--grad-clip X] [--beta1 X] [--beta2 X] [--eps X] [--seed S] "
               "[--fail-rank R --fail-step S [--fail-how throw|kill]]\n",
               problem);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, out_dir, fail_how = "throw";
  int64_t steps = 3, rows = 8, seq = 16, micro_batches = 1, fail_rank = -1, fail_step = -1;
  uint64_t seed = 1;
  double lr = 1e-3;
  qwen3::AdamWOptions options;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) usage((arg + " needs a value").c_str());
        return argv[++i];
      };
      if (arg == "--model")
        model_path = value();
      else if (arg == "--out")
        out_dir = value();
      else if (arg == "--steps")
        steps = std::stoll(value());
      else if (arg == "--rows")
        rows = std::stoll(value());
      else if (arg == "--seq")
        seq = std::stoll(value());
      else if (arg == "--micro-batches")
        micro_batches = std::stoll(value());
      else if (arg == "--zero-stage")
        options.zero_stage = std::stoi(value());
      else if (arg == "--lr")
        lr = std::stod(value());
      else if (arg == "--weight-decay")
        options.weight_decay = std::stod(value());
      else if (arg == "--grad-clip")
        options.grad_clip = std::stod(value());
      else if (arg == "--beta1")
        options.beta1 = std::stod(value());
      else if (arg == "--beta2")
        options.beta2 = std::stod(value());
      else if (arg == "--eps")
        options.eps = std::stod(value());
      else if (arg == "--seed")
        seed = std::stoull(value());
      else if (arg == "--fail-rank")
        fail_rank = std::stoll(value());
      else if (arg == "--fail-step")
        fail_step = std::stoll(value());
      else if (arg == "--fail-how")
        fail_how = value();
      else
        usage(("unknown argument '" + arg + "'").c_str());
    }
  } catch (const std::logic_error&) {  // std::stoll and friends on a bad number
    usage("a numeric option has a value that is not a number");
  }
  if (model_path.empty() || out_dir.empty()) usage("--model and --out are required");
  if (fail_how != "throw" && fail_how != "kill") usage("--fail-how is throw or kill");

  try {
    using namespace qwen3;
    using namespace qwen3::test_data;
    MpiEnvironment mpi(&argc, &argv);
    auto comm = MpiCommunicator::world();
    const ModelConfig config = load_model_config(model_path);
    auto backend = make_cpu_backend();
    Qwen3Model model(config, *backend, ShardLayout::flat_multiple(comm->size()));
    model.init_weights(seed);
    ZeroAdamW optimizer(*backend, *comm, *comm, model.layout(), model.params_padded(),
                        model.grads_padded(), options);
    optimizer.load_master_from_params();

    const bool writer = comm->rank() == 0;
    const std::string dir = out_dir + "/";
    if (writer) {
      mkdir(out_dir.c_str(), 0755);
      write_text(dir + "config.json", to_hf_config_json(config));
      write_layout_tsv(dir + "layout.tsv", model.layout());
      write_text(dir + "options.json",
                 fmt::format("{{\"lr\": {:.17g}, \"beta1\": {:.17g}, \"beta2\": {:.17g}, "
                             "\"eps\": {:.17g}, \"weight_decay\": {:.17g}, \"grad_clip\": {:.17g}, "
                             "\"steps\": {}, \"rows\": {}, \"seq\": {}, \"ranks\": {}, "
                             "\"micro_batches\": {}, \"zero_stage\": {}}}\n",
                             lr, options.beta1, options.beta2, options.eps, options.weight_decay,
                             options.grad_clip, steps, rows, seq, comm->size(), micro_batches,
                             options.zero_stage));
      write_array(dir + "params_init.f32", model.params_to_host());
    }

    std::string log;
    for (int64_t s = 0; s < steps; ++s) {
      if (s == fail_step && comm->rank() == fail_rank) {
        if (fail_how == "kill") std::raise(SIGKILL);
        throw Error(fmt::format("injected failure at step {} (--fail-rank {})", s, fail_rank));
      }
      const Batch global = synthetic_global_batch(rows, seq, config.vocab_size, seed, s);
      const StepResult r = train_step(
          model, optimizer, *comm,
          rank_micro_batches(global, comm->rank(), comm->size(), static_cast<int>(micro_batches)),
          lr);
      log += fmt::format(
          "{{\"step\": {}, \"loss\": {:.17g}, \"grad_norm\": {:.17g}, \"clip_coef\": {:.17g}, "
          "\"tokens\": {}, \"skipped\": {}}}\n",
          s, r.loss, r.grad_norm, r.clip_coef, r.tokens, r.skipped ? "true" : "false");
      if (writer) {
        write_array(dir + fmt::format("tokens_{}.i32", s), global.tokens);
        write_array(dir + fmt::format("targets_{}.i32", s), global.targets);
      }
    }
    if (writer) {
      write_array(dir + "params_final.f32", model.params_to_host());
      write_text(dir + "steps.jsonl", log);
      std::printf("wrote %s: %lld steps on %d ranks, ZeRO stage %d\n", out_dir.c_str(),
                  static_cast<long long>(steps), comm->size(), options.zero_stage);
    }
    return 0;
  } catch (const std::exception& e) {
    qwen3::MpiEnvironment::abort_job("qwen3-dump-train", e.what());
  }
}
