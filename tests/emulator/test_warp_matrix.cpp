// Known answers for the emulator's warp-level matrix instructions and block votes, written from
// the PTX ISA and the CUDA programming guide, independent of the kernels that use them:
// - mma.m16n8k16 .bf16 -> .f32 ("Matrix Fragments for mma.m16n8k16 with floating point type"):
//   lane l = 4g + t; A regs a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..);
//   B regs b0 (2t..2t+1, g), b1 (2t+8..2t+9, g); C/D c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t),
//   c3 (g+8, 2t+1); a register's lower-indexed bf16 in its low 16 bits.
// - ldmatrix.m8n8 ("ldmatrix"): lanes 8j..8j+7 address the rows of matrix j; lane l receives row
//   l/4, columns 2(l%4) and 2(l%4)+1 of each matrix into register j; .trans delivers the matrix
//   transposed: (row 2(l%4), column l/4) and (row 2(l%4)+1, column l/4).
// - cp.async ("cp.async", "cp.async.commit_group", "cp.async.wait_group"): a copy is complete
//   only after a wait_group that covers its committed group; wait_group N leaves the N newest
//   groups pending; source size < copy size zero-fills the rest.
// - __syncthreads_count / _or / _and: the count of the block's threads with a non-zero predicate.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/tensor/bf16.h"
#include "tests/emulator/emulator.h"
#include "tests/emulator/kernel_test_support.h"
#include "tests/emulator/warp_matrix_probes.h"

