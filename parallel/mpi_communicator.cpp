#include "parallel/mpi_communicator.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <vector>

#include "core/tensor/bf16.h"
#include "parallel/mpi_bf16.h"
#include "parallel/mpi_check.h"

namespace qwen3 {

namespace {

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return MPI_FLOAT;
    case DType::F64:
      return MPI_DOUBLE;
    case DType::I32:
      return MPI_INT32_T;
    case DType::I64:
      return MPI_INT64_T;
    case DType::BF16:
      return MPI_UINT16_T;
  }
  throw_error("no MPI datatype for this dtype");
}

// Created on first use and left for MPI_Finalize to release.
MPI_Op mpi_op(DType dtype, ReduceOp op) {
  if (dtype != DType::BF16) {
    switch (op) {
      case ReduceOp::Sum:
        return MPI_SUM;
      case ReduceOp::Max:
        return MPI_MAX;
      case ReduceOp::Min:
        return MPI_MIN;
    }
  }
  return bf16_reduce_op(op, true);
}

template <class Combine>
void bf16_combine(void* in, void* inout, int* len, Combine combine) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i)
    b[i] = float_to_bf16_bits(combine(bf16_bits_to_float(a[i]), bf16_bits_to_float(b[i])));
}

void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  bf16_combine(in, inout, len, [](float x, float y) { return x + y; });
}
void bf16_max(void* in, void* inout, int* len, MPI_Datatype*) {
  bf16_combine(in, inout, len, [](float x, float y) { return std::max(x, y); });
}
void bf16_min(void* in, void* inout, int* len, MPI_Datatype*) {
  bf16_combine(in, inout, len, [](float x, float y) { return std::min(x, y); });
}

}  // namespace

