#pragma once
// bfloat16 reductions for MPI, which has no bf16 type: bf16 travels as MPI_UINT16_T words and is
// reduced by these operations, which widen to fp32, combine, and round to nearest even. Created
// on first use and left for MPI_Finalize to release. Shared by the MPI communicator and the
// emulated NCCL (tests/emulator/nccl.cpp).
#include <mpi.h>

#include "parallel/communicator.h"

namespace qwen3 {

// `commutative`: whether MPI may combine the ranks' values in any order. Not commutative, MPI
// combines them in rank order, so every run rounds the same way.
MPI_Op bf16_reduce_op(ReduceOp op, bool commutative);

}  // namespace qwen3
