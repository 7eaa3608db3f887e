#pragma once
// What qwen3-prep does, as a library: read already-tokenized documents, hold out a seeded
// validation split, write shards of about shard_tokens tokens each and a manifest.json listing
// them. And the full check of existing shards (`qwen3-prep --check`).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataloader/shard_format.h"

namespace qwen3 {

enum class PrepInputFormat {
  kIdsText,  // text, one document per line, token ids as decimal numbers separated by whitespace
  kRawU32,   // raw little-endian uint32 token ids; a document ends at each eos_id
  kBytes,    // any file, one document per file: its bytes are the token ids 0..255
};

// Reads documents one at a time. The tokenizer issue adds a reader for plain text; until then the
// byte format lets any text be trained on, with a vocabulary of the 256 byte values plus EOS.
class DocumentReader {
 public:
  virtual ~DocumentReader() = default;
  // The next document's tokens (never empty); false at the end of the input.
  virtual bool next(std::vector<uint32_t>& document) = 0;
};

std::unique_ptr<DocumentReader> open_document_reader(const std::string& path,
                                                     PrepInputFormat format, int64_t vocab_size,
                                                     int64_t eos_id);

// The files `inputs` name, in order: a file as it is, a directory as every regular file below it
// (symbolic links to files included, linked directories not entered), sorted by path. Throws for
// an input that does not exist and for a directory without files.
std::vector<std::string> expand_prep_inputs(const std::vector<std::string>& inputs);

struct PrepOptions {
  std::vector<std::string> inputs;  // files and directories (see expand_prep_inputs)
  PrepInputFormat format = PrepInputFormat::kIdsText;
  std::string output_dir;
  int64_t vocab_size = 0;
  int64_t eos_id = -1;
  std::string tokenizer;
  int64_t shard_tokens = int64_t{1} << 26;  // 64 Mi tokens: 256 MiB files
  int64_t chunk_tokens = kDefaultChunkTokens;
  double val_fraction = 0.0;
  uint64_t seed = 0;
  bool append_eos = true;  // end every document with eos_id unless it already ends with it
};

struct ShardSummary {
  std::string file;  // relative to the output directory
  int64_t tokens = 0;
  int64_t documents = 0;
};

struct SplitSummary {
  std::string name;  // "train" or "val"
  int64_t tokens = 0;
  int64_t documents = 0;
  std::vector<ShardSummary> shards;
};

struct PrepSummary {
  SplitSummary train, val;
  std::string manifest_path;
};

// Writes <output_dir>/train-NNNNN.h5, val-NNNNN.h5 and manifest.json. Refuses a directory that
// already holds a manifest or shards, so existing data is never overwritten.
PrepSummary run_prep(const PrepOptions& options);

struct CheckSummary {
  int64_t shards = 0, tokens = 0, documents = 0;
  uint32_t largest_token = 0;
};

// Opens every shard matching `pattern` and reads every token, checking it is below vocab_size
// (the shard's own attribute when vocab_size is 0). Throws on the first problem.
CheckSummary check_shards(const std::string& pattern, int64_t vocab_size);

}  // namespace qwen3
