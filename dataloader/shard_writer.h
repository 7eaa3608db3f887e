#pragma once
// Writes one shard in the documented format (dataloader/shard_format.h). The file is written under
// "<path>.partial" and renamed into place by finish(), so an interrupted write never leaves a file
// that looks complete; an unfinished writer deletes its partial file.
#include <cstdint>
#include <string>
#include <vector>

#include "core/hdf5/hdf5.h"

namespace qwen3 {

struct ShardMetadata {
  int64_t vocab_size = 0;
  int64_t eos_id = 0;
  std::string tokenizer;
};

class ShardWriter {
 public:
  ShardWriter(std::string path, ShardMetadata metadata, int64_t chunk_tokens);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends one document (non-empty). Tokens must be below vocab_size.
  void add_document(const uint32_t* tokens, int64_t count);

  // Writes the offsets and attributes and closes the file. Then renames it to `path`, unless
  // `publish` is false: a caller writing several shards keeps them all under their .partial names
  // and renames them once every one is complete.
  void finish(bool publish = true);

  const std::string& path() const { return path_; }
  const std::string& partial_path() const { return partial_path_; }
  int64_t num_tokens() const { return num_tokens_; }
  int64_t num_documents() const { return static_cast<int64_t>(doc_offsets_.size()) - 1; }

 private:
  void flush_buffer();

  std::string path_, partial_path_;
  ShardMetadata metadata_;
  int64_t chunk_tokens_;
  Hdf5Handle file_, tokens_;
  std::vector<uint32_t> buffer_;       // tokens not yet written, fewer than one chunk
  std::vector<uint64_t> doc_offsets_;  // [num_documents + 1]
  int64_t num_tokens_ = 0, written_tokens_ = 0;
  bool finished_ = false;
};

}  // namespace qwen3
