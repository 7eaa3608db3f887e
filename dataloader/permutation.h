#pragma once
// A seeded permutation of [0, n) that is computed rather than stored, so a source of a billion
// samples costs no memory and the order is a pure function of (seed, stream): every rank computes
// the same order, whatever the number of ranks.
#include <cstdint>

namespace qwen3 {

class IndexPermutation {
 public:
  // n >= 1 elements; `stream` separates permutations drawn from one seed (per source and epoch).
  IndexPermutation(uint64_t n, uint64_t seed, uint64_t stream);

  // The element at position i (i < n). Each value in [0, n) appears exactly once.
  uint64_t operator()(uint64_t i) const;
  uint64_t size() const { return n_; }

 private:
  uint64_t encrypt(uint64_t x) const;

  // Six rounds: Luby and Rackoff show four rounds of a pseudo-random function already give a
  // pseudo-random permutation; two more cost nothing next to reading a window.
  static constexpr int kRounds = 6;
  uint64_t n_;
  int half_bits_;  // the network permutes [0, 2^(2 * half_bits)), the smallest such range >= n
  uint64_t half_mask_;
  uint64_t round_keys_[kRounds];
};

}  // namespace qwen3
