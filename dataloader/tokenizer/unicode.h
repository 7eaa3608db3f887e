#pragma once
// UTF-8 checks and repairs, and NFC normalisation through utf8proc, for the tokenizer and for
// qwen3-prep's text readers.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qwen3 {

// The byte offset of the first byte that is not part of a well-formed UTF-8 sequence (Unicode's
// table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or npos when all of `text`
// is well-formed.
size_t find_invalid_utf8(std::string_view text);

// `text` with every ill-formed part replaced by U+FFFD, one per maximal subpart (the Unicode
// practice, which Python's bytes.decode("utf-8", "replace") follows). Returns how many were
// replaced.
size_t replace_invalid_utf8(std::string_view text, std::string& repaired);

// Appends the UTF-8 form of `codepoint` (at most U+10FFFF).
void append_utf8(uint32_t codepoint, std::string& out);

// Decodes the well-formed UTF-8 sequence at text[offset], advancing offset past it.
uint32_t next_codepoint(std::string_view text, size_t& offset);

// NFC normalisation of well-formed UTF-8. Keeps its buffers between calls, so one per thread.
class NfcNormalizer {
 public:
  // NFC(text). The view stays valid until the next call; it is `text` itself when nothing changes
  // (all-ASCII text in particular).
  std::string_view normalize(std::string_view text);

 private:
  void normalize_span(std::string_view span);

  std::vector<int32_t> codepoints_;
  std::string out_;
};

}  // namespace qwen3
