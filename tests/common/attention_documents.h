#pragma once
// Document ids for attention tests: contiguous documents of given lengths, as the loader packs
// them.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace qwen3::test_data {

// [batch, seq] ids: row b holds documents of lengths[b] in order (their sum is seq), ids counting
// up from `first_id` across rows.
inline std::vector<int32_t> documents(const std::vector<std::vector<int64_t>>& lengths,
                                      int32_t first_id) {
  std::vector<int32_t> docs;
  int32_t id = first_id;
  for (const auto& row : lengths) {
    for (int64_t n : row) {
      docs.insert(docs.end(), static_cast<size_t>(n), id);
      ++id;
    }
  }
  return docs;
}

}  // namespace qwen3::test_data
