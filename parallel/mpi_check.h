#pragma once
// QWEN3_MPI_CHECK: the MPI member of the project's call-check family (core/util/error.h). MPI calls
// return their error codes because MpiEnvironment sets MPI_ERRORS_RETURN on MPI_COMM_WORLD, and
// communicators duplicated from it inherit that handler.
#include <mpi.h>

#include <string>

#include "core/util/error.h"

namespace qwen3 {

// MPI's own text for an error code.
std::string mpi_error_string(int code);

}  // namespace qwen3

#define QWEN3_MPI_CHECK(call) \
  QWEN3_CALL_CHECK("MPI", call, status_ == MPI_SUCCESS, ::qwen3::mpi_error_string(status_))
