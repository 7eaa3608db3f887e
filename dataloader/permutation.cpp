#include "dataloader/permutation.h"

#include "core/util/error.h"
#include "core/util/rng.h"

namespace qwen3 {

IndexPermutation::IndexPermutation(uint64_t n, uint64_t seed, uint64_t stream) : n_(n) {
  QWEN3_CHECK(n >= 1, "cannot permute an empty range");
  int bits = 1;
  while (bits < 64 && (uint64_t{1} << bits) < n)
    ++bits;
  half_bits_ = (bits + 1) / 2;
  half_mask_ = (uint64_t{1} << half_bits_) - 1;
  for (int r = 0; r < kRounds; ++r)
    round_keys_[r] = random_bits(seed, stream, static_cast<uint64_t>(r));
}

uint64_t IndexPermutation::encrypt(uint64_t x) const {
  // A balanced Feistel network: (left, right) -> (right, left ^ F(right)) is invertible for any
  // round function F, so the whole network is a bijection of [0, 2^(2 * half_bits)).
  uint64_t left = x >> half_bits_, right = x & half_mask_;
  for (int r = 0; r < kRounds; ++r) {
    const uint64_t mixed = left ^ (random_bits(round_keys_[r], 0, right) & half_mask_);
    left = right;
    right = mixed;
  }
  return (left << half_bits_) | right;
}

uint64_t IndexPermutation::operator()(uint64_t i) const {
  QWEN3_CHECK(i < n_, "permutation index {} is out of range [0, {})", i, n_);
  // Cycle-walking: re-encrypt until the value lands back in [0, n). It terminates because i's own
  // cycle under the bijection returns to i < n, and the walks of distinct i never meet, so the
  // result is again a bijection. The range is under 4n, so on average fewer than 4 steps.
  uint64_t x = encrypt(i);
  while (x >= n_)
    x = encrypt(x);
  return x;
}

}  // namespace qwen3
