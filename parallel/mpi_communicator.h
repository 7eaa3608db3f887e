#pragma once
// Collectives on host buffers over an MPI communicator of our own (a duplicate), so that our
// messages never match anyone else's.
#include <mpi.h>

#include <climits>
#include <memory>

#include "parallel/communicator.h"

namespace qwen3 {

class MpiCommunicator final : public Communicator {
 public:
  // Duplicates `comm` (collective over it).
  explicit MpiCommunicator(MPI_Comm comm);
  // A duplicate of MPI_COMM_WORLD.
  static std::unique_ptr<MpiCommunicator> world();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  // Collective: ranks passing the same color form a new group, ordered by key.
  std::unique_ptr<MpiCommunicator> split(int color, int key) const;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* kind() const override { return "mpi"; }
  Device device() const override { return Device::CPU; }
  MPI_Comm handle() const { return comm_; }

  // MPI-3 counts are int: larger operations are issued in pieces of at most this many elements.
  // Lowered by tests to run the piecewise path on small buffers.
  void set_max_piece_elements(size_t elements);
  static constexpr size_t kMaxPieceElements = INT_MAX;

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
  MpiCommunicator() = default;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  size_t max_piece_ = kMaxPieceElements;
};

}  // namespace qwen3
