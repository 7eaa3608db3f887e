#pragma once
// Reading a tokenizer from Qwen's files: vocab.json and merges.txt (Qwen3's added tokens are then
// built in), or tokenizer.json (everything, added tokens included), or all three, which must then
// agree.
#include <string>
#include <vector>

#include "dataloader/tokenizer/tokenizer.h"

namespace qwen3 {

struct TokenizerFiles {
  std::string vocab_json, merges_txt, tokenizer_json;  // empty: not given

  bool empty() const { return vocab_json.empty() && merges_txt.empty() && tokenizer_json.empty(); }
};

// The files in a directory (a Hugging Face model directory, say): tokenizer.json when it is there,
// and vocab.json with merges.txt when both are. Throws when the directory holds neither.
TokenizerFiles find_tokenizer_files(const std::string& directory);

// Qwen3's 26 added tokens, ids 151643 (<|endoftext|>) to 151668 (</think>): what Qwen's
// tokenizer.json lists and vocab.json lacks.
const std::vector<AddedToken>& qwen3_added_tokens();

// Reads and checks the files. With tokenizer.json, its normaliser, pre-tokeniser and model must be
// Qwen2's (NFC, the split regex, byte-level BPE without byte fallback or dropout) and its added
// tokens plain (no lstrip, rstrip, single_word or normalized): anything else would give other ids
// than Hugging Face, so it is refused, naming the key.
TokenizerDefinition read_tokenizer_files(const TokenizerFiles& files);

inline Tokenizer load_tokenizer(const TokenizerFiles& files) {
  return Tokenizer(read_tokenizer_files(files));
}

}  // namespace qwen3
