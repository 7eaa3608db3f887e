// qwen3-train: the training program.
//
//   [mpirun -np N] qwen3-train RUN.yaml [--set KEY.PATH=VALUE ...] [--dump-config]
//   qwen3-train --describe MODEL.yaml | --model-options | --run-options
//
// A run resumes on its own from the newest valid checkpoint in its output directory; SIGTERM or
// SIGUSR1 write a checkpoint and exit 0.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/model/config.h"
#include "core/ops/backend.h"
#include "core/util/error.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_environment.h"
#include "trainer/compute_setup.h"
#include "trainer/describe.h"
#include "trainer/run_config.h"
#include "trainer/stop_signal.h"
#include "trainer/trainer.h"

namespace {

constexpr const char* kProgram = "qwen3-train";
constexpr int kExitError = 1;  // bad input or a failure: the message says which
constexpr int kExitUsage = 2;  // the command line itself is wrong

void print_usage(FILE* to) {
  std::fprintf(
      to,
      "usage: [mpirun -np N] qwen3-train RUN.yaml [--set KEY.PATH=VALUE ...] [--dump-config]\n"
      "           trains the run's stages, resuming from the newest checkpoint in its output_dir\n"
      "           --set stages.1.optimizer.lr=1e-4   override one key (repeatable)\n"
      "           --dump-config                      print the validated run and exit\n"
      "           --stop-at-step N                   checkpoint and exit 0 after global step N\n"
      "       qwen3-train --describe MODEL.yaml   parameter table and memory estimates\n"
      "       qwen3-train --model-options         every model YAML key, typed, with help\n"
      "       qwen3-train --run-options           every run YAML key, typed, with help\n"
      "       qwen3-train --help\n");
}

struct Arguments {
  std::string run_file;
  std::vector<std::string> overrides;
  bool dump_config = false;
  int64_t stop_at_step = 0;
};

// Returns false (after printing why) for a command line that is not a training invocation.
bool parse_arguments(int argc, char** argv, Arguments& out) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--set") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: --set needs KEY.PATH=VALUE\n", kProgram);
        return false;
      }
      out.overrides.push_back(argv[++i]);
    } else if (arg.rfind("--set=", 0) == 0) {
      out.overrides.push_back(arg.substr(6));
    } else if (arg == "--stop-at-step") {
      char* end = nullptr;
      if (i + 1 < argc) out.stop_at_step = std::strtoll(argv[++i], &end, 10);
      if (out.stop_at_step <= 0 || end == nullptr || *end != '\0') {
        std::fprintf(stderr, "%s: --stop-at-step needs a positive step number\n", kProgram);
        return false;
      }
    } else if (arg == "--dump-config") {
      out.dump_config = true;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "%s: unknown option '%s'\n", kProgram, arg.c_str());
      return false;
    } else if (out.run_file.empty()) {
      out.run_file = arg;
    } else {
      std::fprintf(stderr, "%s: one run file, please; got '%s' and '%s'\n", kProgram,
                   out.run_file.c_str(), arg.c_str());
      return false;
    }
  }
  if (out.run_file.empty()) {
    std::fprintf(stderr, "%s: no run file given\n", kProgram);
    return false;
  }
  return true;
}

int describe(const std::string& path) {
  try {
    const qwen3::ModelConfig config = qwen3::load_model_config(path);
    std::fputs(qwen3::describe_model(config, path).c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", kProgram, e.what());
    return kExitError;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    print_usage(stdout);
    return 0;
  }
  if (argc == 2 && !std::strcmp(argv[1], "--model-options")) {
    std::printf("Model YAML keys (Hugging Face config.json names):\n%s",
                qwen3::model_config_help().c_str());
    return 0;
  }
  if (argc == 2 && !std::strcmp(argv[1], "--run-options")) {
    std::fputs(qwen3::run_config_help().c_str(), stdout);
    return 0;
  }
  if (argc >= 2 && !std::strcmp(argv[1], "--describe")) {
    if (argc != 3) {
      print_usage(stderr);
      return kExitUsage;
    }
    return describe(argv[2]);
  }
  Arguments args;
  if (!parse_arguments(argc, argv, args)) {
    print_usage(stderr);
    return kExitUsage;
  }

  try {
    // Before anything else, MPI's start-up included: a stop signal that arrives while the job is
    // starting (a scheduler's warning, a requeued job stopped at once) must not kill a rank.
    qwen3::install_stop_signal_handlers();
    qwen3::MpiEnvironment mpi(&argc, &argv);
    auto world = qwen3::MpiCommunicator::world();
    const int rank = world->rank();

    // Every rank validates the run; files may differ between nodes, so the ranks agree on the
    // outcome before any of them starts work, and the lowest failing rank says why.
    qwen3::RunConfig run;
    std::string problem;
    try {
      run = qwen3::load_run_config(args.run_file, args.overrides, world->size());
    } catch (const qwen3::Error& e) {
      problem = qwen3::without_rank_prefix(e.what());
    }
    const int64_t first_failing = world->all_reduce_value(
        static_cast<int64_t>(problem.empty() ? world->size() : rank), qwen3::ReduceOp::Min);
    if (first_failing < world->size()) {
      if (rank == first_failing)
        std::fprintf(stderr, "%s: error%s: %s\n", kProgram,
                     world->size() > 1 ? (" on rank " + std::to_string(rank)).c_str() : "",
                     problem.c_str());
      return kExitError;
    }
    if (args.dump_config) {
      if (rank == 0) std::fputs(qwen3::dump_run_config(run).c_str(), stdout);
      return 0;
    }

    if (!run.checkpoint.save_on_signal) qwen3::restore_default_stop_signals();
    qwen3::ComputeSetup compute = qwen3::make_compute_setup(run.backend, mpi.local_rank(), *world);
    if (rank == 0) std::printf("%s: backend %s\n", kProgram, compute.description.c_str());
    if (rank == 0 && run.backend == "cuda" && compute.peak_flops_per_device <= 0)
      std::printf(
          "%s: the dense bf16 peak of '%s' is unknown (not in core/cuda/device_peaks.cpp): the "
          "log shows achieved TFLOP/s but no MFU\n",
          kProgram, compute.device_name.c_str());
    qwen3::TrainerOptions options;
    options.stop_at_step = args.stop_at_step;
    options.peak_flops_per_device = compute.peak_flops_per_device;
    const qwen3::RunOutcome outcome =
        qwen3::run_training(run, *compute.backend, compute.gradient_comm(*world), *world, options);
    if (outcome == qwen3::RunOutcome::Stopped && rank == 0)
      std::printf(
          "%s: stopped after writing a checkpoint; exit 0 so that a requeued job "
          "resumes\n",
          kProgram);
    return 0;
  } catch (const std::exception& e) {
    qwen3::MpiEnvironment::abort_job(kProgram, e.what());
  }
}
