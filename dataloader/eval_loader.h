#pragma once
// The evaluation loader: a fixed, unshuffled sequence of windows (shard by shard, window by
// window, as Source cuts them), the same on every evaluation, so that losses are comparable
// across a run. Batches are split over ranks like training batches. The last batch is padded
// to the full global batch with rows whose targets are all ignored (kIgnoreIndex), so every
// window is scored exactly once and no rank sees a batch of a different shape.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dataloader/loader.h"

namespace qwen3 {

struct EvalLoaderConfig {
  std::string name = "eval";
  std::string path;  // shell glob of shard files
  int64_t seq_len = 0;
  int64_t global_batch = 0;
  int rank = 0;
  int world_size = 1;
  int64_t vocab_size = 0;
  int64_t max_samples = 0;  // 0: every window; otherwise the first max_samples windows
  int64_t prefetch_batches = 2;
};

class EvalLoader {
 public:
  explicit EvalLoader(const EvalLoaderConfig& config);
  ~EvalLoader();

  // Windows evaluated per pass, and batches per pass (the last one possibly padded).
  int64_t num_samples() const { return num_samples_; }
  int64_t num_batches() const;

  // Starts a pass at the first window, abandoning one under way.
  void restart();
  // This rank's rows of the next batch of the pass; nullopt when the pass is done. The call after
  // that starts the next pass.
  std::optional<LoaderBatch> next();

 private:
  bool produce(LoaderBatch& out);

  EvalLoaderConfig config_;
  Source source_;
  int64_t num_samples_ = 0;
  int64_t next_batch_ = 0;  // background thread's next batch of the pass
  std::unique_ptr<Prefetcher<LoaderBatch>> prefetcher_;
};

}  // namespace qwen3
