#include "dataloader/tokenizer/unicode.h"

#include <utf8proc.h>

#include <cstring>

#include "core/util/error.h"

namespace qwen3 {

namespace {

// The length of the well-formed sequence that starts text[offset], or 0. On 0, `subpart` is the
// length of the longest prefix of a well-formed sequence found there (at least 1): the part one
// U+FFFD replaces.
size_t sequence_length(std::string_view text, size_t offset, size_t& subpart) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + offset;
  const size_t available = text.size() - offset;
  const uint8_t lead = p[0];
  if (lead < 0x80) return 1;
  size_t continuation = 0;
  // Bounds of the second byte; later continuation bytes are always 80..BF.
  uint8_t low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuation = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    continuation = 2;
    if (lead == 0xE0) low = 0xA0;   // overlong below U+0800
    if (lead == 0xED) high = 0x9F;  // surrogates D800..DFFF
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    continuation = 3;
    if (lead == 0xF0) low = 0x90;   // overlong below U+10000
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    subpart = 1;
    return 0;
  }
  for (size_t i = 1; i <= continuation; ++i) {
    const uint8_t lo = i == 1 ? low : 0x80, hi = i == 1 ? high : 0xBF;
    if (i >= available || p[i] < lo || p[i] > hi) {
      subpart = i;
      return 0;
    }
  }
  return continuation + 1;
}

bool all_ascii(const char* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    if (word & 0x8080808080808080ull) return false;
  }
  for (; i < n; ++i)
    if (static_cast<uint8_t>(p[i]) >= 0x80) return false;
  return true;
}

}  // namespace

size_t find_invalid_utf8(std::string_view text) {
  size_t offset = 0;
  while (offset < text.size()) {
    // Skip ASCII eight bytes at a time: most text is mostly ASCII.
    while (offset + 8 <= text.size() && all_ascii(text.data() + offset, 8))
      offset += 8;
    if (offset == text.size()) break;
    size_t subpart = 0;
    const size_t length = sequence_length(text, offset, subpart);
    if (length == 0) return offset;
    offset += length;
  }
  return std::string_view::npos;
}

size_t replace_invalid_utf8(std::string_view text, std::string& repaired) {
  repaired.clear();
  repaired.reserve(text.size());
  size_t replaced = 0, offset = 0;
  while (offset < text.size()) {
    size_t subpart = 0;
    const size_t length = sequence_length(text, offset, subpart);
    if (length > 0) {
      repaired.append(text.data() + offset, length);
      offset += length;
    } else {
      repaired += "\xEF\xBF\xBD";
      offset += subpart;
      ++replaced;
    }
  }
  return replaced;
}

void append_utf8(uint32_t codepoint, std::string& out) {
  if (codepoint < 0x80) {
    out += static_cast<char>(codepoint);
  } else if (codepoint < 0x800) {
    out += static_cast<char>(0xC0 | (codepoint >> 6));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  } else if (codepoint < 0x10000) {
    out += static_cast<char>(0xE0 | (codepoint >> 12));
    out += static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (codepoint >> 18));
    out += static_cast<char>(0x80 | ((codepoint >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  }
}

uint32_t next_codepoint(std::string_view text, size_t& offset) {
  utf8proc_int32_t codepoint = 0;
  const utf8proc_ssize_t length =
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data()) + offset,
                       static_cast<utf8proc_ssize_t>(text.size() - offset), &codepoint);
  QWEN3_CHECK(length > 0, "invalid UTF-8 at byte offset {}", offset);
  offset += static_cast<size_t>(length);
  return static_cast<uint32_t>(codepoint);
}

// NFC is applied only where it can change something. Text may be cut in front of any ASCII
// character without changing its NFC form: an ASCII character is a starter that no canonical
// composition takes as its second character. So only each run of non-ASCII characters, together
// with the ASCII character before it (which may compose with the run's combining marks, as 'e'
// with U+0301), goes through utf8proc; the rest is copied.
std::string_view NfcNormalizer::normalize(std::string_view text) {
  const size_t first = [&] {
    size_t i = 0;
    while (i < text.size() && static_cast<uint8_t>(text[i]) < 0x80)
      ++i;
    return i;
  }();
  if (first == text.size()) return text;
  out_.clear();
  size_t copied = 0, i = first;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t span_begin = i > 0 ? i - 1 : 0;
    size_t span_end = i;
    while (span_end < text.size() && static_cast<uint8_t>(text[span_end]) >= 0x80)
      ++span_end;
    out_.append(text.data() + copied, span_begin - copied);
    normalize_span(text.substr(span_begin, span_end - span_begin));
    copied = i = span_end;
  }
  out_.append(text.data() + copied, text.size() - copied);
  return out_;
}

void NfcNormalizer::normalize_span(std::string_view span) {
  constexpr auto kOptions = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(span.data());
  const auto length = static_cast<utf8proc_ssize_t>(span.size());
  // A decomposition may hold more codepoints than its input has bytes; then utf8proc reports the
  // size it needs and the call is repeated. utf8proc_reencode writes the UTF-8 result over the same
  // buffer and needs one entry beyond the codepoints.
  if (codepoints_.size() < span.size() + 1) codepoints_.resize(span.size() + 1);
  utf8proc_ssize_t count =
      utf8proc_decompose(bytes, length, codepoints_.data(),
                         static_cast<utf8proc_ssize_t>(codepoints_.size() - 1), kOptions);
  if (count >= static_cast<utf8proc_ssize_t>(codepoints_.size())) {
    codepoints_.resize(static_cast<size_t>(count) + 1);
    count = utf8proc_decompose(bytes, length, codepoints_.data(), count, kOptions);
  }
  QWEN3_CHECK(count >= 0, "NFC normalisation failed: {}", utf8proc_errmsg(count));
  const utf8proc_ssize_t out_bytes = utf8proc_reencode(codepoints_.data(), count, kOptions);
  QWEN3_CHECK(out_bytes >= 0, "NFC normalisation failed: {}", utf8proc_errmsg(out_bytes));
  out_.append(reinterpret_cast<const char*>(codepoints_.data()), static_cast<size_t>(out_bytes));
}

}  // namespace qwen3