namespace {

using qwen3::emulator::kAllSchedules;
using qwen3::emulator::KernelFault;
using qwen3::emulator::ScopedSchedule;
using qwen3::emulator_test::DeviceArray;
using qwen3::emulator_test::expect_fault;
namespace probes = qwen3::emulator_probes;
using probes::CpAsyncCase;

uint16_t bf16_bits(float value) {
  return qwen3::float_to_bf16_bits(value);
}

uint32_t pack(float low, float high) {
  return uint32_t(bf16_bits(low)) | uint32_t(bf16_bits(high)) << 16;
}

// The registers of all 32 lanes for one mma.
struct MmaRegisters {
  std::vector<uint32_t> a = std::vector<uint32_t>(32 * 4, 0);
  std::vector<uint32_t> b = std::vector<uint32_t>(32 * 2, 0);
  std::vector<float> c = std::vector<float>(32 * 4, 0.f);
};

std::vector<float> run_mma(const MmaRegisters& regs, bool in_place = false) {
  DeviceArray<uint32_t> a(regs.a), b(regs.b);
  DeviceArray<float> c(regs.c), d = DeviceArray<float>::poisoned(32 * 4);
  probes::mma(a.data(), b.data(), c.data(), d.data(), 32, in_place);
  return d.download();
}

// One non-zero element of A and of B: their product must come out in exactly one D register.
TEST(WarpMatrixMma, SingleProductLandsInTheRegisterTheTableNames) {
  MmaRegisters regs;
  // A(3, 5) = 1.5: g = 3, column 5 = 2t + 1 with t = 2: lane 14, a0's high half.
  regs.a[4 * 14 + 0] = pack(0.f, 1.5f);
  // B(5, 6) = 2: g = 6 (column), row 5 = 2t + 1 with t = 2: lane 26, b0's high half.
  regs.b[2 * 26 + 0] = pack(0.f, 2.f);
  const std::vector<float> d = run_mma(regs);
  // D(3, 6) = 3: g = 3, column 6 = 2t with t = 3: lane 15, c0.
  for (int i = 0; i < 32 * 4; ++i)
    EXPECT_EQ(d[size_t(i)], i == 4 * 15 + 0 ? 3.f : 0.f) << "lane " << i / 4 << " d" << i % 4;
}

TEST(WarpMatrixMma, SecondRegistersHoldTheLowerRowsAndLaterColumns) {
  MmaRegisters regs;
  // A(12, 13) = -0.25: row 12 = g + 8 with g = 4, column 13 = 2t + 9 with t = 2: lane 18, a3 high.
  regs.a[4 * 18 + 3] = pack(0.f, -0.25f);
  // B(13, 1) = 8: column g = 1, row 13 = 2t + 9 with t = 2: lane 6, b1 high.
  regs.b[2 * 6 + 1] = pack(0.f, 8.f);
  // C(12, 1) = 5: row g + 8 with g = 4, column 1 = 2t + 1 with t = 0: lane 16, c3.
  regs.c[4 * 16 + 3] = 5.f;
  // C(0, 0) = 7: lane 0, c0; A(0, 8) · B(8, 0) = 0.5 · 3: lane 0's a2 low and b1 low.
  regs.c[0] = 7.f;
  regs.a[2] = pack(0.5f, 0.f);
  regs.b[1] = pack(3.f, 0.f);
  const std::vector<float> d = run_mma(regs);
  for (int i = 0; i < 32 * 4; ++i) {
    const float expected = i == 4 * 16 + 3 ? 5.f - 2.f : i == 0 ? 7.f + 1.5f : 0.f;
    EXPECT_EQ(d[size_t(i)], expected) << "lane " << i / 4 << " d" << i % 4;
  }
}

// Whole matrices through the tables: D = A·B + C against loops, also with C and D the same
// registers. Small integers keep every sum exact.
TEST(WarpMatrixMma, FullProductMatchesLoops) {
  float a[16][16], b[16][8], c[16][8];
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k)
      a[i][k] = float((i * 7 + k * 3) % 11 - 5);
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 8; ++j)
      b[k][j] = float((k * 5 + j * 13) % 9 - 4) * 0.5f;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j)
      c[i][j] = float(i * 8 + j) * 0.25f;
  MmaRegisters regs;
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    regs.a[4 * l + 0] = pack(a[g][2 * t], a[g][2 * t + 1]);
    regs.a[4 * l + 1] = pack(a[g + 8][2 * t], a[g + 8][2 * t + 1]);
    regs.a[4 * l + 2] = pack(a[g][2 * t + 8], a[g][2 * t + 9]);
    regs.a[4 * l + 3] = pack(a[g + 8][2 * t + 8], a[g + 8][2 * t + 9]);
    regs.b[2 * l + 0] = pack(b[2 * t][g], b[2 * t + 1][g]);
    regs.b[2 * l + 1] = pack(b[2 * t + 8][g], b[2 * t + 9][g]);
    regs.c[4 * l + 0] = c[g][2 * t];
    regs.c[4 * l + 1] = c[g][2 * t + 1];
    regs.c[4 * l + 2] = c[g + 8][2 * t];
    regs.c[4 * l + 3] = c[g + 8][2 * t + 1];
  }
  for (bool in_place : {false, true}) {
    const std::vector<float> d = run_mma(regs, in_place);
    for (int l = 0; l < 32; ++l)
      for (int r = 0; r < 4; ++r) {
        const int i = l / 4 + (r / 2) * 8, j = 2 * (l % 4) + r % 2;
        float expected = c[i][j];
        for (int k = 0; k < 16; ++k)
          expected += a[i][k] * b[k][j];
        EXPECT_EQ(d[size_t(4 * l + r)], expected) << "D(" << i << ", " << j << ")";
      }
  }
}

TEST(WarpMatrixMma, NeedsTheWholeWarp) {
  MmaRegisters regs;
  DeviceArray<uint32_t> a(regs.a), b(regs.b);
  DeviceArray<float> c(regs.c), d(32 * 4);
  expect_fault([&] { probes::mma(a.data(), b.data(), c.data(), d.data(), 16, false); },
               {"warp_matrix_probes.cu", "returned or are not in the block"});
}

// A tile whose element (row r, column c) is 0x100·r + c: every delivered value names its source.
std::vector<uint16_t> tile_rows(int rows) {
  std::vector<uint16_t> tile(size_t(rows) * 8);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < 8; ++c)
      tile[size_t(8 * r + c)] = static_cast<uint16_t>(0x100 * r + c);
  return tile;
}

