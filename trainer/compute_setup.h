#pragma once
// The backend a run computes on and the communicator its gradients travel over, chosen by name:
//  * "cpu":  the fp32 CPU backend; gradients over MPI (the world communicator).
//  * "cuda": the bf16 CUDA backend on GPU `local_rank` of this node; gradients over NCCL, queued
//            on the backend's stream. Scalars (losses, token counts, norms) still go over MPI.
#include <memory>
#include <string>

#include "core/ops/backend.h"
#include "parallel/communicator.h"
#include "parallel/mpi_communicator.h"

namespace qwen3 {

struct ComputeSetup {
  std::unique_ptr<Backend> backend;
  // Set for device backends; null where the world communicator carries the gradients too.
  std::unique_ptr<Communicator> device_comm;
  // bf16 dense peak of one device in FLOP/s for MFU; 0 where unknown (then no MFU is printed).
  double peak_flops_per_device = 0.0;
  // "cpu (fp32)", "cuda: NVIDIA H200 (sm_90, 139.8 GiB)"
  std::string description;
  // "cpu", or the GPU's name as the driver reports it ("NVIDIA H200"): device_peaks.h's key.
  std::string device_name;

  Communicator& gradient_comm(MpiCommunicator& world) {
    return device_comm ? *device_comm : static_cast<Communicator&>(world);
  }
};

// Collective over `world` for "cuda" with a gradient communicator (every rank joins NCCL);
// `with_gradient_comm` false makes none (evaluation reduces host scalars only). Throws, naming the
// backend and what is missing, when it cannot start (no CUDA in this build, fewer GPUs than ranks
// on this node).
ComputeSetup make_compute_setup(const std::string& backend, int local_rank, MpiCommunicator& world,
                                bool with_gradient_comm = true);

}  // namespace qwen3
