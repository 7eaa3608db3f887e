#pragma once
// Checked calls for cuDNN and cudnn-frontend: the cuDNN members of the one check family in
// core/util/error.h (core/cuda/check.h has the CUDA runtime's, cuBLASLt's and NCCL's). Only the
// files built with cuDNN include this.
#include <cudnn.h>
#include <cudnn_frontend.h>

#include <string>

#include "core/util/error.h"

#define QWEN3_CUDNN_CHECK(call)                                    \
  QWEN3_CALL_CHECK("cuDNN", call, status_ == CUDNN_STATUS_SUCCESS, \
                   std::string(cudnnGetErrorString(status_)))

// cudnn-frontend returns an error_t (a code and a message) rather than a status number.
#define QWEN3_CUDNN_FE_CHECK(call)                                               \
  do {                                                                           \
    cudnn_frontend::error_t fe_status_ = (call);                                 \
    if (fe_status_.is_bad())                                                     \
      ::qwen3::throw_call_failure("cudnn-frontend", #call,                       \
                                  static_cast<long long>(fe_status_.get_code()), \
                                  fe_status_.get_message(), __FILE__, __LINE__); \
  } while (0)
