#include "parallel/communicator.h"

#include <algorithm>
#include <cstring>

#include "core/util/error.h"

namespace qwen3 {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return "sum";
    case ReduceOp::Max:
      return "max";
    case ReduceOp::Min:
      return "min";
  }
  return "?";
}

namespace {

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const char* pa = static_cast<const char*>(a);
  const char* pb = static_cast<const char*>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

void expect_memory(const char* op, const char* arg, const void* p, size_t count) {
  QWEN3_CHECK(p != nullptr || count == 0, "{}: {} buffer is null for {} elements", op, arg, count);
}

}  // namespace

void Communicator::count(size_t payload_bytes, double ring_fraction) {
  stats_.calls += 1;
  stats_.payload_bytes += payload_bytes;
  stats_.ring_bytes_sent += static_cast<uint64_t>(double(payload_bytes) * ring_fraction + 0.5);
}

void Communicator::all_reduce(const void* send, void* recv, size_t count_, DType dtype, ReduceOp op,
                              void* stream) {
  expect_memory("all_reduce", "send", send, count_);
  expect_memory("all_reduce", "recv", recv, count_);
  const size_t bytes = count_ * dtype_size(dtype);
  QWEN3_CHECK(send == recv || !overlaps(send, bytes, recv, bytes),
              "all_reduce: send and recv overlap without being the same buffer");
  const int n = size();
  count(bytes, 2.0 * (n - 1) / n);
  if (count_ > 0) all_reduce_impl(send, recv, count_, dtype, op, stream);
}

void Communicator::reduce_scatter(const void* send, void* recv, size_t recv_count, DType dtype,
                                  ReduceOp op, void* stream) {
  expect_memory("reduce_scatter", "send", send, recv_count);
  expect_memory("reduce_scatter", "recv", recv, recv_count);
  const size_t block = recv_count * dtype_size(dtype), n = static_cast<size_t>(size());
  QWEN3_CHECK(!overlaps(send, block * n, recv, block),
              "reduce_scatter: recv overlaps send; give it a buffer of its own");
  count(block * n, double(n - 1) / double(n));
  if (recv_count > 0) reduce_scatter_impl(send, recv, recv_count, dtype, op, stream);
}

void Communicator::reduce_scatter_window(const void* send, void* recv, size_t recv_count,
                                         size_t first, size_t count_, DType dtype, ReduceOp op,
                                         void* stream) {
  const size_t n = static_cast<size_t>(size());
  QWEN3_CHECK(first <= recv_count * n && count_ <= recv_count * n - first,
              "reduce_scatter_window: window [{}, {}) runs past the {}-element buffer ({} ranks x "
              "{})",
              first, first + count_, recv_count * n, n, recv_count);
  expect_memory("reduce_scatter_window", "send", send, count_);
  expect_memory("reduce_scatter_window", "recv", recv, count_);
  const size_t elem = dtype_size(dtype);
  QWEN3_CHECK(!overlaps(send, recv_count * n * elem, recv, recv_count * elem),
              "reduce_scatter_window: recv overlaps send; give it a buffer of its own");
  count(count_ * elem, double(n - 1) / double(n));
  if (count_ > 0)
    reduce_scatter_window_impl(send, recv, recv_count, first, count_, dtype, op, stream);
}

std::vector<Communicator::WindowPiece> Communicator::window_pieces(size_t recv_count, size_t first,
                                                                   size_t count_) const {
  std::vector<WindowPiece> pieces;
  const size_t end = first + count_;
  for (size_t lo = first; lo < end;) {
    const size_t root = lo / recv_count, block_end = (root + 1) * recv_count;
    const size_t hi = std::min(end, block_end);
    pieces.push_back({static_cast<int>(root), lo, hi - lo, lo - root * recv_count});
    lo = hi;
  }
  return pieces;
}

void Communicator::all_gather(const void* send, void* recv, size_t send_count, DType dtype,
                              void* stream) {
  expect_memory("all_gather", "send", send, send_count);
  expect_memory("all_gather", "recv", recv, send_count);
  const size_t block = send_count * dtype_size(dtype), n = static_cast<size_t>(size());
  const void* own_block = static_cast<const char*>(recv) + block * static_cast<size_t>(rank());
  QWEN3_CHECK(send == own_block || !overlaps(send, block, recv, block * n),
              "all_gather: send overlaps recv but is not this rank's block of it (in place means "
              "send == recv + rank · send_count)");
  count(block * n, double(n - 1) / double(n));
  if (send_count > 0) all_gather_impl(send, recv, send_count, dtype, stream);
}

void Communicator::broadcast(void* buffer, size_t count_, DType dtype, int root, void* stream) {
  expect_memory("broadcast", "buffer", buffer, count_);
  QWEN3_CHECK(root >= 0 && root < size(), "broadcast: root {} is not a rank of this {}-rank group",
              root, size());
  count(count_ * dtype_size(dtype), size() > 1 ? 1.0 : 0.0);
  if (count_ > 0) broadcast_impl(buffer, count_, dtype, root, stream);
}

