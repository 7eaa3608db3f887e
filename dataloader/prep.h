#pragma once
// What qwen3-prep does, as a library: read documents (token ids, or text that the tokenizer
// turns into ids), hold out a seeded validation split, write shards of about shard_tokens tokens
// each and a manifest.json listing them, resuming a run that was killed. And the full check of
// existing shards (`qwen3-prep --check`).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataloader/shard_format.h"
#include "dataloader/tokenizer/tokenizer_files.h"

namespace qwen3 {

enum class PrepInputFormat {
  kIdsText,  // text, one document per line, token ids as decimal numbers separated by whitespace
  kRawU32,   // raw little-endian uint32 token ids; a document ends at each eos_id
  kBytes,    // any file, one document per file: its bytes are the token ids 0..255
  kText,     // UTF-8 text, one document per file (source code, say), tokenized
  kJsonl,    // one JSON object per line whose string field `jsonl_field` is a document, tokenized
};

// Formats whose documents go through the tokenizer.
inline bool is_text_format(PrepInputFormat format) {
  return format == PrepInputFormat::kText || format == PrepInputFormat::kJsonl;
}

// What happens to a text document that is not well-formed UTF-8.
enum class InvalidUtf8 {
  kError,    // stop, naming the file, line and byte offset (the default)
  kReplace,  // replace each ill-formed part with U+FFFD, as Python's errors="replace" does
  kSkip,     // leave the document out, counting it
};

// Where a document starts in its file: the byte offset, and the line (1-based) for messages.
struct FileLocation {
  int64_t offset = 0;
  int64_t line = 1;
};

// Reads already-tokenized documents one at a time.
class DocumentReader {
 public:
  virtual ~DocumentReader() = default;
  // The next document's tokens (never empty); false at the end of the input.
  virtual bool next(std::vector<uint32_t>& document) = 0;
  // Where the document next() returned last starts.
  virtual FileLocation location() const = 0;
};

// A reader of the ids, u32 or bytes format, starting at `start` (the start of a document, as
// location() gave it) to resume there.
std::unique_ptr<DocumentReader> open_document_reader(const std::string& path,
                                                     PrepInputFormat format, int64_t vocab_size,
                                                     int64_t eos_id, FileLocation start = {});

// The files `inputs` name, in order: a file as it is, a directory as every regular file below it
// (symbolic links to files included, linked directories not entered) whose name ends with one of
// `extensions` (all files when empty), sorted by path. Throws for an input that does not exist
// and for a directory without such files.
std::vector<std::string> expand_prep_inputs(const std::vector<std::string>& inputs,
                                            const std::vector<std::string>& extensions = {});

// How far a run has got, for a progress bar.
struct PrepProgress {
  int64_t bytes_done = 0, bytes_total = 0;  // of the input files, counting what a resume skipped
  int64_t documents = 0, tokens = 0;        // written by this run
  double seconds = 0;                       // since this run started
};

struct PrepOptions {
  std::vector<std::string> inputs;  // files and directories (see expand_prep_inputs)
  PrepInputFormat format = PrepInputFormat::kIdsText;
  std::string output_dir;
  // For text formats 0 and -1 mean the tokenizer's: its vocabulary size and <|endoftext|>.
  int64_t vocab_size = 0;
  int64_t eos_id = -1;
  std::string tokenizer;                    // the name recorded in every shard
  int64_t shard_tokens = int64_t{1} << 26;  // 64 Mi tokens: 256 MiB files
  int64_t chunk_tokens = kDefaultChunkTokens;
  double val_fraction = 0.0;
  uint64_t seed = 0;
  bool append_eos = true;  // end every document with eos_id unless it already ends with it

  // Text formats only.
  TokenizerFiles tokenizer_files;
  std::string jsonl_field = "text";
  std::vector<std::string> extensions;  // e.g. {".rs"}: which files of a directory to read
  InvalidUtf8 invalid_utf8 = InvalidUtf8::kError;
  int threads = 0;  // tokenizing threads; 0: one per core. The output does not depend on it.

  // Called now and then (at most four times a second) and at the end, from the calling thread.
  std::function<void(const PrepProgress&)> on_progress;
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
  int64_t vocab_size = 0, eos_id = 0;  // as used (the tokenizer's for text formats by default)
  int64_t empty_documents = 0;         // text documents with no text, left out
  int64_t invalid_utf8_documents = 0;  // left out (InvalidUtf8::kSkip) or repaired (kReplace)
  // A resumed run: the shards an earlier, killed run completed and this one kept, and the document
  // it read the input again from (documents those shards hold are not tokenized again).
  int64_t resumed_shards = 0;
  int64_t resumed_at_document = -1;  // -1 for a fresh run
};

// The file in the output directory that records a run's completed shards, for resuming.
inline constexpr const char* kPrepProgressFile = "prep-progress.json";

// Writes <output_dir>/train-NNNNN.h5, val-NNNNN.h5 and manifest.json. Refuses a directory that
// already holds a manifest or shards, so existing data is never overwritten. Shards stay under
// .partial names until all are written. Each completed shard is recorded in prep-progress.json;
// a run that was killed, rerun with the same settings, keeps those shards and goes on from there,
// giving the same files as a run that was never interrupted. A run that stops with an error
// removes everything it wrote, the progress file included.
PrepSummary run_prep(const PrepOptions& options);

struct CheckSummary {
  int64_t shards = 0, tokens = 0, documents = 0;
  uint32_t largest_token = 0;
};

// Opens every shard matching `pattern` and reads every token, checking it is below vocab_size
// (the shard's own attribute when vocab_size is 0). Throws on the first problem.
CheckSummary check_shards(const std::string& pattern, int64_t vocab_size);

}  // namespace qwen3
