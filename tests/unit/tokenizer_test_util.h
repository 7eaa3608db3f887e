#pragma once
// Small byte-level BPE tokenizers for tests that must run without Qwen's files: a tokenizer.json
// with Qwen2's pipeline, the 256 byte tokens as ids 0..255, the given merges (as raw bytes, each
// making the next id) and added tokens after them. And where Qwen3's files are, when present.
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "dataloader/tokenizer/byte_level.h"
#include "dataloader/tokenizer/pre_tokenizer.h"

namespace qwen3::test {

using Merges = std::vector<std::pair<std::string, std::string>>;

// English-ish merges: enough that words become a few tokens.
inline Merges small_merges() {
  return {{" ", "t"},   {"l", "l"},   {"e", "ll"}, {"h", "ell"}, {"hell", "o"}, {" ", "hello"},
          {"h", "e"},   {" t", "he"}, {"i", "n"},  {"in", "g"},  {"e", "r"},    {" ", "a"},
          {"o", "n"},   {"r", "e"},   {" ", " "},  {"  ", "  "}, {"\n", "\n"},  {"a", "a"},
          {"aa", "aa"}, {"'", "s"},   {"'", "t"}};
}

inline std::string tiny_tokenizer_json(const Merges& merges = small_merges(),
                                       const std::vector<std::string>& added = {
                                           "<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
  const ByteLevelAlphabet alphabet;
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  uint32_t id = 0;
  for (int b = 0; b < 256; ++b)
    vocab[alphabet.to_token(std::string(1, static_cast<char>(b)))] = id++;
  nlohmann::ordered_json merge_list = nlohmann::ordered_json::array();
  for (const auto& [left, right] : merges) {
    vocab[alphabet.to_token(left + right)] = id++;
    merge_list.push_back({alphabet.to_token(left), alphabet.to_token(right)});
  }
  nlohmann::ordered_json added_list = nlohmann::ordered_json::array();
  for (const std::string& content : added)
    added_list.push_back({{"id", id++},
                          {"content", content},
                          {"single_word", false},
                          {"lstrip", false},
                          {"rstrip", false},
                          {"normalized", false},
                          {"special", true}});
  const nlohmann::ordered_json root = {
      {"version", "1.0"},
      {"added_tokens", added_list},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern", {{"Regex", Qwen2SplitPattern::huggingface_text()}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"},
           {"add_prefix_space", false},
           {"trim_offsets", true},
           {"use_regex", false}}}}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merge_list}}}};
  return root.dump(1);
}

inline void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Qwen3's vocab.json and merges.txt: $QWEN3_TOKENIZER_DIR, or ../shared/tokenizers/qwen3 beside
// the repository. Empty when absent; tests then skip, saying so.
inline std::string qwen3_tokenizer_dir() {
  std::string dir;
  if (const char* env = std::getenv("QWEN3_TOKENIZER_DIR")) dir = env;
  if (dir.empty()) dir = std::string(QWEN3_SOURCE_DIR) + "/../shared/tokenizers/qwen3";
  std::ifstream vocab(dir + "/vocab.json"), merges(dir + "/merges.txt");
  return vocab.good() && merges.good() ? dir : "";
}

}  // namespace qwen3::test
