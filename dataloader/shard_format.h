#pragma once
// The pre-tokenized shard format, version 1 (docs/data-format.md is the user-facing description).
// One HDF5 file per shard:
//   /tokens       uint32 [num_tokens]         documents back to back, chunked for sequential reads
//   /doc_offsets  uint64 [num_documents + 1]  document d is tokens[doc_offsets[d],
//   doc_offsets[d+1]) attributes on the root group:
//     format          string  "qwen3-train-shard"
//     format_version  integer 1
//     vocab_size      integer the tokenizer's vocabulary size; every token is below it
//     eos_id          integer the end-of-document token qwen3-prep appends to each document
//     tokenizer       string  the tokenizer's name, e.g. "Qwen/Qwen3-0.6B"
#include <cstdint>

namespace qwen3 {

inline constexpr const char* kShardFormatName = "qwen3-train-shard";
// Bumped whenever a reader of the old version would misread a new file.
inline constexpr int64_t kShardFormatVersion = 1;

inline constexpr const char* kTokensDataset = "tokens";
inline constexpr const char* kDocOffsetsDataset = "doc_offsets";

inline constexpr const char* kFormatAttribute = "format";
inline constexpr const char* kFormatVersionAttribute = "format_version";
inline constexpr const char* kVocabSizeAttribute = "vocab_size";
inline constexpr const char* kEosIdAttribute = "eos_id";
inline constexpr const char* kTokenizerAttribute = "tokenizer";

// 256 Ki tokens = 1 MiB per chunk: large enough that sequential reads run at disk speed, small
// enough that a training window (8 KiB at 2,048 tokens) reads little beyond itself. Chunks are
// stored uncompressed so that a window is read straight from the file without decoding a chunk.
inline constexpr int64_t kDefaultChunkTokens = int64_t{1} << 18;

}  // namespace qwen3
