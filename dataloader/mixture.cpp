#include "dataloader/mixture.h"

#include <cmath>

#include "core/util/error.h"

namespace qwen3 {

namespace {
// Weights are fixed to this many parts per unit: 6 decimal places.
constexpr double kWeightScale = 1e6;
// Keeps (k + 1) * w within 128 bits for any sample count below 2^63.
constexpr double kMaxWeight = 1e9;
using u128 = unsigned __int128;
}  // namespace

MixtureSchedule::MixtureSchedule(const std::vector<double>& weights) {
  QWEN3_CHECK(!weights.empty(), "a data mixture needs at least one source");
  for (size_t s = 0; s < weights.size(); ++s) {
    const double w = weights[s];
    QWEN3_CHECK(std::isfinite(w) && w > 0 && w <= kMaxWeight,
                "source {} has weight {}; weights must be positive and at most {}", s, w,
                kMaxWeight);
    const auto fixed = static_cast<uint64_t>(std::llround(w * kWeightScale));
    QWEN3_CHECK(fixed > 0, "source {} has weight {}, below the resolution of 1e-6", s, w);
    weights_.push_back(fixed);
    weight_sum_ += fixed;
  }
}

size_t MixtureSchedule::next_source(const std::vector<int64_t>& drawn) const {
  QWEN3_CHECK(drawn.size() == weights_.size(), "mixture of {} sources given {} counts",
              weights_.size(), drawn.size());
  u128 total = 0;
  for (int64_t k : drawn)
    total += static_cast<u128>(k);
  size_t best = weights_.size();
  for (size_t s = 0; s < weights_.size(); ++s) {
    const auto k = static_cast<u128>(drawn[s]);
    // Eligible: k / p_s <= n, i.e. k * Σw <= n * w_s.
    if (k * weight_sum_ > total * weights_[s]) continue;
    // Due first: (k_s + 1) / w_s < (k_b + 1) / w_b.
    if (best == weights_.size() ||
        (k + 1) * weights_[best] < (static_cast<u128>(drawn[best]) + 1) * weights_[s])
      best = s;
  }
  // Some source is always eligible: if every k_s exceeded n p_s, Σ k_s would exceed n.
  QWEN3_CHECK(best < weights_.size(), "mixture counts are inconsistent");
  return best;
}

double MixtureSchedule::proportion(size_t s) const {
  return static_cast<double>(weights_.at(s)) / static_cast<double>(weight_sum_);
}

}  // namespace qwen3