void Communicator::barrier() {
  stats_.calls += 1;
  barrier_impl();
}

namespace {

void expect_on(const Communicator& comm, const char* op, const char* arg, const TensorView& t) {
  QWEN3_CHECK(t.device == comm.device(), "{}: {} is on {}, the {} communicator needs {}", op, arg,
              device_name(t.device), comm.kind(), device_name(comm.device()));
}

}  // namespace

void Communicator::all_reduce(const TensorView& buffer, ReduceOp op, void* stream) {
  expect_on(*this, "all_reduce", "buffer", buffer);
  all_reduce(buffer.data, buffer.data, static_cast<size_t>(buffer.numel()), buffer.dtype, op,
             stream);
}

void Communicator::reduce_scatter(const TensorView& send, const TensorView& recv, ReduceOp op,
                                  void* stream) {
  expect_on(*this, "reduce_scatter", "send", send);
  expect_on(*this, "reduce_scatter", "recv", recv);
  QWEN3_CHECK(send.dtype == recv.dtype, "reduce_scatter: send is {}, recv is {}",
              dtype_name(send.dtype), dtype_name(recv.dtype));
  QWEN3_CHECK(send.numel() == recv.numel() * size(),
              "reduce_scatter: send holds {} elements, expected {} ranks x {}", send.numel(),
              size(), recv.numel());
  reduce_scatter(send.data, recv.data, static_cast<size_t>(recv.numel()), recv.dtype, op, stream);
}

void Communicator::reduce_scatter_window(const TensorView& send, const TensorView& recv,
                                         int64_t first, int64_t count_, ReduceOp op, void* stream) {
  expect_on(*this, "reduce_scatter_window", "send", send);
  expect_on(*this, "reduce_scatter_window", "recv", recv);
  QWEN3_CHECK(send.dtype == recv.dtype, "reduce_scatter_window: send is {}, recv is {}",
              dtype_name(send.dtype), dtype_name(recv.dtype));
  QWEN3_CHECK(send.numel() == recv.numel() * size(),
              "reduce_scatter_window: send holds {} elements, expected {} ranks x {}", send.numel(),
              size(), recv.numel());
  QWEN3_CHECK(first >= 0 && count_ >= 0, "reduce_scatter_window: window [{}, {}) is negative",
              first, first + count_);
  reduce_scatter_window(send.data, recv.data, static_cast<size_t>(recv.numel()),
                        static_cast<size_t>(first), static_cast<size_t>(count_), recv.dtype, op,
                        stream);
}

void Communicator::all_gather(const TensorView& send, const TensorView& recv, void* stream) {
  expect_on(*this, "all_gather", "send", send);
  expect_on(*this, "all_gather", "recv", recv);
  QWEN3_CHECK(send.dtype == recv.dtype, "all_gather: send is {}, recv is {}",
              dtype_name(send.dtype), dtype_name(recv.dtype));
  QWEN3_CHECK(recv.numel() == send.numel() * size(),
              "all_gather: recv holds {} elements, expected {} ranks x {}", recv.numel(), size(),
              send.numel());
  all_gather(send.data, recv.data, static_cast<size_t>(send.numel()), send.dtype, stream);
}

double Communicator::all_reduce_value(double value, ReduceOp op) {
  QWEN3_CHECK(device() == Device::CPU, "all_reduce_value needs a host communicator, not {}",
              kind());
  all_reduce(&value, &value, 1, DType::F64, op);
  return value;
}

int64_t Communicator::all_reduce_value(int64_t value, ReduceOp op) {
  QWEN3_CHECK(device() == Device::CPU, "all_reduce_value needs a host communicator, not {}",
              kind());
  all_reduce(&value, &value, 1, DType::I64, op);
  return value;
}

void SingleRankCommunicator::all_reduce_impl(const void* send, void* recv, size_t count,
                                             DType dtype, ReduceOp, void*) {
  if (send != recv) std::memcpy(recv, send, count * dtype_size(dtype));
}

void SingleRankCommunicator::reduce_scatter_impl(const void* send, void* recv, size_t recv_count,
                                                 DType dtype, ReduceOp, void*) {
  std::memcpy(recv, send, recv_count * dtype_size(dtype));
}

void SingleRankCommunicator::reduce_scatter_window_impl(const void* send, void* recv, size_t,
                                                        size_t first, size_t count, DType dtype,
                                                        ReduceOp, void*) {
  const size_t elem = dtype_size(dtype);
  std::memcpy(static_cast<char*>(recv) + first * elem,
              static_cast<const char*>(send) + first * elem, count * elem);
}

void SingleRankCommunicator::all_gather_impl(const void* send, void* recv, size_t send_count,
                                             DType dtype, void*) {
  if (send != recv) std::memcpy(recv, send, send_count * dtype_size(dtype));
}

}  // namespace qwen3
