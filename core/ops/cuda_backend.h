#pragma once
// The CUDA backend: bf16 weights, gradients and activations, fp32 accumulation, fp32 statistics
// and optimizer state. Every op is queued on the backend's own stream; the host waits only where
// it reads a result (download, sum_squares, synchronize). A second, side stream runs the gradient
// collectives beside the backward pass, ordered against the first by events (Backend::side_stream).
//
// Built only where CMake found a CUDA toolkit (QWEN3_HAVE_CUDA); the declarations are always here
// so that callers can name the backend and ask whether it is available.
#include <memory>
#include <string>

#include "core/ops/backend.h"

namespace qwen3 {

// Whether this build has the CUDA backend and a GPU it can use; when not, `reason` says why
// ("built without CUDA", "no CUDA device: ...").
bool cuda_backend_available(std::string* reason = nullptr);

// The CUDA backend on GPU `device` (the calling thread's current device when -1). Throws when
// the build has no CUDA or the device does not exist.
std::unique_ptr<Backend> make_cuda_backend(int device = -1);

}  // namespace qwen3