MPI_Op bf16_reduce_op(ReduceOp op, bool commutative) {
  static MPI_Op ops[2][3] = {{MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL},
                             {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL}};
  MPI_User_function* functions[3] = {bf16_sum, bf16_max, bf16_min};
  const int index = static_cast<int>(op);
  MPI_Op& made = ops[commutative ? 1 : 0][index];
  if (made == MPI_OP_NULL)
    QWEN3_MPI_CHECK(MPI_Op_create(functions[index], commutative ? 1 : 0, &made));
  return made;
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm) {
  QWEN3_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  QWEN3_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  QWEN3_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::world() {
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
}

MpiCommunicator::~MpiCommunicator() {
  if (std::uncaught_exceptions() > 0) return;  // the job is going down through abort_job
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(int color, int key) const {
  QWEN3_CHECK(color >= 0, "split: color must be non-negative, got {}", color);
  std::unique_ptr<MpiCommunicator> group(new MpiCommunicator());
  QWEN3_MPI_CHECK(MPI_Comm_split(comm_, color, key, &group->comm_));
  QWEN3_MPI_CHECK(MPI_Comm_rank(group->comm_, &group->rank_));
  QWEN3_MPI_CHECK(MPI_Comm_size(group->comm_, &group->size_));
  group->max_piece_ = max_piece_;
  return group;
}

void MpiCommunicator::set_max_piece_elements(size_t elements) {
  QWEN3_CHECK(elements >= 1 && elements <= kMaxPieceElements,
              "max piece must lie in [1, INT_MAX], got {}", elements);
  max_piece_ = elements;
}

void MpiCommunicator::all_reduce_impl(const void* send, void* recv, size_t count, DType dtype,
                                      ReduceOp op, void*) {
  const size_t elem = dtype_size(dtype);
  for (size_t offset = 0; offset < count; offset += max_piece_) {
    const int piece = static_cast<int>(std::min(max_piece_, count - offset));
    char* out = static_cast<char*>(recv) + offset * elem;
    const void* in = send == recv ? MPI_IN_PLACE : static_cast<const char*>(send) + offset * elem;
    QWEN3_MPI_CHECK(MPI_Allreduce(in, out, piece, mpi_type(dtype), mpi_op(dtype, op), comm_));
  }
}

void MpiCommunicator::reduce_scatter_impl(const void* send, void* recv, size_t recv_count,
                                          DType dtype, ReduceOp op, void*) {
  const size_t elem = dtype_size(dtype), ranks = static_cast<size_t>(size_);
  if (recv_count <= max_piece_) {
    QWEN3_MPI_CHECK(MPI_Reduce_scatter_block(send, recv, static_cast<int>(recv_count),
                                             mpi_type(dtype), mpi_op(dtype, op), comm_));
    return;
  }
  // Piece [o, o + p) of every rank's block, packed side by side, reduce-scatters to recv[o, o + p).
  std::vector<char> packed(std::min(max_piece_, recv_count) * ranks * elem);
  for (size_t offset = 0; offset < recv_count; offset += max_piece_) {
    const size_t piece = std::min(max_piece_, recv_count - offset);
    for (size_t r = 0; r < ranks; ++r)
      std::memcpy(packed.data() + r * piece * elem,
                  static_cast<const char*>(send) + (r * recv_count + offset) * elem, piece * elem);
    QWEN3_MPI_CHECK(MPI_Reduce_scatter_block(
        packed.data(), static_cast<char*>(recv) + offset * elem, static_cast<int>(piece),
        mpi_type(dtype), mpi_op(dtype, op), comm_));
  }
}

// One MPI_Reduce per owner of a piece of the window, in rank order on every rank. Host buffers
// give nothing to overlap with on the device, so blocking reduces suffice: the caller's thread
// would have to drive nonblocking ones to completion anyway.
void MpiCommunicator::reduce_scatter_window_impl(const void* send, void* recv, size_t recv_count,
                                                 size_t first, size_t count, DType dtype,
                                                 ReduceOp op, void*) {
  const size_t elem = dtype_size(dtype);
  for (const WindowPiece& piece : window_pieces(recv_count, first, count)) {
    for (size_t offset = 0; offset < piece.count; offset += max_piece_) {
      const int length = static_cast<int>(std::min(max_piece_, piece.count - offset));
      const char* in = static_cast<const char*>(send) + (piece.first + offset) * elem;
      // Significant only at the root.
      char* out = rank_ == piece.root
                      ? static_cast<char*>(recv) + (piece.recv_offset + offset) * elem
                      : nullptr;
      QWEN3_MPI_CHECK(
          MPI_Reduce(in, out, length, mpi_type(dtype), mpi_op(dtype, op), piece.root, comm_));
    }
  }
}

void MpiCommunicator::all_gather_impl(const void* send, void* recv, size_t send_count, DType dtype,
                                      void*) {
  const size_t elem = dtype_size(dtype), ranks = static_cast<size_t>(size_);
  const bool in_place =
      send == static_cast<const char*>(recv) + static_cast<size_t>(rank_) * send_count * elem;
  if (send_count <= max_piece_) {
    QWEN3_MPI_CHECK(MPI_Allgather(in_place ? MPI_IN_PLACE : send, static_cast<int>(send_count),
                                  mpi_type(dtype), recv, static_cast<int>(send_count),
                                  mpi_type(dtype), comm_));
    return;
  }
  // Piece [o, o + p) of every block gathers side by side, then moves to its block. In place, this
  // rank's piece is read before its block is rewritten with the same values.
  std::vector<char> packed(std::min(max_piece_, send_count) * ranks * elem);
  for (size_t offset = 0; offset < send_count; offset += max_piece_) {
    const size_t piece = std::min(max_piece_, send_count - offset);
    QWEN3_MPI_CHECK(MPI_Allgather(static_cast<const char*>(send) + offset * elem,
                                  static_cast<int>(piece), mpi_type(dtype), packed.data(),
                                  static_cast<int>(piece), mpi_type(dtype), comm_));
    for (size_t r = 0; r < ranks; ++r)
      std::memcpy(static_cast<char*>(recv) + (r * send_count + offset) * elem,
                  packed.data() + r * piece * elem, piece * elem);
  }
}

void MpiCommunicator::broadcast_impl(void* buffer, size_t count, DType dtype, int root, void*) {
  const size_t elem = dtype_size(dtype);
  for (size_t offset = 0; offset < count; offset += max_piece_) {
    const int piece = static_cast<int>(std::min(max_piece_, count - offset));
    QWEN3_MPI_CHECK(
        MPI_Bcast(static_cast<char*>(buffer) + offset * elem, piece, mpi_type(dtype), root, comm_));
  }
}

void MpiCommunicator::barrier_impl() {
  QWEN3_MPI_CHECK(MPI_Barrier(comm_));
}

}  // namespace qwen3
