#pragma once
// One data source: the shards a glob pattern matches, in sorted path order, cut into training
// windows. A window is seq_len + 1 tokens (inputs are its first seq_len, targets its last seq_len)
// and packs whatever documents fall inside it. Shard i contributes
// floor((num_tokens_i - 1) / seq_len) windows starting at multiples of seq_len, so consecutive
// windows share one token and every token but a shard's short tail is a target exactly once.
// Windows never cross shards: a window is one contiguous read from one file.
#include <cstdint>
#include <list>
#include <string>
#include <vector>

#include "dataloader/shard_reader.h"

namespace qwen3 {

// Sorted paths matching a shell glob. A pattern without wildcards is returned as is, so that a
// missing file is reported by the shard reader. Throws when a wildcard pattern matches nothing.
// `what` names the pattern's owner in messages: "data source 'web'".
std::vector<std::string> expand_shard_pattern(const std::string& pattern, const std::string& what);

// One window's contents, written into caller-provided rows.
struct WindowRows {
  int32_t* inputs;     // [seq_len]
  int32_t* targets;    // [seq_len] next-token targets: targets[t] = window token t + 1
  int32_t* positions;  // [seq_len] restart at 0 at every document start (and at the window start)
  int32_t* doc_ids;    // [seq_len] 0 for the window's first document, +1 at each document start
};

class Source {
 public:
  // Opens and validates every shard (see ShardReader), then checks that each holds at least one
  // window and that its vocabulary fits the model's (`model_vocab_size`).
  Source(std::string name, const std::string& pattern, int64_t seq_len, int64_t model_vocab_size);

  const std::string& name() const { return name_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t num_samples() const { return sample_begin_.back(); }
  int64_t num_tokens() const { return num_tokens_; }
  int64_t num_documents() const { return num_documents_; }
  const std::vector<ShardReader>& shards() const { return shards_; }

  // Reads window `sample` (0 <= sample < num_samples()) into `rows`. Throws, naming the shard and
  // the token's position, if a token is not below the model's vocab_size.
  void read_window(int64_t sample, const WindowRows& rows);

  // Which shard and token offset window `sample` starts at.
  std::pair<size_t, int64_t> locate(int64_t sample) const;

 private:
  void touch(size_t shard);  // keeps at most max_open_shards_ files open

  // Windows are read in random order across all shards, so every shard closed is soon reopened
  // (H5Fopen costs tens of microseconds). A source keeps up to an eighth of the process's open-file
  // limit open (several sources, the eval loader and the rest of the program share it), at least
  // 64, at most 4,096. Raise `ulimit -n` to keep a corpus of thousands of shards open.
  static size_t max_open_shards();

  std::string name_;
  int64_t seq_len_, model_vocab_size_;
  std::vector<ShardReader> shards_;
  std::vector<int64_t> sample_begin_;  // [shards + 1]: first window index of each shard
  int64_t num_tokens_ = 0, num_documents_ = 0;
  size_t max_open_shards_;
  std::list<size_t> open_order_;                            // open shards, most recently used first
  std::vector<std::list<size_t>::iterator> open_position_;  // [shards]: place in open_order_
  std::vector<bool> in_open_order_;                         // [shards]
  std::vector<uint32_t> window_;                            // [seq_len + 1] read buffer
  std::vector<int64_t> starts_;  // document starts inside the window being read
};

}  // namespace qwen3
