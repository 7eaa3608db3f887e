// mma.sync, ldmatrix and cp.async for emulated kernels (qwen3_emulated_warp_matrix.h), following
// the PTX ISA: "Matrix Fragments for mma.m16n8k16 with floating point type", "ldmatrix" and
// "cp.async". In the fragment tables lane l is in group g = l / 4 and is thread t = l % 4 of it;
// a .b32 register holding two b16 elements keeps the lower-indexed one in its low half.
#include <fmt/format.h>

#include <cstring>
#include <string>

#include "tests/emulator/bf16.h"
#include "tests/emulator/device.h"
#include "tests/emulator/device_memory.h"

namespace qwen3::emulator {
namespace {

constexpr int kLanes = 32;

float bf16_bits_to_float(uint16_t bits) {
  const uint32_t wide = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

uint16_t low_half(uint32_t r) {
  return static_cast<uint16_t>(r & 0xFFFFu);
}
uint16_t high_half(uint32_t r) {
  return static_cast<uint16_t>(r >> 16);
}
uint32_t pack_halves(uint16_t low, uint16_t high) {
  return uint32_t(low) | uint32_t(high) << 16;
}

template <class T>
const T& operands_of(const uint64_t* lanes, int lane) {
  return *reinterpret_cast<const T*>(static_cast<uintptr_t>(lanes[lane]));
}

struct MmaOperands {
  float* d;
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
};

// The warp's A (16×16), B (16×8) and C (16×8) gathered from the lanes' registers, the product
// computed, and D scattered back the way C came.
void complete_mma(const uint64_t* lanes) {
  float a[16][16], b[16][8], c[16][8];
  for (int l = 0; l < kLanes; ++l) {
    const MmaOperands& o = operands_of<MmaOperands>(lanes, l);
    const int g = l / 4, t = l % 4;
    // A: a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..).
    for (int r = 0; r < 4; ++r) {
      const int row = g + (r % 2) * 8, col = 2 * t + (r / 2) * 8;
      a[row][col] = bf16_bits_to_float(low_half(o.a[r]));
      a[row][col + 1] = bf16_bits_to_float(high_half(o.a[r]));
    }
    // B: b0 = (2t..2t+1, g), b1 = (2t+8..2t+9, g).
    for (int r = 0; r < 2; ++r) {
      const int row = 2 * t + r * 8;
      b[row][g] = bf16_bits_to_float(low_half(o.b[r]));
      b[row + 1][g] = bf16_bits_to_float(high_half(o.b[r]));
    }
    // C: c0, c1 = (g, 2t), (g, 2t+1); c2, c3 = (g+8, 2t), (g+8, 2t+1).
    for (int r = 0; r < 4; ++r)
      c[g + (r / 2) * 8][2 * t + r % 2] = o.c[r];
  }
  // Products of bf16 values are exact in fp32; the sum is taken in double and rounded once (the
  // tensor cores' own accumulation order and rounding are not emulated).
  float d[16][8];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double sum = c[i][j];
      for (int k = 0; k < 16; ++k)
        sum += double(a[i][k]) * double(b[k][j]);
      d[i][j] = static_cast<float>(sum);
    }
  for (int l = 0; l < kLanes; ++l) {
    const MmaOperands& o = operands_of<MmaOperands>(lanes, l);
    const int g = l / 4, t = l % 4;
    for (int r = 0; r < 4; ++r)
      o.d[r] = d[g + (r / 2) * 8][2 * t + r % 2];
  }
}

struct LdmatrixOperands {
  uint32_t* r;
  const void* row;
  int matrices;
  bool transposed;
};

std::string ldmatrix_name(int matrices, bool transposed) {
  return fmt::format("ldmatrix.m8n8.x{}{}", matrices, transposed ? ".trans" : "");
}

void complete_ldmatrix(const uint64_t* lanes) {
  const LdmatrixOperands& first = operands_of<LdmatrixOperands>(lanes, 0);
  const int matrices = first.matrices;
  const bool transposed = first.transposed;
  for (int l = 1; l < kLanes; ++l) {
    const LdmatrixOperands& o = operands_of<LdmatrixOperands>(lanes, l);
    if (o.matrices != matrices || o.transposed != transposed)
      detail::fail_in_kernel(fmt::format(
          "lane 0 runs {} while lane {} runs {}: the lanes of a "
          "warp must run the same ldmatrix",
          ldmatrix_name(matrices, transposed), l, ldmatrix_name(o.matrices, o.transposed)));
  }
  // Matrix j's row r comes from lane 8j + r's address; later lanes' addresses are unused.
  uint16_t m[4][8][8];
  for (int j = 0; j < matrices; ++j)
    for (int r = 0; r < 8; ++r) {
      const int lane = 8 * j + r;
      const void* row = operands_of<LdmatrixOperands>(lanes, lane).row;
      if (reinterpret_cast<uintptr_t>(row) % 16 != 0 || !detail::in_shared_memory(row, 16))
        detail::fail_in_kernel(
            fmt::format("{}: lane {} gives row address {}, which is not 16 bytes of the block's "
                        "shared memory at a 16-byte boundary",
                        ldmatrix_name(matrices, transposed), lane, row));
      std::memcpy(m[j][r], row, 16);
    }
  // Without .trans lane l receives (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of each matrix; with .trans
  // the matrix is read by columns: (2(l%4), l/4) and (2(l%4)+1, l/4).
  for (int l = 0; l < kLanes; ++l) {
    const LdmatrixOperands& o = operands_of<LdmatrixOperands>(lanes, l);
    const int g = l / 4, t = l % 4;
    for (int j = 0; j < matrices; ++j)
      o.r[j] = transposed ? pack_halves(m[j][2 * t][g], m[j][2 * t + 1][g])
                          : pack_halves(m[j][g][2 * t], m[j][g][2 * t + 1]);
  }
}

template <int kMatrices>
void ldmatrix(uint32_t (&r)[kMatrices], const void* row, bool transposed) {
  const LdmatrixOperands operands{r, row, kMatrices, transposed};
  detail::warp_collective(&operands, complete_ldmatrix);
}

void complete_copy(const detail::AsyncCopy& copy) {
  std::memcpy(copy.destination, copy.source, copy.source_bytes);
  std::memset(static_cast<char*>(copy.destination) + copy.source_bytes, 0,
              copy.bytes - copy.source_bytes);
}

}  // namespace

void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                       const float (&c)[4]) {
  const MmaOperands operands{d, a, b, c};
  detail::warp_collective(&operands, complete_mma);
}

