// The NCCL stand-in under mpirun on 1-4 ranks. Known answers from NCCL's documented semantics:
// each rank's input is a function of (rank, index) with small integer values, exact in bf16 and
// in any summation order, so every rank computes the expected result by itself. Then the project's
// NcclCommunicator over the stand-in against its MpiCommunicator on the same data, random values,
// bit for bit. Counts are multiples of nothing.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <nccl.h>

#include "core/tensor/bf16.h"
#include "core/util/rng.h"
#include "parallel/mpi_communicator.h"
#include "parallel/nccl_communicator.h"
#include "tests/emulator/runtime.h"

namespace qwen3 {
namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Rank r's element i: small integers, some negative.
double input(int r, size_t i) {
  return double((r + 1) * int(i % 7)) - 3.0 * r;
}

// Device memory of n elements of T, read and written through the host (the emulator's device
// memory is host memory), the reads after a device synchronisation.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(&data_, n * sizeof(T)), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(data_); }
  T* data() const { return data_; }
  void set(const std::vector<T>& values) {
    ASSERT_EQ(cudaMemcpy(data_, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  std::vector<T> get() const {
    std::vector<T> values(n_);
    cudaDeviceSynchronize();
    cudaMemcpy(values.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return values;
  }

 private:
  size_t n_;
  T* data_ = nullptr;
};

// One NCCL communicator over the world for the whole test run, as the project makes one.
struct World {
  World() {
    ncclUniqueId id;
    if (world_rank() == 0) ncclGetUniqueId(&id);
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    EXPECT_EQ(ncclCommInitRank(&comm, world_size(), id, world_rank()), ncclSuccess);
    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  }
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
};

World& world() {
  static World w;
  return w;
}

// The stand-in's element types as the tests write them.
template <class T>
T from_double(double x) {
  return static_cast<T>(x);
}
template <>
uint16_t from_double<uint16_t>(double x) {
  return float_to_bf16_bits(static_cast<float>(x));
}
template <class T>
double to_double(T x) {
  return static_cast<double>(x);
}
template <>
double to_double<uint16_t>(uint16_t x) {
  return bf16_bits_to_float(x);
}

template <class T>
std::vector<T> rank_input(int r, size_t n) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = from_double<T>(input(r, i));
  return v;
}

double reduce_expected(ncclRedOp_t op, size_t i) {
  double x = input(0, i);
  for (int r = 1; r < world_size(); ++r) {
    const double y = input(r, i);
    x = op == ncclSum ? x + y : op == ncclMax ? std::max(x, y) : std::min(x, y);
  }
  return x;
}

template <class T>
void check_all_reduce(ncclDataType_t type, ncclRedOp_t op, bool in_place) {
  const size_t n = 1001;
  DeviceArray<T> send(n), recv(n);
  send.set(rank_input<T>(world_rank(), n));
  ASSERT_EQ(ncclAllReduce(send.data(), in_place ? send.data() : recv.data(), n, type, op,
                          world().comm, world().stream),
            ncclSuccess);
  const std::vector<T> got = (in_place ? send : recv).get();
  for (size_t i = 0; i < n; ++i)
    ASSERT_EQ(to_double(got[i]), reduce_expected(op, i))
        << "type " << type << " op " << op << (in_place ? " in place" : "") << " at " << i;
}

TEST(EmulatedNccl, AllReduceEveryTypeAndOp) {
  for (bool in_place : {false, true}) {
    check_all_reduce<float>(ncclFloat32, ncclSum, in_place);
    check_all_reduce<double>(ncclFloat64, ncclSum, in_place);
    check_all_reduce<int32_t>(ncclInt32, ncclSum, in_place);
    check_all_reduce<int64_t>(ncclInt64, ncclSum, in_place);
    check_all_reduce<uint16_t>(ncclBfloat16, ncclSum, in_place);
    for (ncclRedOp_t op : {ncclMax, ncclMin}) {
      check_all_reduce<float>(ncclFloat32, op, in_place);
      check_all_reduce<uint16_t>(ncclBfloat16, op, in_place);
    }
  }
}

// recvbuff is this rank's block of the reduced sendbuff; in place it is that block of sendbuff.
TEST(EmulatedNccl, ReduceScatterInAndOutOfPlace) {
  const size_t block = 37, n = block * size_t(world_size());
  for (bool in_place : {false, true}) {
    DeviceArray<float> send(n), recv(block);
    send.set(rank_input<float>(world_rank(), n));
    float* out = in_place ? send.data() + block * size_t(world_rank()) : recv.data();
    ASSERT_EQ(ncclReduceScatter(send.data(), out, block, ncclFloat32, ncclSum, world().comm,
                                world().stream),
              ncclSuccess);
    const std::vector<float> all = (in_place ? send : recv).get();
    const size_t offset = in_place ? block * size_t(world_rank()) : 0;
    for (size_t i = 0; i < block; ++i)
      ASSERT_EQ(all[offset + i], reduce_expected(ncclSum, block * size_t(world_rank()) + i))
          << (in_place ? "in place" : "out of place") << " at " << i;
  }
}

TEST(EmulatedNccl, AllGatherInAndOutOfPlace) {
  const size_t block = 29, n = block * size_t(world_size());
  for (bool in_place : {false, true}) {
    DeviceArray<int32_t> send(block), recv(n);
    int32_t* in = in_place ? recv.data() + block * size_t(world_rank()) : send.data();
    std::vector<int32_t> mine(block);
    for (size_t i = 0; i < block; ++i)
      mine[i] = int32_t(input(world_rank(), i));
    ASSERT_EQ(cudaMemcpy(in, mine.data(), block * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(ncclAllGather(in, recv.data(), block, ncclInt32, world().comm, world().stream),
              ncclSuccess);
    const std::vector<int32_t> got = recv.get();
    for (int r = 0; r < world_size(); ++r)
      for (size_t i = 0; i < block; ++i)
        ASSERT_EQ(got[size_t(r) * block + i], int32_t(input(r, i))) << "rank " << r << " at " << i;
  }
}

TEST(EmulatedNccl, BroadcastAndReduceFromEveryRoot) {
  const size_t n = 53;
  for (int root = 0; root < world_size(); ++root) {
    DeviceArray<double> buffer(n), reduced(n);
    buffer.set(rank_input<double>(world_rank(), n));
    ASSERT_EQ(ncclBroadcast(buffer.data(), buffer.data(), n, ncclFloat64, root, world().comm,
                            world().stream),
              ncclSuccess);
    const std::vector<double> got = buffer.get();
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(got[i], input(root, i)) << "broadcast from " << root;

    buffer.set(rank_input<double>(world_rank(), n));
    reduced.set(std::vector<double>(n, -1.0));
    // ncclReduce writes the root's recvbuff only; the others pass none.
    ASSERT_EQ(ncclReduce(buffer.data(), world_rank() == root ? reduced.data() : nullptr, n,
                         ncclFloat64, ncclSum, root, world().comm, world().stream),
              ncclSuccess);
    const std::vector<double> sum = reduced.get();
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(sum[i], world_rank() == root ? reduce_expected(ncclSum, i) : -1.0)
          << "reduce to " << root;
  }
}

// Collectives between ncclGroupStart and ncclGroupEnd are held and then queued in call order.
TEST(EmulatedNccl, AGroupRunsItsCollectivesAtTheEnd) {
  const size_t n = 11;
  DeviceArray<float> a(n), b(n);
  a.set(rank_input<float>(world_rank(), n));
  b.set(rank_input<float>(world_rank(), n));
  cudaDeviceSynchronize();
  const size_t before = emulator::nccl::collectives_run();
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ncclAllReduce(a.data(), a.data(), n, ncclFloat32, ncclSum, world().comm, world().stream);
  ncclAllReduce(b.data(), b.data(), n, ncclFloat32, ncclMax, world().comm, world().stream);
  EXPECT_EQ(emulator::queued_operations(), 0u) << "queued before ncclGroupEnd";
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(a.get()[3], reduce_expected(ncclSum, 3));
  EXPECT_EQ(b.get()[3], reduce_expected(ncclMax, 3));
  EXPECT_EQ(emulator::nccl::collectives_run(), before + 2);
  EXPECT_EQ(ncclGroupEnd(), ncclInvalidUsage);
}

// In the latest stream order a collective runs when its stream is synchronised: the result read
// before that is the buffer's old contents.
TEST(EmulatedNccl, ACollectiveRunsInStreamOrder) {
  ASSERT_EQ(emulator::stream_order(), emulator::StreamOrder::kLatest);
  const size_t n = 5;
  DeviceArray<float> x(n);
  x.set(rank_input<float>(world_rank(), n));
  ASSERT_EQ(
      ncclAllReduce(x.data(), x.data(), n, ncclFloat32, ncclSum, world().comm, world().stream),
      ncclSuccess);
  EXPECT_EQ(x.data()[2], float(input(world_rank(), 2))) << "ran before its stream was synchronised";
  ASSERT_EQ(cudaStreamSynchronize(world().stream), cudaSuccess);
  EXPECT_EQ(x.data()[2], reduce_expected(ncclSum, 2));
}

TEST(EmulatedNccl, WrongCountsTypesAndBuffersAreRefused) {
  DeviceArray<float> x(10);
  std::vector<float> host(10);
  cudaDeviceSynchronize();
  EXPECT_EQ(
      ncclAllReduce(x.data(), x.data(), 11, ncclFloat32, ncclSum, world().comm, world().stream),
      ncclInvalidArgument)
      << "a count past the allocation";
  EXPECT_EQ(ncclAllReduce(host.data(), host.data(), 10, ncclFloat32, ncclSum, world().comm,
                          world().stream),
            ncclInvalidArgument)
      << "host memory";
  EXPECT_EQ(
      ncclAllReduce(x.data(), x.data(), 10, ncclFloat16, ncclSum, world().comm, world().stream),
      ncclInvalidArgument)
      << "fp16 is not used, so not emulated";
  EXPECT_EQ(
      ncclAllReduce(x.data(), x.data(), 10, ncclFloat32, ncclProd, world().comm, world().stream),
      ncclInvalidArgument);
  EXPECT_EQ(ncclBroadcast(x.data(), x.data(), 10, ncclFloat32, world_size(), world().comm,
                          world().stream),
            ncclInvalidArgument)
      << "a root past the last rank";
  EXPECT_EQ(emulator::queued_operations(), 0u) << "a refused call queued work";
  EXPECT_EQ(
      ncclReduceScatter(x.data(), x.data(), 10, ncclFloat32, ncclSum, world().comm, world().stream),
      world_size() == 1 ? ncclSuccess : ncclInvalidArgument)
      << "a send buffer shorter than size x recvcount";
  cudaDeviceSynchronize();
}

// The project's NcclCommunicator over the stand-in against its MpiCommunicator on host memory:
// the same bits for every collective, the reduce-scatter window included.
TEST(EmulatedNccl, TheNcclCommunicatorMatchesTheMpiCommunicator) {
  auto mpi = MpiCommunicator::world();
  NcclCommunicator nccl(*mpi);
  ASSERT_EQ(nccl.rank(), world_rank());
  ASSERT_EQ(nccl.size(), world_size());
  const size_t block = 41, n = block * size_t(world_size());
  std::vector<float> values(n);
  fill_normal(values.data(), int64_t(n), 0.0, 1.0, 91, uint64_t(world_rank()));

  std::vector<float> host = values;
  DeviceArray<float> device(n);
  device.set(values);
  mpi->all_reduce(host.data(), host.data(), n, DType::F32, ReduceOp::Sum);
  nccl.all_reduce(device.data(), device.data(), n, DType::F32, ReduceOp::Sum, nullptr);
  EXPECT_EQ(device.get(), host) << "all_reduce";

  std::vector<float> host_piece(block, -1.0f);
  DeviceArray<float> send(n), piece(block);
  send.set(values);
  piece.set(host_piece);
  mpi->reduce_scatter(values.data(), host_piece.data(), block, DType::F32, ReduceOp::Sum);
  nccl.reduce_scatter(send.data(), piece.data(), block, DType::F32, ReduceOp::Sum, nullptr);
  EXPECT_EQ(piece.get(), host_piece) << "reduce_scatter";

  // Windows that straddle ranks' blocks, as the bucketed reduction issues them.
  const std::pair<size_t, size_t> windows[] = {{5, std::min(block + 3, n - 5)}, {n / 3, n / 2}};
  for (const auto& [first, count] : windows) {
    std::vector<float> host_window(block, -2.0f);
    piece.set(host_window);
    mpi->reduce_scatter_window(values.data(), host_window.data(), block, first, count, DType::F32,
                               ReduceOp::Sum);
    nccl.reduce_scatter_window(send.data(), piece.data(), block, first, count, DType::F32,
                               ReduceOp::Sum, nullptr);
    EXPECT_EQ(piece.get(), host_window) << "window at " << first << " of " << count;
  }

  std::vector<float> gathered(n, 0.0f);
  DeviceArray<float> gathered_device(n), own(block);
  own.set(std::vector<float>(values.begin(), values.begin() + long(block)));
  mpi->all_gather(values.data(), gathered.data(), block, DType::F32);
  nccl.all_gather(own.data(), gathered_device.data(), block, DType::F32, nullptr);
  EXPECT_EQ(gathered_device.get(), gathered) << "all_gather";

  std::vector<float> broadcast = values;
  device.set(values);
  mpi->broadcast(broadcast.data(), n, DType::F32, world_size() - 1);
  nccl.broadcast(device.data(), n, DType::F32, world_size() - 1, nullptr);
  EXPECT_EQ(device.get(), broadcast) << "broadcast";
  nccl.barrier();
}

}  // namespace
}  // namespace qwen3
