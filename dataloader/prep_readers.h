#pragma once
// qwen3-prep's readers of text input, below run_prep (dataloader/prep.h): JSONL lines, and one
// raw text document turned into token ids under the chosen UTF-8 policy. The readers of
// already-tokenized input are open_document_reader's, in prep.h.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "dataloader/prep.h"
#include "dataloader/tokenizer/tokenizer.h"

namespace qwen3 {

// The lines of a JSONL file that are not blank, each one document, from `start` on.
class JsonlLineReader {
 public:
  JsonlLineReader(std::string path, FileLocation start);
  ~JsonlLineReader();
  JsonlLineReader(const JsonlLineReader&) = delete;
  JsonlLineReader& operator=(const JsonlLineReader&) = delete;

  // The next non-blank line, without its line break; false at the end of the file.
  bool next(std::string& line);
  // Where the line next() returned last starts.
  FileLocation location() const { return location_; }
  // Bytes of the file read so far.
  int64_t offset() const { return offset_; }

 private:
  bool read_line(std::string& line);

  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;
  size_t cursor_ = 0, filled_ = 0;
  int64_t offset_ = 0, next_line_ = 1;
  FileLocation location_;
};

// What became of one text document.
enum class TextOutcome {
  kDocument,          // tokens written
  kRepairedDocument,  // tokens written after replacing ill-formed UTF-8 with U+FFFD
  kEmpty,             // no text: left out
  kSkippedInvalid,    // ill-formed UTF-8 under InvalidUtf8::kSkip: left out
};

struct TextSettings {
  PrepInputFormat format = PrepInputFormat::kText;
  std::string jsonl_field = "text";
  InvalidUtf8 invalid_utf8 = InvalidUtf8::kError;
};

// The token ids of one raw document (a whole file for kText, one line for kJsonl, whose field
// jsonl_field is the text) into `tokens`. Errors name `path`, the line and the byte offset in the
// file: ill-formed UTF-8 under InvalidUtf8::kError, a line that is not a JSON object, a missing
// or non-string field.
TextOutcome tokenize_text_document(const std::string& raw, const TextSettings& settings,
                                   const std::string& path, FileLocation location, Encoder& encoder,
                                   std::vector<uint32_t>& tokens);

}  // namespace qwen3
