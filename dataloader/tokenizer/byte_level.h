#pragma once
// GPT-2's byte-to-unicode map, which byte-level BPE vocabularies (Qwen's included) are written in:
// every byte becomes one printable codepoint, so that vocab.json and merges.txt are text.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace qwen3 {

class ByteLevelAlphabet {
 public:
  ByteLevelAlphabet();

  // The codepoint byte `b` is written as.
  uint32_t codepoint_of(uint8_t b) const { return codepoint_of_byte_[b]; }

  // The raw bytes a vocabulary string stands for. Throws naming `what` when a codepoint of
  // `token` is not one of the 256 the map uses.
  std::string to_bytes(std::string_view token, std::string_view what) const;

  // The vocabulary string for raw bytes.
  std::string to_token(std::string_view bytes) const;

 private:
  // The map's codepoints all lie below 256 + 68.
  static constexpr uint32_t kCodepointLimit = 256 + 68;
  std::array<uint32_t, 256> codepoint_of_byte_{};
  std::array<int16_t, kCodepointLimit> byte_of_codepoint_{};  // -1: not in the map
};

}  // namespace qwen3
