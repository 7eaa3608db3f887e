#include "parallel/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <vector>

#include "core/cuda/check.h"

namespace qwen3 {

namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return ncclFloat32;
    case DType::BF16:
      return ncclBfloat16;
    case DType::F64:
      return ncclFloat64;
    case DType::I32:
      return ncclInt32;
    case DType::I64:
      return ncclInt64;
  }
  throw_error("no NCCL datatype for this dtype");
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return ncclSum;
    case ReduceOp::Max:
      return ncclMax;
    case ReduceOp::Min:
      return ncclMin;
  }
  throw_error("no NCCL reduction for this op");
}

}  // namespace

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  float* barrier_scratch = nullptr;  // one float on the device, all-reduced by barrier()
};

NcclCommunicator::NcclCommunicator(MpiCommunicator& group)
    : state_(std::make_unique<State>()), rank_(group.rank()), size_(group.size()) {
  ncclUniqueId id;
  if (rank_ == 0) QWEN3_NCCL_CHECK(ncclGetUniqueId(&id));
  static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0, "the NCCL id travels as int32 words");
  group.broadcast(&id, sizeof(id) / sizeof(int32_t), DType::I32, 0);
  QWEN3_CUDA_CHECK(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking));
  QWEN3_CUDA_CHECK(cudaMalloc(&state_->barrier_scratch, sizeof(float)));
  // On the communicator's non-blocking stream, which the legacy stream's cudaMemset would not
  // be ordered before.
  QWEN3_CUDA_CHECK(cudaMemsetAsync(state_->barrier_scratch, 0, sizeof(float), state_->stream));
  QWEN3_NCCL_CHECK(ncclCommInitRank(&state_->comm, size_, id, rank_));
  stream_ = state_->stream;
}

NcclCommunicator::NcclCommunicator() : state_(std::make_unique<State>()), rank_(0), size_(1) {
  int device = 0;
  QWEN3_CUDA_CHECK(cudaGetDevice(&device));
  QWEN3_CUDA_CHECK(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking));
  QWEN3_CUDA_CHECK(cudaMalloc(&state_->barrier_scratch, sizeof(float)));
  QWEN3_CUDA_CHECK(cudaMemsetAsync(state_->barrier_scratch, 0, sizeof(float), state_->stream));
  QWEN3_NCCL_CHECK(ncclCommInitAll(&state_->comm, 1, &device));
  stream_ = state_->stream;
}

NcclCommunicator::~NcclCommunicator() {
  // Destructors do not throw: failures here are ignored, the process is ending or moving on.
  if (state_->comm) ncclCommDestroy(state_->comm);
  if (state_->barrier_scratch) cudaFree(state_->barrier_scratch);
  if (state_->stream) cudaStreamDestroy(state_->stream);
}

namespace {

cudaStream_t pick(void* given, cudaStream_t own) {
  return given ? static_cast<cudaStream_t>(given) : own;
}

}  // namespace

void NcclCommunicator::all_reduce_impl(const void* send, void* recv, size_t count, DType dtype,
                                       ReduceOp op, void* stream) {
  QWEN3_NCCL_CHECK(ncclAllReduce(send, recv, count, nccl_type(dtype), nccl_op(op), state_->comm,
                                 pick(stream, state_->stream)));
}

void NcclCommunicator::reduce_scatter_impl(const void* send, void* recv, size_t recv_count,
                                           DType dtype, ReduceOp op, void* stream) {
  QWEN3_NCCL_CHECK(ncclReduceScatter(send, recv, recv_count, nccl_type(dtype), nccl_op(op),
                                     state_->comm, pick(stream, state_->stream)));
}

// One ncclReduce per owner of a piece of the window, fused into one group so that NCCL runs them
// as a single operation on the stream rather than one after another.
void NcclCommunicator::reduce_scatter_window_impl(const void* send, void* recv, size_t recv_count,
                                                  size_t first, size_t count, DType dtype,
                                                  ReduceOp op, void* stream) {
  const size_t elem = dtype_size(dtype);
  const std::vector<WindowPiece> pieces = window_pieces(recv_count, first, count);
  QWEN3_NCCL_CHECK(ncclGroupStart());
  for (const WindowPiece& piece : pieces) {
    const char* in = static_cast<const char*>(send) + piece.first * elem;
    // ncclReduce writes recvbuff on the root only; the other ranks pass none.
    char* out = rank_ == piece.root ? static_cast<char*>(recv) + piece.recv_offset * elem : nullptr;
    QWEN3_NCCL_CHECK(ncclReduce(in, out, piece.count, nccl_type(dtype), nccl_op(op), piece.root,
                                state_->comm, pick(stream, state_->stream)));
  }
  QWEN3_NCCL_CHECK(ncclGroupEnd());
}

void NcclCommunicator::all_gather_impl(const void* send, void* recv, size_t send_count, DType dtype,
                                       void* stream) {
  QWEN3_NCCL_CHECK(ncclAllGather(send, recv, send_count, nccl_type(dtype), state_->comm,
                                 pick(stream, state_->stream)));
}

void NcclCommunicator::broadcast_impl(void* buffer, size_t count, DType dtype, int root,
                                      void* stream) {
  QWEN3_NCCL_CHECK(ncclBroadcast(buffer, buffer, count, nccl_type(dtype), root, state_->comm,
                                 pick(stream, state_->stream)));
}

void NcclCommunicator::barrier_impl() {
  QWEN3_NCCL_CHECK(ncclAllReduce(state_->barrier_scratch, state_->barrier_scratch, 1, ncclFloat32,
                                 ncclSum, state_->comm, state_->stream));
  QWEN3_CUDA_CHECK(cudaStreamSynchronize(state_->stream));
}

}  // namespace qwen3
