#pragma once
// Seeded synthetic training data for the data-parallel tests and tools: a global batch per step,
// and the rank's micro-batches cut from it the way the loader cuts them (rank r takes rows
// [rB/W, (r+1)B/W), then splits them into equal micro-batches).
#include <cstdint>
#include <vector>

#include "core/model/qwen3_model.h"
#include "core/util/error.h"
#include "core/util/rng.h"

namespace qwen3::test_data {

// [rows, seq] tokens and next-token targets. About one target in six is ignored, at positions
// that differ from row to row, so ranks score different numbers of tokens.
inline Batch synthetic_global_batch(int64_t rows, int64_t seq, int64_t vocab, uint64_t seed,
                                    int64_t step) {
  Batch b;
  b.batch = rows;
  b.seq = seq;
  const size_t n = static_cast<size_t>(rows * seq);
  b.tokens.resize(n);
  b.targets.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t stream = 1000 + static_cast<uint64_t>(step);
    b.tokens[i] = static_cast<int32_t>(random_bits(seed, stream, 2 * i) % uint64_t(vocab));
    const uint64_t t = random_bits(seed, stream, 2 * i + 1);
    b.targets[i] = t % 6 == 0 ? kIgnoreIndex : static_cast<int32_t>((t >> 8) % uint64_t(vocab));
  }
  return b;
}

inline Batch batch_rows(const Batch& b, int64_t first, int64_t count) {
  Batch out;
  out.batch = count;
  out.seq = b.seq;
  const auto begin = static_cast<size_t>(first * b.seq),
             end = static_cast<size_t>((first + count) * b.seq);
  out.tokens.assign(b.tokens.begin() + begin, b.tokens.begin() + end);
  out.targets.assign(b.targets.begin() + begin, b.targets.begin() + end);
  return out;
}

inline std::vector<Batch> rank_micro_batches(const Batch& global, int rank, int world,
                                             int micro_batches) {
  QWEN3_CHECK(global.batch % (int64_t(world) * micro_batches) == 0,
              "{} rows do not split into {} ranks x {} micro-batches", global.batch, world,
              micro_batches);
  const int64_t per_rank = global.batch / world, per_micro = per_rank / micro_batches;
  std::vector<Batch> out;
  for (int m = 0; m < micro_batches; ++m)
    out.push_back(batch_rows(global, rank * per_rank + m * per_micro, per_micro));
  return out;
}

}  // namespace qwen3::test_data
