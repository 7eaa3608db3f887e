#pragma once
// Checked calls for the CUDA runtime, cuBLAS/cuBLASLt and NCCL: the CUDA members of the one check
// family in core/util/error.h. On failure they throw qwen3::Error naming the rank, the call as
// written, the status and its description, and the file and line.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include "core/util/error.h"

#define QWEN3_CUDA_CHECK(call)                           \
  QWEN3_CALL_CHECK("CUDA", call, status_ == cudaSuccess, \
                   std::string(cudaGetErrorName(status_)) + ": " + cudaGetErrorString(status_))

#define QWEN3_CUBLAS_CHECK(call)                        \
  QWEN3_CALL_CHECK(                                     \
      "cuBLAS", call, status_ == CUBLAS_STATUS_SUCCESS, \
      std::string(cublasLtGetStatusName(status_)) + ": " + cublasLtGetStatusString(status_))

#define QWEN3_NCCL_CHECK(call) \
  QWEN3_CALL_CHECK("NCCL", call, status_ == ncclSuccess, std::string(ncclGetErrorString(status_)))

// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define QWEN3_CUDA_CHECK_LAUNCH() QWEN3_CUDA_CHECK(cudaGetLastError())
