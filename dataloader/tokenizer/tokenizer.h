#pragma once
// Qwen's byte-level BPE tokenizer: added (special) tokens matched in the raw text first, then
// Qwen2's pre-tokeniser (NFC and the split regex, pre_tokenizer.h), then byte-level BPE on every
// piece. Token ids equal Hugging Face tokenizers' for the same files (tests/python
// test_tokenizer_vs_hf.py checks that), and decode(encode(text)) == NFC(text).
//
// A Tokenizer is immutable and shared by all threads; each thread encodes through an Encoder of
// its own, which keeps the per-thread buffers and a cache of words already merged.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataloader/tokenizer/pre_tokenizer.h"

namespace qwen3 {

struct AddedToken {
  std::string content;
  uint32_t id = 0;
};

// A tokenizer as its files give it: vocabulary strings in GPT-2's byte-to-unicode alphabet with
// their ids, merges in rank order, and added tokens. `source` names the files in error messages.
struct TokenizerDefinition {
  std::vector<std::pair<std::string, uint32_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<AddedToken> added_tokens;
  std::string source;
};

class Tokenizer {
 public:
  // Checks the definition: every byte has a token, merges name vocabulary tokens and make one,
  // ids are unique, added tokens are non-empty. Throws naming `source` and the entry.
  explicit Tokenizer(const TokenizerDefinition& definition);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // One more than the largest id (151,669 for Qwen3: 151,643 vocabulary tokens and 26 added).
  int64_t vocab_size() const { return static_cast<int64_t>(token_bytes_.size()); }
  int64_t num_merges() const { return num_merges_; }

  // The id of an added token by its content, or of the vocabulary token whose bytes are `text`.
  std::optional<uint32_t> find_token(std::string_view text) const;

  // The bytes the ids stand for, concatenated: exactly the NFC text they were encoded from. Ids
  // that are parts of a character give its bytes, so any slice of the ids decodes to raw bytes,
  // not necessarily to whole UTF-8 characters. Throws for an id that is not in the vocabulary.
  std::string decode(const uint32_t* ids, size_t count) const;
  std::string decode(const std::vector<uint32_t>& ids) const {
    return decode(ids.data(), ids.size());
  }

  // Convenience for one-off use; bulk encoding keeps an Encoder per thread.
  std::vector<uint32_t> encode(std::string_view text) const;

  // A 64-bit hash of the vocabulary, merges and added tokens, as 16 hex digits: two tokenizers
  // with the same fingerprint give the same ids.
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  friend class Encoder;
  struct MergeTable;

  // The leftmost added token at or after `offset` (the longest one there), or nullptr.
  const AddedToken* find_added(std::string_view text, size_t offset, size_t& position) const;

  std::vector<std::string> token_bytes_;  // by id: a vocabulary token's bytes or an added token's
  std::vector<uint8_t> token_known_;      // by id: 1 where an id is in use
  std::array<uint32_t, 256> byte_token_{};
  std::unique_ptr<MergeTable> merges_;
  int64_t num_merges_ = 0;
  std::vector<AddedToken> added_;             // longest first, so the first match is the longest
  std::array<bool, 256> added_first_byte_{};  // bytes some added token starts with
  int added_first_byte_count_ = 0;
  unsigned char single_added_first_byte_ = 0;  // the byte, when only one (Qwen's '<')
  std::unique_ptr<Qwen2SplitPattern> pattern_;
  std::string fingerprint_;
};

// One thread's encoder.
class Encoder {
 public:
  explicit Encoder(const Tokenizer& tokenizer);
  ~Encoder();

  // Appends the ids of `text`, which must be well-formed UTF-8 (throws naming the byte offset of
  // the first bad byte otherwise).
  void encode(std::string_view text, std::vector<uint32_t>& ids);

 private:
  class WordCache;

  void encode_ordinary(std::string_view text, std::vector<uint32_t>& ids);
  void encode_word(std::string_view word, std::vector<uint32_t>& ids);
  void merge_short();
  void merge_long();

  const Tokenizer& tokenizer_;
  PreTokenizerSession pre_tokenizer_;
  std::unique_ptr<WordCache> cache_;
  std::vector<std::pair<uint32_t, uint32_t>> pieces_;
  std::vector<uint32_t> symbols_, ranks_, merged_;
  std::vector<int32_t> next_, previous_;
};

}  // namespace qwen3
