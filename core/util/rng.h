#pragma once
#include <cstdint>

namespace qwen3 {

// Counter-based random numbers: value i of stream s depends only on (seed, s, i). A tensor's
// initial values therefore do not depend on thread count, fill order, or which tensors came before
// it, and any slice can be regenerated on its own (a rank initialising only its shard, say).
uint64_t random_bits(uint64_t seed, uint64_t stream, uint64_t index);

// out[i] ~ Normal(mean, std) for i in [0, n), by Box-Muller over counter pairs.
void fill_normal(float* out, int64_t n, double mean, double std, uint64_t seed, uint64_t stream);

// out[i] ~ Uniform[low, high).
void fill_uniform(float* out, int64_t n, double low, double high, uint64_t seed, uint64_t stream);

}  // namespace qwen3
