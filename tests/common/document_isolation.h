#pragma once
// The document-isolation check of the attention tests: change every input of one document and
// expect every other document's outputs and gradients to keep their bits.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qwen3::test_data {

// Replaces the rows of document `doc` (docs: [seq] ids of a batch-1 problem) in q and dout
// (q_row elements per token) and in k and v (kv_row per token) with values from other_q and
// other_kv; every other row is left as it was.
inline void change_document(const std::vector<int32_t>& docs, int32_t doc, int64_t q_row,
                            int64_t kv_row, std::vector<uint16_t>& q, std::vector<uint16_t>& k,
                            std::vector<uint16_t>& v, std::vector<uint16_t>& dout,
                            const std::vector<uint16_t>& other_q,
                            const std::vector<uint16_t>& other_kv) {
  for (size_t i = 0; i < docs.size(); ++i) {
    if (docs[i] != doc) continue;
    for (size_t e = i * size_t(q_row); e < (i + 1) * size_t(q_row); ++e) {
      q[e] = other_q[e];
      dout[e] = other_q[q.size() - 1 - e];
    }
    for (size_t e = i * size_t(kv_row); e < (i + 1) * size_t(kv_row); ++e) {
      k[e] = other_kv[e];
      v[e] = other_kv[k.size() - 1 - e];
    }
  }
}

// Every element of `after` outside document `doc` has the bits it had `before`, and some element
// inside it changed. Elements are [seq, ...] token-major, or with `head_major` [heads, seq] (lse).
template <class T>
void expect_only_document_changed(const std::string& name, const std::vector<int32_t>& docs,
                                  int32_t doc, const std::vector<T>& before,
                                  const std::vector<T>& after, bool head_major) {
  ASSERT_EQ(before.size(), after.size()) << name;
  const size_t seq = docs.size(), per_token = before.size() / seq;
  int64_t kept = 0, changed = 0;
  for (size_t e = 0; e < before.size(); ++e) {
    const size_t token = head_major ? e % seq : e / per_token;
    const bool equal = std::memcmp(&before[e], &after[e], sizeof(T)) == 0;
    if (docs[token] == doc) {
      changed += !equal;
      continue;
    }
    ++kept;
    ASSERT_TRUE(equal) << name << " element " << e << " (token " << token << ") changed";
  }
  EXPECT_GT(kept, 0) << name;
  EXPECT_GT(changed, 0) << name << ": the changed document's values did not change";
}

}  // namespace qwen3::test_data
