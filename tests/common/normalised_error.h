#pragma once
// ‖ref − got‖ / ‖ref‖ over [begin, end) (the whole vectors by default), the measure every backend
// comparison uses; ‖ref − got‖ when ref is zero there.
#include <cmath>
#include <cstddef>
#include <vector>

namespace qwen3::test_data {

inline double normalised_error(const std::vector<float>& ref, const std::vector<float>& got,
                               size_t begin = 0, size_t end = size_t(-1)) {
  if (end > ref.size()) end = ref.size();
  double diff = 0, norm = 0;
  for (size_t i = begin; i < end; ++i) {
    const double d = double(ref[i]) - double(got[i]);
    diff += d * d;
    norm += double(ref[i]) * double(ref[i]);
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

}  // namespace qwen3::test_data
