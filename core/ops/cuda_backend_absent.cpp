// Builds without a CUDA toolkit: the CUDA backend is named but not there.
#include "core/ops/cuda_backend.h"
#include "core/util/error.h"

namespace qwen3 {

bool cuda_backend_available(std::string* reason) {
  if (reason)
    *reason = "this build has no CUDA (CMake found no CUDA toolkit, or QWEN3_ENABLE_CUDA=OFF)";
  return false;
}

std::unique_ptr<Backend> make_cuda_backend(int) {
  std::string reason;
  cuda_backend_available(&reason);
  throw_error("the CUDA backend cannot start: " + reason);
}

}  // namespace qwen3
