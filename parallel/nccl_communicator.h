#pragma once
// Collectives on device buffers with NCCL, one GPU per rank. Operations are queued on the stream
// passed in (the communicator's own stream when none is), ordered against compute by CUDA events
// rather than host synchronisation. NCCL counts are size_t: no piecewise path is needed.
#include <memory>

#include "parallel/communicator.h"
#include "parallel/mpi_communicator.h"

namespace qwen3 {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `group`: rank 0 of the group creates the NCCL unique id and broadcasts it over
  // MPI, then every rank joins on the current CUDA device (select_device_for_local_rank first).
  explicit NcclCommunicator(MpiCommunicator& group);
  // One rank on the current CUDA device, without MPI (single-GPU tests and tools).
  NcclCommunicator();
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* kind() const override { return "nccl"; }
  Device device() const override { return Device::CUDA; }
  // The communicator's own stream (a cudaStream_t), used when an operation is given none.
  void* stream() const { return stream_; }

 protected:
  void all_reduce_impl(const void* send, void* recv, size_t count, DType dtype, ReduceOp op,
                       void* stream) override;
  void reduce_scatter_impl(const void* send, void* recv, size_t recv_count, DType dtype,
                           ReduceOp op, void* stream) override;
  void reduce_scatter_window_impl(const void* send, void* recv, size_t recv_count, size_t first,
                                  size_t count, DType dtype, ReduceOp op, void* stream) override;
  void all_gather_impl(const void* send, void* recv, size_t send_count, DType dtype,
                       void* stream) override;
  void broadcast_impl(void* buffer, size_t count, DType dtype, int root, void* stream) override;
  void barrier_impl() override;

 private:
  struct State;
  std::unique_ptr<State> state_;
  int rank_ = 0, size_ = 1;
  void* stream_ = nullptr;
};

}  // namespace qwen3
