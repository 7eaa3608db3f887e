#pragma once
// Qwen2's pre-tokeniser: NFC normalisation, then the split regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// matched with PCRE2 (JIT-compiled). Every character falls under one of the alternatives, so the
// pieces cover the text.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataloader/tokenizer/unicode.h"

namespace qwen3 {

// The compiled pattern, shared read-only by every thread.
class Qwen2SplitPattern {
 public:
  Qwen2SplitPattern();
  ~Qwen2SplitPattern();
  Qwen2SplitPattern(const Qwen2SplitPattern&) = delete;
  Qwen2SplitPattern& operator=(const Qwen2SplitPattern&) = delete;

  // The regex as Hugging Face's tokenizer.json writes it (with \s), for checking a tokenizer.json.
  static const char* huggingface_text();

  const void* code() const { return code_; }

 private:
  void* code_ = nullptr;  // pcre2_code_8, kept out of this header
};

// One thread's matcher: PCRE2 match data and JIT stack, and the normaliser's buffers.
class PreTokenizerSession {
 public:
  explicit PreTokenizerSession(const Qwen2SplitPattern& pattern);
  ~PreTokenizerSession();
  PreTokenizerSession(const PreTokenizerSession&) = delete;
  PreTokenizerSession& operator=(const PreTokenizerSession&) = delete;

  // NFC(text) cut into pieces, as (offset, length) into the returned view. `text` must be
  // well-formed UTF-8. The view and the pieces stay valid until the next call.
  std::string_view split(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& pieces);

 private:
  const Qwen2SplitPattern& pattern_;
  NfcNormalizer normalizer_;
  void* match_data_ = nullptr;  // pcre2_match_data_8
  void* context_ = nullptr;     // pcre2_match_context_8
  void* jit_stack_ = nullptr;   // pcre2_jit_stack_8
};

}  // namespace qwen3
