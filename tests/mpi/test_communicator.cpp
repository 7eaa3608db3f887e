// The MPI communicator on 1..4 ranks: every collective (reduce-scatter windows included) and dtype
// against values each rank can compute for itself, the piecewise path for counts above INT_MAX
// (with the piece size lowered, and once for real), groups from split(), and argument errors.
#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/util/error.h"
#include "parallel/mpi_communicator.h"

namespace {

using qwen3::DType;
using qwen3::MpiCommunicator;
using qwen3::ReduceOp;

// Small integers are exact in every dtype (bf16 included), so sums compare exactly.
double value_at(int rank, size_t i) {
  return double((rank + 1) * 3 + int(i % 7));
}

template <class T>
std::vector<T> rank_values(int rank, size_t n) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<T>(value_at(rank, i));
  return v;
}

uint16_t to_bf16(double x) {
  const float f = static_cast<float>(x);  // small integers: exact, truncation is rounding
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>(bits >> 16);
}

double from_bf16(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double expected_reduce(int ranks, size_t i, ReduceOp op) {
  double acc = value_at(0, i);
  for (int r = 1; r < ranks; ++r) {
    const double v = value_at(r, i);
    acc = op == ReduceOp::Sum ? acc + v : op == ReduceOp::Max ? std::max(acc, v) : std::min(acc, v);
  }
  return acc;
}

template <class T>
void check_all_reduce(MpiCommunicator& comm, DType dtype, ReduceOp op, size_t n, bool in_place) {
  std::vector<T> send = rank_values<T>(comm.rank(), n), recv(n);
  if (in_place)
    comm.all_reduce(send.data(), send.data(), n, dtype, op);
  else
    comm.all_reduce(send.data(), recv.data(), n, dtype, op);
  const std::vector<T>& out = in_place ? send : recv;
  for (size_t i = 0; i < n; ++i)
    ASSERT_EQ(double(out[i]), expected_reduce(comm.size(), i, op))
        << qwen3::dtype_name(dtype) << " " << qwen3::reduce_op_name(op) << " at " << i;
}

class Communicator : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    comm = MpiCommunicator::world();
    // 0 = unlimited; otherwise the piecewise path runs with pieces this small.
    if (GetParam() > 0) comm->set_max_piece_elements(GetParam());
  }
  std::unique_ptr<MpiCommunicator> comm;
};

TEST_P(Communicator, AllReduceEveryDtypeAndOp) {
  for (bool in_place : {false, true})
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
      check_all_reduce<float>(*comm, DType::F32, op, 37, in_place);
      check_all_reduce<double>(*comm, DType::F64, op, 37, in_place);
      check_all_reduce<int32_t>(*comm, DType::I32, op, 37, in_place);
      check_all_reduce<int64_t>(*comm, DType::I64, op, 37, in_place);
      std::vector<uint16_t> bf(37);
      for (size_t i = 0; i < bf.size(); ++i)
        bf[i] = to_bf16(value_at(comm->rank(), i));
      comm->all_reduce(bf.data(), bf.data(), bf.size(), DType::BF16, op);
      for (size_t i = 0; i < bf.size(); ++i)
        ASSERT_EQ(from_bf16(bf[i]), expected_reduce(comm->size(), i, op)) << "bf16 at " << i;
    }
}

TEST_P(Communicator, ReduceScatterGivesEachRankItsBlock) {
  const size_t block = 29, n = block * size_t(comm->size());
  const std::vector<float> send = rank_values<float>(comm->rank(), n);
  std::vector<float> recv(block, -1.0f);
  comm->reduce_scatter(send.data(), recv.data(), block, DType::F32, ReduceOp::Sum);
  for (size_t i = 0; i < block; ++i)
    ASSERT_EQ(recv[i],
              expected_reduce(comm->size(), size_t(comm->rank()) * block + i, ReduceOp::Sum))
        << "element " << i;
}

// Windows of several widths, taken from the end of the buffer down as ZeroAdamW's buckets are,
// mostly straddling block boundaries: together they give reduce_scatter's result.
TEST_P(Communicator, ReduceScatterWindowsTogetherGiveTheReduceScatter) {
  const size_t block = 29, n = block * size_t(comm->size());
  const std::vector<float> send = rank_values<float>(comm->rank(), n);
  for (size_t width : {size_t(1), size_t(5), block, block + 1, 2 * block + 3, n}) {
    std::vector<float> recv(block, -1.0f);
    for (size_t end = n; end > 0;) {
      const size_t first = end > width ? end - width : 0;
      comm->reduce_scatter_window(send.data(), recv.data(), block, first, end - first, DType::F32,
                                  ReduceOp::Sum);
      end = first;
    }
    for (size_t i = 0; i < block; ++i)
      ASSERT_EQ(recv[i],
                expected_reduce(comm->size(), size_t(comm->rank()) * block + i, ReduceOp::Sum))
          << "windows of " << width << ", element " << i;
  }
}

