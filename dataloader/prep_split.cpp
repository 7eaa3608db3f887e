#include "dataloader/prep_split.h"

#include <algorithm>

#include "core/util/file_io.h"

namespace qwen3 {

SplitWriter::SplitWriter(const PrepOptions& options, std::string name, SplitProgress resumed,
                         std::function<void()> on_checkpoint)
    : options_(options),
      metadata_{options.vocab_size, options.eos_id, options.tokenizer},
      progress_(std::move(resumed)),
      on_checkpoint_(std::move(on_checkpoint)),
      empty_documents_(progress_.empty_documents),
      invalid_utf8_documents_(progress_.invalid_utf8_documents) {
  summary_.name = std::move(name);
  for (const CompletedShard& shard : progress_.shards) {
    summary_.shards.push_back({shard.file, shard.tokens, shard.documents});
    summary_.tokens += shard.tokens;
    summary_.documents += shard.documents;
  }
}

void SplitWriter::add(const std::vector<uint32_t>& document, const DocumentPosition& position) {
  const auto length = static_cast<int64_t>(document.size());
  summary_.tokens += length;
  summary_.documents += 1;
  if (!writer_) open_next();
  const int64_t current = writer_->num_tokens();
  if (pending_.empty() &&
      (2 * current < options_.shard_tokens || current + length <= options_.shard_tokens)) {
    writer_->add_document(document.data(), length);
    return;
  }
  if (pending_.empty()) {
    first_pending_ = position;
    empty_before_pending_ = empty_documents_;
    invalid_before_pending_ = invalid_utf8_documents_;
  }
  pending_.push_back(document);
  pending_tokens_ += length;
  if (2 * pending_tokens_ >= options_.shard_tokens) {
    close_current(first_pending_, empty_before_pending_, invalid_before_pending_);
    open_next();
    flush_pending();
  }
}

void SplitWriter::finish(const DocumentPosition& end) {
  if (writer_) {
    flush_pending();
    close_current(end, empty_documents_, invalid_utf8_documents_);
  } else {
    progress_.next = end;
    progress_.empty_documents = empty_documents_;
    progress_.invalid_utf8_documents = invalid_utf8_documents_;
  }
}

std::string SplitWriter::partial_path(const std::string& file) const {
  return options_.output_dir + "/" + file + ".partial";
}

std::vector<std::string> SplitWriter::partial_paths() const {
  std::vector<std::string> paths;
  for (const ShardSummary& shard : summary_.shards)
    paths.push_back(partial_path(shard.file));
  return paths;
}

void SplitWriter::open_next() {
  const std::string file = fmt::format("{}-{:05d}.h5", summary_.name, summary_.shards.size());
  // A chunk is allocated whole, so small shards get chunks no larger than themselves.
  writer_ = std::make_unique<ShardWriter>(options_.output_dir + "/" + file, metadata_,
                                          std::min(options_.chunk_tokens, options_.shard_tokens));
  summary_.shards.push_back({file, 0, 0});
}

void SplitWriter::flush_pending() {
  for (const std::vector<uint32_t>& d : pending_)
    writer_->add_document(d.data(), static_cast<int64_t>(d.size()));
  pending_.clear();
  pending_tokens_ = 0;
}

void SplitWriter::close_current(const DocumentPosition& next, int64_t empty_before,
                                int64_t invalid_before) {
  ShardSummary& shard = summary_.shards.back();
  shard.tokens = writer_->num_tokens();
  shard.documents = writer_->num_documents();
  writer_->finish(/*publish=*/false);
  // On disk before it is recorded, so that a recorded shard survives a crash of the machine too.
  const std::string path = writer_->partial_path();
  fsync_path(path);
  const FileChecksum checksum = checksum_file(path);
  writer_.reset();
  progress_.shards.push_back(
      {shard.file, shard.tokens, shard.documents, checksum.bytes, checksum.crc32});
  progress_.next = next;
  progress_.empty_documents = empty_before;
  progress_.invalid_utf8_documents = invalid_before;
  on_checkpoint_();
}

}  // namespace qwen3
