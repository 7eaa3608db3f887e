#include "dataloader/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/util/error.h"

namespace qwen3 {

namespace {

// Hugging Face matches the pattern with Oniguruma, where \s is Unicode's White_Space property.
// PCRE2's \s in UCP mode also takes U+180E (MONGOLIAN VOWEL SEPARATOR), which Oniguruma does not,
// so \s and \S are written out as White_Space: U+0009..U+000D, U+0085 and the Z categories.
constexpr const char kPattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
    R"(| ?[^\t-\r\x{85}\p{Z}\p{L}\p{N}]+[\r\n]*|[\t-\r\x{85}\p{Z}]*[\r\n]+)"
    R"(|[\t-\r\x{85}\p{Z}]+(?![^\t-\r\x{85}\p{Z}])|[\t-\r\x{85}\p{Z}]+)";

constexpr const char kHuggingFacePattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

Qwen2SplitPattern::Qwen2SplitPattern() {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  QWEN3_CHECK(code != nullptr, "PCRE2 cannot compile the pre-tokeniser's pattern at offset {}: {}",
              error_offset, pcre2_message(error));
  // Without JIT support PCRE2 interprets the pattern: slower, same pieces.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Qwen2SplitPattern::~Qwen2SplitPattern() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

const char* Qwen2SplitPattern::huggingface_text() {
  return kHuggingFacePattern;
}

PreTokenizerSession::PreTokenizerSession(const Qwen2SplitPattern& pattern) : pattern_(pattern) {
  const auto* code = static_cast<const pcre2_code*>(pattern_.code());
  match_data_ = pcre2_match_data_create_from_pattern(code, nullptr);
  context_ = pcre2_match_context_create(nullptr);
  // A JIT stack of its own, growing to 1 MiB, instead of 32 KiB of the machine stack.
  jit_stack_ = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);
  QWEN3_CHECK(match_data_ && context_ && jit_stack_, "out of memory for PCRE2's match data");
  pcre2_jit_stack_assign(static_cast<pcre2_match_context*>(context_), nullptr, jit_stack_);
}

PreTokenizerSession::~PreTokenizerSession() {
  pcre2_jit_stack_free(static_cast<pcre2_jit_stack*>(jit_stack_));
  pcre2_match_context_free(static_cast<pcre2_match_context*>(context_));
  pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_));
}

std::string_view PreTokenizerSession::split(std::string_view text,
                                            std::vector<std::pair<uint32_t, uint32_t>>& pieces) {
  pieces.clear();
  const std::string_view normalized = normalizer_.normalize(text);
  QWEN3_CHECK(normalized.size() < (size_t{1} << 32),
              "a text segment of {} bytes is too long to tokenize (at most 4 GiB)",
              normalized.size());
  const auto* code = static_cast<const pcre2_code*>(pattern_.code());
  auto* match_data = static_cast<pcre2_match_data*>(match_data_);
  auto* context = static_cast<pcre2_match_context*>(context_);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(normalized.data());
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
  size_t offset = 0;
  while (offset < normalized.size()) {
    const int rc = pcre2_match(code, subject, normalized.size(), offset, PCRE2_NO_UTF_CHECK,
                               match_data, context);
    if (rc == PCRE2_ERROR_NOMATCH) {
      // Cannot happen with this pattern; Hugging Face keeps unmatched text as a piece of its own.
      pieces.emplace_back(offset, normalized.size() - offset);
      break;
    }
    QWEN3_CHECK(rc > 0, "PCRE2 failed while pre-tokenizing at byte {}: {}", offset,
                pcre2_message(rc));
    const size_t begin = ovector[0], end = ovector[1];
    QWEN3_CHECK(end > begin, "the pre-tokeniser's pattern matched nothing at byte {}", begin);
    if (begin > offset) pieces.emplace_back(offset, begin - offset);
    pieces.emplace_back(begin, end - begin);
    offset = end;
  }
  return normalized;
}

}  // namespace qwen3
