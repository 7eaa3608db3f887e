// Builds without cuDNN (or without cudnn-frontend's headers): no fused attention to offer.
#include "core/kernels/cuda/attention_cudnn.h"

namespace qwen3::cuda {

bool cudnn_in_build() {
  return false;
}

std::unique_ptr<CudnnAttention> make_cudnn_attention(std::string* why_not) {
  if (why_not != nullptr)
    *why_not =
        "this build has no cuDNN (CMake found no cudnn.h, libcudnn or cudnn-frontend headers: "
        "scripts/setup.sh with test tools installs them)";
  return nullptr;
}

}  // namespace qwen3::cuda
