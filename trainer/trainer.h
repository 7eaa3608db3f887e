#pragma once
// The training run: stages in order, each with its loader, optimizer and schedule; evaluation,
// checkpoints, metrics and graceful stops; and resuming all of it from the newest valid
// checkpoint in the output directory.
#include <cstdio>
#include <string>

#include "core/ops/backend.h"
#include "parallel/communicator.h"
#include "trainer/run_config.h"

namespace qwen3 {

enum class RunOutcome {
  Completed,  // every stage done
  Stopped,    // a stop signal: checkpoint written, resume with the same command
};

struct TrainerOptions {
  // Peak dense bf16 FLOP/s of one device, for MFU in the progress line; 0 when unknown (the CPU).
  double peak_flops_per_device = 0.0;
  // Stop, as on a signal (checkpoint, RunOutcome::Stopped), once this global step is done; 0:
  // never. For jobs that must end before a deadline, and for tests.
  int64_t stop_at_step = 0;
  // Where rank 0 prints progress; nullptr for silence.
  std::FILE* log = stdout;
};

// `comm` carries the flat buffers (MPI on the CPU, NCCL on GPUs); `host_comm` the host scalars
// and checkpoint bookkeeping. Both span every rank of the run.
RunOutcome run_training(const RunConfig& run, Backend& backend, Communicator& comm,
                        Communicator& host_comm, const TrainerOptions& options = {});

}  // namespace qwen3
