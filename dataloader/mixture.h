#pragma once
// Deterministic mixing of several sources with exact proportions. With p_s = w_s / Σw, after
// every prefix of n global samples, source s has supplied k_s samples with |k_s - n p_s| < 1:
// the proportions hold at every step of the run, not only in expectation.
//
// The rule is earliest-deadline-first over per-source sample "jobs": the k-th sample of source s
// becomes eligible at time k / p_s and is due by (k + 1) / p_s. At each slot n we take, among the
// eligible sources (k_s <= n p_s), the one whose next sample is due first; ties go to the lower
// index. With the total rate Σ p_s = 1, EDF meets every deadline, which is the lower bound on k_s;
// eligibility is the upper bound. All comparisons are in integers, so every rank agrees.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace qwen3 {

class MixtureSchedule {
 public:
  // Weights as given by the user (positive). They are fixed to 6 decimal places so the arithmetic
  // is exact: weights 0.7 and 0.3 give proportions of exactly 7/10 and 3/10.
  explicit MixtureSchedule(const std::vector<double>& weights);

  // The source of the next sample, given how many each source has supplied so far. Does not
  // change `drawn`; the caller increments drawn[result].
  size_t next_source(const std::vector<int64_t>& drawn) const;

  size_t num_sources() const { return weights_.size(); }
  // The exact proportion of source s, as a double for reports.
  double proportion(size_t s) const;
  // Source s's weight in millionths, as the schedule uses it (and the loader state records it).
  uint64_t fixed_weight(size_t s) const { return weights_.at(s); }

 private:
  std::vector<uint64_t> weights_;
  uint64_t weight_sum_ = 0;
};

}  // namespace qwen3
