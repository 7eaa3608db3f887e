#include "dataloader/eval_loader.h"

#include <algorithm>

namespace qwen3 {

namespace {
void check_eval_config(const EvalLoaderConfig& c) {
  check_batch_geometry(c.seq_len, c.global_batch, c.rank, c.world_size, "evaluation data");
  QWEN3_CHECK(c.max_samples >= 0,
              "evaluation data: max_samples must be 0 (all) or positive, got {}", c.max_samples);
}
}  // namespace

EvalLoader::EvalLoader(const EvalLoaderConfig& config)
    : config_((check_eval_config(config), config)),
      source_(config_.name, config_.path, config_.seq_len, config_.vocab_size) {
  num_samples_ = config_.max_samples > 0 ? std::min(config_.max_samples, source_.num_samples())
                                         : source_.num_samples();
}

EvalLoader::~EvalLoader() {
  prefetcher_.reset();
}

int64_t EvalLoader::num_batches() const {
  return (num_samples_ + config_.global_batch - 1) / config_.global_batch;
}

void EvalLoader::restart() {
  prefetcher_.reset();
  next_batch_ = 0;
  prefetcher_ = std::make_unique<Prefetcher<LoaderBatch>>(
      [this](LoaderBatch& out) { return produce(out); }, config_.prefetch_batches);
}

std::optional<LoaderBatch> EvalLoader::next() {
  if (!prefetcher_) restart();
  std::optional<LoaderBatch> batch = prefetcher_->next();
  if (!batch) prefetcher_.reset();  // the pass is over; the next call starts the next pass
  return batch;
}

bool EvalLoader::produce(LoaderBatch& b) {
  if (next_batch_ >= num_batches()) return false;
  const int64_t rows = config_.global_batch / config_.world_size, seq = config_.seq_len;
  const int64_t first = next_batch_ * config_.global_batch + config_.rank * rows;
  b.step = next_batch_++;
  b.batch.batch = rows;
  b.batch.seq = seq;
  const auto n = static_cast<size_t>(rows * seq);
  b.batch.tokens.assign(n, 0);
  b.batch.targets.assign(n, kIgnoreIndex);
  b.batch.positions.assign(n, 0);
  b.batch.doc_ids.assign(n, 0);
  b.samples.clear();
  b.real_rows = std::clamp<int64_t>(num_samples_ - first, 0, rows);
  for (int64_t r = 0; r < rows; ++r) {
    if (r < b.real_rows) {
      b.samples.push_back({0, first + r, 0});
      read_window_into_row(source_, first + r, b.batch, r);
    } else {
      // Padding: plain positions, nothing scored.
      for (int64_t t = 0; t < seq; ++t)
        b.batch.positions[static_cast<size_t>(r * seq + t)] = static_cast<int32_t>(t);
    }
  }
  return true;
}

}  // namespace qwen3
