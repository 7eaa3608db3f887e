#pragma once
// Opens one shard and checks everything about its structure up front, so that a bad file fails at
// start-up with its name and the problem, not hours into a run. Token values are checked as they
// are read (and in full by `qwen3-prep --check`).
#include <cstdint>
#include <string>
#include <vector>

#include "core/hdf5/hdf5.h"

namespace qwen3 {

struct ShardInfo {
  std::string path;
  int64_t format_version = 0;
  int64_t vocab_size = 0;
  int64_t eos_id = 0;
  std::string tokenizer;
  int64_t num_tokens = 0;
  int64_t num_documents = 0;
};

class ShardReader {
 public:
  // Throws qwen3::Error naming `path` when the file is missing, not HDF5, truncated, lacks a
  // dataset or attribute, has the wrong dtype or shape, is empty, or has inconsistent offsets.
  explicit ShardReader(std::string path);

  const ShardInfo& info() const { return info_; }

  // tokens[begin, begin + count) -> out. Opens the file if release() closed it.
  void read_tokens(int64_t begin, int64_t count, uint32_t* out);

  // The offsets of the documents that start strictly inside (begin, end), ascending. Reads only
  // the part of doc_offsets it needs, found through an index held in memory.
  void document_starts(int64_t begin, int64_t end, std::vector<int64_t>& out);

  // All of doc_offsets, [num_documents + 1], read from the file.
  std::vector<int64_t> read_doc_offsets();

  // Opens after release() (all or nothing); a no-op when open.
  void open();
  // Closes the file (the info and index stay), to bound open files when there are many shards.
  void release();
  bool is_open() const { return file_.valid(); }

 private:
  void validate();
  [[noreturn]] void rethrow_naming_shard(const Error& e) const;
  void open_file_handle();  // the HDF5 file, with clear errors for damaged files
  void open_datasets();     // tokens and doc_offsets with their dataspaces
  void read_range(bool tokens, int64_t begin, int64_t count, void* out);

  // Every 256th document offset stays in memory: 1/32 byte per document, so even a corpus of a
  // billion documents indexes in 32 MiB, and a window's document starts take one read of 2 KiB.
  static constexpr int64_t kSparseStride = 256;

  ShardInfo info_;
  std::vector<int64_t> sparse_offsets_;  // doc_offsets[k * kSparseStride] for k = 0, 1, ...
  std::vector<int64_t> block_;           // read buffer for document_starts
  Hdf5Handle file_, tokens_, tokens_space_, offsets_, offsets_space_;
};

// Throws, naming `what` ("data source 'web'") and both files, unless the two shards were
// tokenized alike (same tokenizer name and EOS id): mixed tokenizers mean mismatched ids.
void check_same_tokenizer(const ShardInfo& shard, const ShardInfo& reference,
                          const std::string& what);

// "uint32", "int64", "float32", "string", ... for messages about the wrong dtype.
std::string describe_hdf5_type(hid_t type);

}  // namespace qwen3