// One window across the boundary between blocks 0 and 1 (inside block 0 on one rank), in bf16 and
// with Max: each owner gets its part of the window at the right offset, and nothing else changes.
TEST_P(Communicator, ReduceScatterWindowWritesOnlyItsOverlapWithEachBlock) {
  const size_t block = 16, n = block * size_t(comm->size());
  const size_t first = comm->size() > 1 ? block - 3 : 2, count = 7;
  std::vector<uint16_t> send(n);
  for (size_t i = 0; i < n; ++i)
    send[i] = to_bf16(value_at(comm->rank(), i));
  const uint16_t untouched = to_bf16(-1);
  std::vector<uint16_t> recv(block, untouched);
  comm->reduce_scatter_window(send.data(), recv.data(), block, first, count, DType::BF16,
                              ReduceOp::Max);
  const size_t own = size_t(comm->rank()) * block;
  for (size_t i = 0; i < block; ++i) {
    const size_t global = own + i;
    if (global >= first && global < first + count)
      ASSERT_EQ(from_bf16(recv[i]), expected_reduce(comm->size(), global, ReduceOp::Max))
          << "element " << i;
    else
      ASSERT_EQ(recv[i], untouched) << "element " << i << " is outside the window";
  }
}

TEST_P(Communicator, AllGatherOutOfPlaceAndInPlace) {
  const size_t block = 23, n = block * size_t(comm->size());
  const std::vector<int64_t> mine = rank_values<int64_t>(comm->rank(), block);
  std::vector<int64_t> out(n, -1);
  comm->all_gather(mine.data(), out.data(), block, DType::I64);
  std::vector<int64_t> in_place(n, -1);
  std::copy(mine.begin(), mine.end(), in_place.begin() + long(size_t(comm->rank()) * block));
  comm->all_gather(in_place.data() + size_t(comm->rank()) * block, in_place.data(), block,
                   DType::I64);
  for (size_t r = 0; r < size_t(comm->size()); ++r)
    for (size_t i = 0; i < block; ++i) {
      ASSERT_EQ(out[r * block + i], int64_t(value_at(int(r), i))) << "block " << r;
      ASSERT_EQ(in_place[r * block + i], int64_t(value_at(int(r), i))) << "in place, block " << r;
    }
}

TEST_P(Communicator, BroadcastFromEveryRoot) {
  for (int root = 0; root < comm->size(); ++root) {
    std::vector<double> v = rank_values<double>(comm->rank(), 41);
    comm->broadcast(v.data(), v.size(), DType::F64, root);
    for (size_t i = 0; i < v.size(); ++i)
      ASSERT_EQ(v[i], value_at(root, i)) << "root " << root;
  }
  comm->barrier();
}

INSTANTIATE_TEST_SUITE_P(Pieces, Communicator, ::testing::Values(size_t(0), size_t(1), size_t(7)),
                         [](const auto& info) {
                           return info.param == 0 ? std::string("Whole")
                                                  : "PiecesOf" + std::to_string(info.param);
                         });

TEST(CommunicatorGroups, SplitGroupsReduceOnlyWithinTheirGroup) {
  auto world = MpiCommunicator::world();
  const int color = world->rank() % 2;
  auto group = world->split(color, world->rank());
  int expected_size = 0;
  int64_t expected_sum = 0;
  for (int r = 0; r < world->size(); ++r)
    if (r % 2 == color) expected_size += 1, expected_sum += r;
  EXPECT_EQ(group->size(), expected_size);
  EXPECT_EQ(group->rank(), world->rank() / 2);
  EXPECT_EQ(group->all_reduce_value(int64_t(world->rank())), expected_sum);
  // The world is unaffected and still whole.
  EXPECT_EQ(world->all_reduce_value(int64_t(1)), world->size());
}