uint32_t pack_bits(uint32_t low, uint32_t high) {
  return low | high << 16;
}

std::vector<uint32_t> run_ldmatrix(int rows, const std::vector<int>& row_of_lane, int matrices,
                                   bool transposed) {
  DeviceArray<uint16_t> tile(tile_rows(rows));
  DeviceArray<int> lanes(row_of_lane);
  DeviceArray<uint32_t> out = DeviceArray<uint32_t>::poisoned(32 * 4);
  probes::ldmatrix(tile.data(), rows, lanes.data(), matrices, transposed, out.data(), 0, false, 0);
  return out.download();
}

std::vector<int> identity_rows() {
  std::vector<int> rows(32);
  for (int l = 0; l < 32; ++l)
    rows[size_t(l)] = l;
  return rows;
}

TEST(WarpMatrixLdmatrix, X1GivesEachLaneTwoColumnsOfItsRow) {
  const std::vector<uint32_t> out = run_ldmatrix(8, identity_rows(), 1, false);
  // Lane 5: row 1, columns 2 and 3. Lane 30: row 7, columns 4 and 5.
  EXPECT_EQ(out[4 * 5], pack_bits(0x0102, 0x0103));
  EXPECT_EQ(out[4 * 30], pack_bits(0x0704, 0x0705));
  for (int l = 0; l < 32; ++l)
    EXPECT_EQ(out[size_t(4 * l)],
              pack_bits(0x100 * (l / 4) + 2 * (l % 4), 0x100 * (l / 4) + 2 * (l % 4) + 1))
        << "lane " << l;
  // Registers the instruction does not write stay as the kernel left them (poison).
  EXPECT_EQ(out[4 * 5 + 1], 0xFFFFFFFFu);
}

TEST(WarpMatrixLdmatrix, X1TransGivesEachLaneTwoRowsOfItsColumn) {
  const std::vector<uint32_t> out = run_ldmatrix(8, identity_rows(), 1, true);
  // Lane 5: column 1, rows 2 and 3. Lane 30: column 7, rows 4 and 5.
  EXPECT_EQ(out[4 * 5], pack_bits(0x0201, 0x0301));
  EXPECT_EQ(out[4 * 30], pack_bits(0x0407, 0x0507));
}

// Rows need not be contiguous or in order: each lane's address picks its row.
TEST(WarpMatrixLdmatrix, X4TakesMatrixJsRowsFromLanes8JTo8JPlus7) {
  std::vector<int> rows(32);
  for (int l = 0; l < 32; ++l)
    rows[size_t(l)] = l < 8 ? 31 - l : l < 16 ? 2 * (l - 8) + 1 : l;
  const std::vector<uint32_t> out = run_ldmatrix(32, rows, 4, false);
  // Lane 9, register 1: matrix 1's row 2 is tile row rows[8 + 2] = 5, columns 2 and 3.
  EXPECT_EQ(out[4 * 9 + 1], pack_bits(0x0502, 0x0503));
  // Lane 0, register 0: matrix 0's row 0 is tile row 31.
  EXPECT_EQ(out[0], pack_bits(0x1F00, 0x1F01));
  // Lane 31, register 3: matrix 3's row 7 is tile row 31, columns 6 and 7.
  EXPECT_EQ(out[4 * 31 + 3], pack_bits(0x1F06, 0x1F07));
  for (int l = 0; l < 32; ++l)
    for (int j = 0; j < 4; ++j) {
      const uint32_t row = uint32_t(rows[size_t(8 * j + l / 4)]), col = 2 * (l % 4);
      EXPECT_EQ(out[size_t(4 * l + j)], pack_bits(0x100 * row + col, 0x100 * row + col + 1))
          << "lane " << l << " register " << j;
    }
}

