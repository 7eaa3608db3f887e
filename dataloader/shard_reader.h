#pragma once
// Opens one shard and checks everything about its structure up front, so that a bad file fails at
// start-up with its name and the problem, not hours into a run. Token values are checked as they
// are read (and in full by `qwen3-prep --check`).
#include <cstdint>
#include <string>
#include <vector>

#include "dataloader/hdf5.h"

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
  // [num_documents + 1]: 0 = offsets[0] < offsets[1] < ... < offsets[num_documents] = num_tokens.
  // Held only while the shard is open (8 bytes per document: a 100B-token corpus has ~100M
  // documents, too many to keep for every shard on every rank).
  const std::vector<int64_t>& doc_offsets() const {
    QWEN3_CHECK(is_open(), "data shard '{}': document offsets read while closed", info_.path);
    return doc_offsets_;
  }

  // tokens[begin, begin + count) -> out. Opens the file if release() closed it.
  void read_tokens(int64_t begin, int64_t count, uint32_t* out);

  // Reopens after release(), reloading the offsets; a no-op when open.
  void open();
  // Closes the file and drops the offsets (the info stays), to bound open files and memory when
  // there are many shards.
  void release();
  bool is_open() const { return file_.valid(); }

 private:
  void open_file();         // all three of:
  void open_file_handle();  // the HDF5 file, with clear errors for damaged files
  void open_tokens();       // the token dataset and its dataspace
  void load_doc_offsets();  // read and validate doc_offsets

  ShardInfo info_;
  std::vector<int64_t> doc_offsets_;
  Hdf5Handle file_, tokens_, file_space_;
};

// "uint32", "int64", "float32", "string", ... for messages about the wrong dtype.
std::string describe_hdf5_type(hid_t type);

}  // namespace qwen3
