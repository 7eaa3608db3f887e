#include "core/util/rng.h"

#include <cmath>

namespace qwen3 {

namespace {

// SplitMix64's finaliser: a bijective mix with full avalanche, good enough for initialisation and
// test data (not for cryptography).
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// A double in (0, 1] from the top 53 bits; never 0, so log() below is finite.
double unit_open_closed(uint64_t bits) {
  return (static_cast<double>(bits >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

}  // namespace

uint64_t random_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  // The golden-ratio increments keep (seed, stream, index) triples from colliding after mixing.
  return mix64(mix64(seed + 0x9e3779b97f4a7c15ULL * (stream + 1)) + 0x9e3779b97f4a7c15ULL * index);
}

void fill_normal(float* out, int64_t n, double mean, double std, uint64_t seed, uint64_t stream) {
  const double two_pi = 6.283185307179586476925;
  const int64_t pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < pairs; ++p) {
    const double u1 = unit_open_closed(random_bits(seed, stream, 2 * p));
    const double u2 = unit_open_closed(random_bits(seed, stream, 2 * p + 1));
    const double radius = std::sqrt(-2.0 * std::log(u1));
    out[2 * p] = static_cast<float>(mean + std * radius * std::cos(two_pi * u2));
    if (2 * p + 1 < n)
      out[2 * p + 1] = static_cast<float>(mean + std * radius * std::sin(two_pi * u2));
  }
}

void fill_uniform(float* out, int64_t n, double low, double high, uint64_t seed, uint64_t stream) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double u = unit_open_closed(random_bits(seed, stream, i)) - 0x1p-53;  // [0, 1)
    out[i] = static_cast<float>(low + (high - low) * u);
  }
}

}  // namespace qwen3