TEST(WarpMatrixLdmatrix, X2TransUsesTheFirstSixteenLanesAddresses) {
  std::vector<int> rows = identity_rows();
  for (int l = 16; l < 32; ++l)
    rows[size_t(l)] = 0;  // unused by .x2
  const std::vector<uint32_t> out = run_ldmatrix(16, rows, 2, true);
  // Lane 13, register 1: matrix 1 (tile rows 8..15) transposed: column 3, rows 2 and 3 of it.
  EXPECT_EQ(out[4 * 13 + 1], pack_bits(0x0A03, 0x0B03));
  for (int l = 0; l < 32; ++l)
    for (int j = 0; j < 2; ++j) {
      const uint32_t row = 8 * j + 2 * (l % 4), col = l / 4;
      EXPECT_EQ(out[size_t(4 * l + j)], pack_bits(0x100 * row + col, 0x100 * (row + 1) + col))
          << "lane " << l << " register " << j;
    }
}

TEST(WarpMatrixLdmatrix, AddressOutsideSharedMemoryIsAFault) {
  DeviceArray<uint16_t> tile(tile_rows(32));
  DeviceArray<int> lanes(identity_rows());
  DeviceArray<uint32_t> out(32 * 4);
  expect_fault(
      [&] { probes::ldmatrix(tile.data(), 32, lanes.data(), 4, false, out.data(), 0, true, 0); },
      {"warp_matrix_probes.cu", "ldmatrix.m8n8.x4", "lane 0", "shared memory"});
  expect_fault(
      [&] { probes::ldmatrix(tile.data(), 32, lanes.data(), 2, true, out.data(), 8, false, 0); },
      {"ldmatrix.m8n8.x2.trans", "16-byte boundary"});
}

TEST(WarpMatrixLdmatrix, LanesRunningDifferentShapesIsAFault) {
  DeviceArray<uint16_t> tile(tile_rows(32));
  DeviceArray<int> lanes(identity_rows());
  DeviceArray<uint32_t> out(32 * 4);
  expect_fault(
      [&] { probes::ldmatrix(tile.data(), 32, lanes.data(), 4, false, out.data(), 0, false, 2); },
      {"lane 0 runs ldmatrix.m8n8.x4 while lane 31 runs ldmatrix.m8n8.x2"});
}

std::vector<float> chunk_values(int chunks) {
  std::vector<float> values(size_t(chunks) * 4);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = float(i) + 1.f;
  return values;
}

std::vector<float> run_cp_async(CpAsyncCase which, int chunks, size_t outputs) {
  DeviceArray<float> source(chunk_values(chunks));
  DeviceArray<float> out = DeviceArray<float>::poisoned(outputs);
  probes::cp_async(source.data(), out.data(), which);
  return out.download();
}

TEST(WarpMatrixCpAsync, DestinationIsUndefinedUntilTheWait) {
  for (const auto schedule : kAllSchedules) {
    const ScopedSchedule scoped(schedule);
    const std::vector<float> out = run_cp_async(CpAsyncCase::kBeforeAndAfterTheWait, 32, 256);
    for (int i = 0; i < 128; ++i) {
      EXPECT_TRUE(std::isnan(out[size_t(i)])) << "element " << i << " read before the wait";
      EXPECT_EQ(out[size_t(128 + i)], float(i) + 1.f) << "element " << i << " after the wait";
    }
  }
}

TEST(WarpMatrixCpAsync, WaitGroupLeavesTheNewestGroupsPending) {
  const std::vector<float> out = run_cp_async(CpAsyncCase::kNewestGroupLeftPending, 64, 512);
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(out[size_t(i)], float(i) + 1.f) << "the older group after wait_group 1";
    EXPECT_TRUE(std::isnan(out[size_t(128 + i)])) << "the newer group after wait_group 1";
    EXPECT_EQ(out[size_t(256 + i)], float(i) + 1.f) << "after wait_group 0";
    EXPECT_EQ(out[size_t(384 + i)], float(128 + i) + 1.f) << "after wait_group 0";
  }
}