void ldmatrix_x1(uint32_t (&r)[1], const void* row) {
  ldmatrix(r, row, false);
}
void ldmatrix_x2(uint32_t (&r)[2], const void* row) {
  ldmatrix(r, row, false);
}
void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  ldmatrix(r, row, false);
}
void ldmatrix_x1_trans(uint32_t (&r)[1], const void* row) {
  ldmatrix(r, row, true);
}
void ldmatrix_x2_trans(uint32_t (&r)[2], const void* row) {
  ldmatrix(r, row, true);
}
void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  ldmatrix(r, row, true);
}

void cp_async_16(void* shared, const void* global, int source_bytes) {
  constexpr int kBytes = 16;
  if (source_bytes < 0 || source_bytes > kBytes)
    detail::fail_in_kernel(fmt::format("cp.async of 16 bytes with source size {}", source_bytes));
  if (reinterpret_cast<uintptr_t>(shared) % kBytes != 0 ||
      !detail::in_shared_memory(shared, kBytes))
    detail::fail_in_kernel(fmt::format(
        "cp.async to {}, which is not 16 bytes of the block's shared memory at a 16-byte boundary",
        shared));
  if (reinterpret_cast<uintptr_t>(global) % kBytes != 0)
    detail::fail_in_kernel(fmt::format("cp.async from {}, not 16-byte aligned", global));
  if (source_bytes > 0 && device_bytes_from(global) < static_cast<size_t>(source_bytes))
    detail::fail_in_kernel(
        fmt::format("cp.async reads {} bytes at {}, which are not inside one device allocation",
                    source_bytes, global));
  // Undefined until the wait: NaN, as freshly poisoned memory.
  std::memset(shared, 0xFF, kBytes);
  detail::running_thread_async_copies().uncommitted.push_back(
      {shared, global, kBytes, static_cast<uint32_t>(source_bytes)});
}

void cp_async_commit_group() {
  detail::AsyncCopies& copies = detail::running_thread_async_copies();
  copies.committed.push_back(std::move(copies.uncommitted));
  copies.uncommitted.clear();
}

void cp_async_wait_group(int newest) {
  if (newest < 0) detail::fail_in_kernel(fmt::format("cp.async.wait_group {}", newest));
  detail::AsyncCopies& copies = detail::running_thread_async_copies();
  while (copies.committed.size() > static_cast<size_t>(newest)) {
    for (const detail::AsyncCopy& copy : copies.committed.front())
      complete_copy(copy);
    copies.committed.pop_front();
  }
}

}  // namespace qwen3::emulator
