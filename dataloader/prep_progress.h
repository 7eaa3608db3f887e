#pragma once
// qwen3-prep's record of a run in progress (prep-progress.json, beside the shards), from which a
// killed run resumes: the settings that decide the output, and per split the shards completed so
// far (with size and CRC-32) and where in the input its first document not yet in one of them
// lies. It is rewritten atomically each time a shard is completed.
#include <cstdint>
#include <string>
#include <vector>

#include "dataloader/prep.h"

namespace qwen3 {

// A document's place in the input: its index among all documents (which picks its split) and
// where it starts (which input file, and where in it).
struct DocumentPosition {
  int64_t document = 0;
  int64_t file = 0;
  FileLocation location;
};

struct CompletedShard {
  std::string file;  // relative to the output directory, without ".partial"
  int64_t tokens = 0, documents = 0;
  uint64_t bytes = 0;
  uint32_t crc32 = 0;
};

struct SplitProgress {
  std::vector<CompletedShard> shards;
  // Every document of this split before `next` is in a completed shard; none after it is.
  DocumentPosition next;
  // Of this split's documents before `next`: left out as empty, and with ill-formed UTF-8.
  int64_t empty_documents = 0, invalid_utf8_documents = 0;
};

struct PrepProgressRecord {
  std::string settings;   // JSON: everything that decides the output (prep.cpp's run_settings)
  bool finished = false;  // all shards complete; what is left is renaming them and the manifest
  SplitProgress train, val;
};

std::string progress_to_json(const PrepProgressRecord& record);
// Throws naming `path` when the text is not a progress record.
PrepProgressRecord progress_from_json(const std::string& text, const std::string& path);

// The first difference between two settings documents, in words, or "" when they are the same.
std::string settings_difference(const std::string& recorded, const std::string& current);

}  // namespace qwen3