TEST(WarpMatrixCpAsync, ShortSourceZeroFillsTheRest) {
  const std::vector<float> out = run_cp_async(CpAsyncCase::kZeroFill, 32, 32 * 16);
  const int source_floats[4] = {4, 3, 1, 0};  // 16, 12, 4 and 0 bytes
  for (int i = 0; i < 32; ++i)
    for (int s = 0; s < 4; ++s)
      for (int f = 0; f < 4; ++f)
        EXPECT_EQ(out[size_t(16 * i + 4 * s + f)], f < source_floats[s] ? float(4 * i + f) + 1 : 0)
            << "thread " << i << " size case " << s << " float " << f;
}

TEST(WarpMatrixCpAsync, UncommittedCopiesAreNotWaitedFor) {
  const std::vector<float> out = run_cp_async(CpAsyncCase::kUncommitted, 32, 256);
  for (int i = 0; i < 128; ++i) {
    EXPECT_TRUE(std::isnan(out[size_t(i)])) << "uncommitted, after wait_group 0";
    EXPECT_EQ(out[size_t(128 + i)], float(i) + 1.f) << "committed and waited for";
  }
}

// Another thread's copy is visible after its wait and a barrier; without the barrier some
// schedule reads it first.
TEST(WarpMatrixCpAsync, AnotherThreadsCopyNeedsTheBarrier) {
  for (const auto schedule : kAllSchedules) {
    const ScopedSchedule scoped(schedule);
    const std::vector<float> out = run_cp_async(CpAsyncCase::kReadAnotherThreadsCopy, 32, 256);
    int unpublished = 0;
    for (int i = 0; i < 32; ++i)
      for (int f = 0; f < 4; ++f) {
        EXPECT_EQ(out[size_t(4 * i + f)], float(4 * ((i + 1) % 32) + f) + 1.f);
        unpublished += std::isnan(out[size_t(128 + 4 * i + f)]);
      }
    EXPECT_GT(unpublished, 0) << "schedule " << qwen3::emulator::schedule_name(schedule);
  }
}

TEST(WarpMatrixCpAsync, MisuseIsAFault) {
  DeviceArray<float> source(chunk_values(32));
  DeviceArray<float> out(256);
  expect_fault(
      [&] { probes::cp_async(source.data(), out.data(), CpAsyncCase::kReturnWithCopiesInFlight); },
      {"warp_matrix_probes.cu", "1 cp.async copies never waited for"});
  const std::vector<float> host = chunk_values(32);
  expect_fault([&] { probes::cp_async(host.data(), out.data(), CpAsyncCase::kFromHostMemory); },
               {"not inside one device allocation"});
  expect_fault([&] { probes::cp_async(source.data(), out.data(), CpAsyncCase::kToGlobalMemory); },
               {"not 16 bytes of the block's shared memory"});
}

TEST(BlockVotes, CountOrAndOverTheThreadsThatTakePart) {
  const int threads = 100;  // not a multiple of 32
  for (int returned : {0, 7}) {
    std::vector<int> predicate(threads);
    int expected_count = 0;
    for (int i = 0; i < threads; ++i) {
      predicate[size_t(i)] = i < returned ? -1 : i % 3 == 0 ? 5 : 0;
      expected_count += predicate[size_t(i)] > 0;
    }
    DeviceArray<int> predicate_dev(predicate);
    DeviceArray<int> out(3 * threads);
    probes::block_votes(predicate_dev.data(), out.data(), threads);
    const std::vector<int> votes = out.download();
    for (int i = returned; i < threads; ++i) {
      EXPECT_EQ(votes[size_t(3 * i)], expected_count) << "thread " << i;
      EXPECT_EQ(votes[size_t(3 * i + 1)], 1) << "thread " << i;
      EXPECT_EQ(votes[size_t(3 * i + 2)], 0) << "thread " << i;
    }
    std::vector<int> all_true(threads, 1);
    DeviceArray<int> all_true_dev(all_true);
    probes::block_votes(all_true_dev.data(), out.data(), threads);
    const std::vector<int> unanimous = out.download();
    EXPECT_EQ(unanimous[0], threads);
    EXPECT_EQ(unanimous[2], 1);
  }
}

}  // namespace
