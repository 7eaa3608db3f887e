#include "dataloader/tokenizer/byte_level.h"

#include "core/util/error.h"
#include "dataloader/tokenizer/unicode.h"

namespace qwen3 {

// GPT-2's rule: the bytes of '!'..'~', '¡'..'¬' and '®'..'ÿ' are printable and stand for
// themselves (as codepoints of the same value); the other 68 bytes, in increasing order, take the
// codepoints from 256 up.
ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_codepoint_.fill(-1);
  uint32_t next_unprintable = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    codepoint_of_byte_[b] = printable ? b : next_unprintable++;
    byte_of_codepoint_[codepoint_of_byte_[b]] = static_cast<int16_t>(b);
  }
}

std::string ByteLevelAlphabet::to_bytes(std::string_view token, std::string_view what) const {
  std::string bytes;
  size_t offset = 0;
  while (offset < token.size()) {
    const uint32_t codepoint = next_codepoint(token, offset);
    const int byte = codepoint < kCodepointLimit ? byte_of_codepoint_[codepoint] : -1;
    if (byte < 0)
      throw_error(
          fmt::format("{}: token '{}' holds U+{:04X}, which is not in the byte-level "
                      "alphabet (GPT-2's byte-to-unicode map)",
                      what, token, codepoint));
    bytes += static_cast<char>(byte);
  }
  return bytes;
}

std::string ByteLevelAlphabet::to_token(std::string_view bytes) const {
  std::string token;
  for (const char c : bytes)
    append_utf8(codepoint_of_byte_[static_cast<uint8_t>(c)], token);
  return token;
}

}  // namespace qwen3
