#include "trainer/compute_setup.h"

#include <fmt/format.h>

#include "core/ops/cuda_backend.h"
#include "core/util/error.h"

#ifdef QWEN3_HAVE_NCCL
#include "core/cuda/device.h"
#include "parallel/nccl_communicator.h"
#endif

namespace qwen3 {

ComputeSetup make_compute_setup(const std::string& backend, int local_rank, MpiCommunicator& world,
                                bool with_gradient_comm) {
  ComputeSetup setup;
  if (backend == "cpu") {
    setup.backend = make_cpu_backend();
    setup.description = "cpu (fp32)";
    setup.device_name = "cpu";
    return setup;
  }
  QWEN3_CHECK(backend == "cuda", "unknown backend '{}' (cuda or cpu)", backend);
#ifdef QWEN3_HAVE_NCCL
  std::string reason;
  QWEN3_CHECK(cuda_backend_available(&reason),
              "backend cuda cannot start: {}. Set backend: cpu (--set backend=cpu) to run on the "
              "CPU",
              reason);
  const int device = cuda::select_device_for_local_rank(local_rank);
  setup.backend = make_cuda_backend(device);
  if (with_gradient_comm) setup.device_comm = std::make_unique<NcclCommunicator>(world);
  const cuda::DeviceInfo info = cuda::query_device(device);
  setup.peak_flops_per_device = cuda::peak_bf16_flops(info);
  setup.device_name = info.name;
  setup.description = fmt::format("cuda: {} (sm_{}{}, {:.1f} GiB){}", info.name, info.compute_major,
                                  info.compute_minor, double(info.total_memory_bytes) / (1 << 30),
                                  with_gradient_comm ? ", gradients over NCCL" : "");
  return setup;
#else
  (void)local_rank;
  (void)world;
  (void)with_gradient_comm;
  std::string reason;
  cuda_backend_available(&reason);
  throw_error(fmt::format(
      "backend cuda cannot start: {}. Set backend: cpu (--set backend=cpu), or rebuild where a "
      "CUDA toolkit with NCCL is installed",
      cuda_backend_available(nullptr) ? "NCCL was not found at build time" : reason));
#endif
}

}  // namespace qwen3
