#pragma once
// A communicator: the ranks of one group and the collectives between them. Bound to its group,
// never to global state, so a job can hold several (the world, a node, a data-parallel group).
//
// Implementations:
//  * MpiCommunicator (mpi_communicator.h): host buffers. CPU training and the small host-side
//    reductions of every run (loss sums, token counts, norms).
//  * NcclCommunicator (nccl_communicator.h): device buffers, ordered on a CUDA stream.
//  * SingleRankCommunicator (below): one rank, host buffers; collectives are copies.
//
// Buffers are raw pointers with an element count and a DType; counts are size_t and may exceed
// INT_MAX. `stream` is a cudaStream_t for NCCL and ignored by the host communicators. Public
// methods check their arguments and count traffic once, here, then call the implementation.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor/tensor.h"

namespace qwen3 {

enum class ReduceOp { Sum, Max, Min };
const char* reduce_op_name(ReduceOp op);

// Traffic asked of a communicator. `ring_bytes_sent` is what this rank sends when each collective
// runs as a ring, the algorithm NCCL uses for large messages: all-reduce 2(N−1)/N of the buffer,
// reduce-scatter and all-gather (N−1)/N of the full buffer, broadcast the buffer once. A window of
// a reduce-scatter counts (N−1)/N of the window, so windows that tile a buffer count what one
// reduce-scatter of it counts (each piece goes to its owner; every other rank sends it once).
struct CommStats {
  int64_t calls = 0;
  uint64_t payload_bytes = 0;  // bytes of the buffers handed in (all_gather: the full output)
  uint64_t ring_bytes_sent = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* kind() const = 0;  // "mpi", "nccl", "single"
  virtual Device device() const = 0;     // where buffers must live

  // recv[count] = op over ranks of send[count]. In place when send == recv.
  void all_reduce(const void* send, void* recv, size_t count, DType dtype, ReduceOp op,
                  void* stream = nullptr);
  // send[size · recv_count]; rank r receives op over ranks of send[r·recv_count, (r+1)·recv_count)
  // in recv[recv_count]. recv must not overlap send.
  void reduce_scatter(const void* send, void* recv, size_t recv_count, DType dtype, ReduceOp op,
                      void* stream = nullptr);
  // One window of a reduce_scatter: of send[size · recv_count], only elements [first, first +
  // count) take part. Each rank whose block [r·recv_count, (r+1)·recv_count) meets the window
  // receives op over ranks of that overlap, at the overlap's offset in recv[recv_count]; the rest
  // of recv is left as it is, and ranks whose block misses the window receive nothing. Windows
  // that tile send give together what one reduce_scatter gives. recv must not overlap send.
  void reduce_scatter_window(const void* send, void* recv, size_t recv_count, size_t first,
                             size_t count, DType dtype, ReduceOp op, void* stream = nullptr);
  // recv[size · send_count]; block r is rank r's send. In place when send == recv +
  // rank·send_count.
  void all_gather(const void* send, void* recv, size_t send_count, DType dtype,
                  void* stream = nullptr);
  // buffer[count] on every rank becomes root's.
  void broadcast(void* buffer, size_t count, DType dtype, int root, void* stream = nullptr);
  // Returns once every rank has entered (and, for NCCL, the work queued before it has finished).
  void barrier();

  // Views: checked against device(), sizes taken from the shapes.
  void all_reduce(const TensorView& buffer, ReduceOp op = ReduceOp::Sum, void* stream = nullptr);
  void reduce_scatter(const TensorView& send, const TensorView& recv, ReduceOp op = ReduceOp::Sum,
                      void* stream = nullptr);
  // send[size · recv_count] whole, the window given by [first, first + count).
  void reduce_scatter_window(const TensorView& send, const TensorView& recv, int64_t first,
                             int64_t count, ReduceOp op = ReduceOp::Sum, void* stream = nullptr);
  void all_gather(const TensorView& send, const TensorView& recv, void* stream = nullptr);

  // One host value summed (or maxed, ...) over ranks; host communicators only.
  double all_reduce_value(double value, ReduceOp op = ReduceOp::Sum);
  int64_t all_reduce_value(int64_t value, ReduceOp op = ReduceOp::Sum);

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  virtual void all_reduce_impl(const void* send, void* recv, size_t count, DType dtype, ReduceOp op,
                               void* stream) = 0;
  virtual void reduce_scatter_impl(const void* send, void* recv, size_t recv_count, DType dtype,
                                   ReduceOp op, void* stream) = 0;
  virtual void reduce_scatter_window_impl(const void* send, void* recv, size_t recv_count,
                                          size_t first, size_t count, DType dtype, ReduceOp op,
                                          void* stream) = 0;
  virtual void all_gather_impl(const void* send, void* recv, size_t send_count, DType dtype,
                               void* stream) = 0;
  virtual void broadcast_impl(void* buffer, size_t count, DType dtype, int root, void* stream) = 0;
  virtual void barrier_impl() = 0;

  // A reduce_scatter window cut at the block boundaries: elements [first, first + count) of send
  // belong to rank `root`'s block and land at recv[recv_offset] there.
  struct WindowPiece {
    int root;
    size_t first, count, recv_offset;
  };
  std::vector<WindowPiece> window_pieces(size_t recv_count, size_t first, size_t count) const;

 private:
  void count(size_t payload_bytes, double ring_fraction);
  CommStats stats_;
};

// One rank on the host: every collective is a copy (or nothing, in place).
class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* kind() const override { return "single"; }
  Device device() const override { return Device::CPU; }

 protected:
  void all_reduce_impl(const void* send, void* recv, size_t count, DType dtype, ReduceOp op,
                       void* stream) override;
  void reduce_scatter_impl(const void* send, void* recv, size_t recv_count, DType dtype,
                           ReduceOp op, void* stream) override;
  void reduce_scatter_window_impl(const void* send, void* recv, size_t recv_count, size_t first,
                                  size_t count, DType dtype, ReduceOp op, void* stream) override;
  void all_gather_impl(const void* send, void* recv, size_t send_count, DType dtype,
                       void* stream) override;
  void broadcast_impl(void*, size_t, DType, int, void*) override {}
  void barrier_impl() override {}
};

}  // namespace qwen3
