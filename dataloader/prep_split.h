#pragma once
// One split's shards for run_prep (dataloader/prep.h), written under their .partial names until
// run_prep publishes them. A shard of at least half of shard_tokens closes before a document that
// would take it past shard_tokens, but documents that would start a new shard are held back until
// they amount to half a shard: if the input ends first they join the current shard instead. So no
// shard is smaller than half of shard_tokens (unless the whole split is), and a split's last shard
// is not a sliver too short to hold a training window.
//
// Each completed shard is synced to disk, checksummed and recorded in the split's progress; then
// `on_checkpoint` runs (run_prep writes prep-progress.json). The next shard starts with the held
// back documents, so a resumed run that replays this split from the first of them fills it the
// same way.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataloader/prep.h"
#include "dataloader/prep_progress.h"
#include "dataloader/shard_writer.h"

namespace qwen3 {

class SplitWriter {
 public:
  // Continues from `resumed` (empty for a fresh run): its completed shards and counts.
  SplitWriter(const PrepOptions& options, std::string name, SplitProgress resumed,
              std::function<void()> on_checkpoint);

  void add(const std::vector<uint32_t>& document, const DocumentPosition& position);
  // Counts a document left out (empty, or ill-formed UTF-8), or repaired. Call it after add() for
  // a repaired document.
  void count_empty() { ++empty_documents_; }
  void count_invalid_utf8() { ++invalid_utf8_documents_; }

  // Completes the last shard; `end` is the position after the last document of the input.
  void finish(const DocumentPosition& end);

  const SplitProgress& progress() const { return progress_; }
  SplitSummary summary() const { return summary_; }
  int64_t empty_documents() const { return empty_documents_; }
  int64_t invalid_utf8_documents() const { return invalid_utf8_documents_; }
  // Every file of this split's shards, completed or not, for removal after an error.
  std::vector<std::string> partial_paths() const;
  std::string partial_path(const std::string& file) const;

 private:
  void open_next();
  void flush_pending();
  void close_current(const DocumentPosition& next, int64_t empty_before, int64_t invalid_before);

  const PrepOptions& options_;
  ShardMetadata metadata_;
  SplitSummary summary_;
  SplitProgress progress_;
  std::function<void()> on_checkpoint_;
  std::unique_ptr<ShardWriter> writer_;
  std::vector<std::vector<uint32_t>> pending_;
  DocumentPosition first_pending_;
  int64_t pending_tokens_ = 0;
  int64_t empty_documents_ = 0, invalid_utf8_documents_ = 0;
  // The counts when the first held-back document arrived: those of the documents before it.
  int64_t empty_before_pending_ = 0, invalid_before_pending_ = 0;
};

}  // namespace qwen3