TEST(CommunicatorGroups, StatsCountRingTraffic) {
  auto comm = MpiCommunicator::world();
  const double n = comm->size();
  std::vector<float> buffer(1000 * size_t(comm->size()));
  std::vector<float> shard(1000);
  comm->all_reduce(buffer.data(), buffer.data(), buffer.size(), DType::F32, ReduceOp::Sum);
  comm->reduce_scatter(buffer.data(), shard.data(), shard.size(), DType::F32, ReduceOp::Sum);
  comm->all_gather(shard.data(), buffer.data(), shard.size(), DType::F32);
  const double bytes = 4000.0 * n;
  EXPECT_EQ(comm->stats().calls, 3);
  EXPECT_EQ(comm->stats().payload_bytes, uint64_t(3 * bytes));
  EXPECT_NEAR(double(comm->stats().ring_bytes_sent), 4 * bytes * (n - 1) / n, 2.0);
}

TEST(CommunicatorGroups, ReduceScatterWindowsCountTheReduceScattersBytes) {
  auto comm = MpiCommunicator::world();
  std::vector<float> buffer(1000 * size_t(comm->size()));
  std::vector<float> shard(1000);
  comm->reduce_scatter(buffer.data(), shard.data(), shard.size(), DType::F32, ReduceOp::Sum);
  const qwen3::CommStats whole = comm->stats();
  comm->reset_stats();
  const size_t n = buffer.size(), width = 333;
  int64_t windows = 0;
  for (size_t end = n; end > 0; ++windows) {
    const size_t first = end > width ? end - width : 0;
    comm->reduce_scatter_window(buffer.data(), shard.data(), shard.size(), first, end - first,
                                DType::F32, ReduceOp::Sum);
    end = first;
  }
  EXPECT_EQ(comm->stats().calls, windows);
  EXPECT_EQ(comm->stats().payload_bytes, whole.payload_bytes);
  EXPECT_NEAR(double(comm->stats().ring_bytes_sent), double(whole.ring_bytes_sent),
              0.5 * double(windows + 1));
}

TEST(CommunicatorErrors, MisusedBuffersAreNamed) {
  auto comm = MpiCommunicator::world();
  std::vector<float> v(64 * size_t(comm->size()));
  try {
    comm->reduce_scatter(v.data(), v.data(), 64, DType::F32, ReduceOp::Sum);
    FAIL() << "overlapping reduce_scatter accepted";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("recv overlaps send"), std::string::npos) << e.what();
  }
  try {
    comm->broadcast(v.data(), v.size(), DType::F32, comm->size());
    FAIL() << "broadcast from a missing root accepted";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not a rank"), std::string::npos) << e.what();
  }
  std::vector<float> shard(64);
  try {
    comm->reduce_scatter_window(v.data(), shard.data(), 64, v.size() - 10, 11, DType::F32,
                                ReduceOp::Sum);
    FAIL() << "a window past the buffer's end accepted";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("runs past the"), std::string::npos) << e.what();
  }
  try {
    comm->reduce_scatter_window(v.data(), v.data() + 3, 64, 0, 64, DType::F32, ReduceOp::Sum);
    FAIL() << "overlapping reduce_scatter_window accepted";
  } catch (const qwen3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("recv overlaps send"), std::string::npos) << e.what();
  }
  qwen3::TensorView on_gpu{v.data(), DType::F32, qwen3::Device::CUDA, qwen3::Shape{64}};
  EXPECT_THROW(comm->all_reduce(on_gpu), qwen3::Error);
}

// A real count above INT_MAX: 2^31 + 3 bf16 elements (4 GiB per rank). Run as its own ctest entry.
TEST(LargeCount, AllReduceAndBroadcastAboveIntMax) {
  auto comm = MpiCommunicator::world();
  const size_t n = size_t(INT_MAX) + 4;
  std::vector<uint16_t> v(n, to_bf16(comm->rank() + 1));
  comm->all_reduce(v.data(), v.data(), n, DType::BF16, ReduceOp::Sum);
  const double sum = comm->size() * (comm->size() + 1) / 2;
  for (size_t i : {size_t(0), size_t(INT_MAX) - 1, size_t(INT_MAX), n - 1})
    ASSERT_EQ(from_bf16(v[i]), sum) << "element " << i;
  const int root = comm->size() - 1;
  if (comm->rank() == root) v[n - 1] = to_bf16(-5);
  comm->broadcast(v.data(), n, DType::BF16, root);
  EXPECT_EQ(from_bf16(v[n - 1]), -5.0);
  EXPECT_EQ(from_bf16(v[size_t(INT_MAX)]), sum);
}

}  // namespace
