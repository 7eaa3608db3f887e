#pragma once
// The training loader. One global sample order, a pure function of the seed and the sources:
//   - each source's windows are visited in a seeded permutation, a fresh one every epoch
//     (a pass over that source);
//   - sources are interleaved by MixtureSchedule, exact proportions at every step;
//   - step t takes global samples [t * global_batch, (t + 1) * global_batch), and rank r of W
//     reads rows [r * global_batch / W, (r + 1) * global_batch / W) of it.
// So the ranks' slices concatenate to the same global batch for any number of ranks, and the
// state after a step (LoaderState: a few integers) resumes the same order on any number of ranks.
// A background thread reads ahead by `prefetch_batches` batches.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model/batch.h"
#include "dataloader/mixture.h"
#include "dataloader/prefetcher.h"
#include "dataloader/source.h"

namespace qwen3 {

struct SourceSpec {
  std::string name;  // for messages, logs and the saved state
  std::string path;  // shell glob of shard files
  double weight = 1.0;
};

struct LoaderConfig {
  std::vector<SourceSpec> sources;
  int64_t seq_len = 0;
  int64_t global_batch = 0;  // samples per step, all ranks together
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  int64_t vocab_size = 0;  // the model's: every token must be below it
  int64_t prefetch_batches = 4;
};

// Everything needed to continue the sample order exactly. Independent of rank count and of
// global_batch; seq_len, seed, the sources and their weights must match when it is restored (a
// different mixture is a new stage, with a new loader).
struct LoaderState {
  struct SourceState {
    std::string name;
    int64_t num_samples = 0;  // windows in the source, to notice changed data on resume
    int64_t weight = 0;       // mixture weight in millionths, to notice a changed mixture
    int64_t drawn = 0;        // samples taken from it so far, over all epochs
  };
  uint64_t seed = 0;
  int64_t seq_len = 0;
  int64_t samples_consumed = 0;  // global samples handed out so far, all ranks together
  std::vector<SourceState> sources;

  // A small YAML document, for checkpoints.
  std::string to_text() const;
  // `origin` (a file name) is used in error messages.
  static LoaderState from_text(const std::string& text, const std::string& origin);

  bool operator==(const LoaderState& other) const;
};

// Where one row of a batch came from.
struct SampleRef {
  int32_t source = 0;
  int64_t window = 0;  // window index within the source
  int64_t epoch = 0;   // pass over the source this draw belongs to
};

struct LoaderBatch {
  int64_t step = 0;                // index of this batch in the run (0-based)
  Batch batch;                     // this rank's rows: [rows, seq_len] inputs and targets
  std::vector<SampleRef> samples;  // [rows]
  int64_t real_rows = 0;           // rows with data; the rest are padding (eval's last batch)
};

// The global schedule alone, without reading data: which windows make up each global batch.
// Every rank runs the same planner; it is what LoaderState captures.
class SamplePlanner {
 public:
  SamplePlanner(std::vector<std::string> source_names, std::vector<int64_t> source_samples,
                const std::vector<double>& weights, uint64_t seed, int64_t seq_len);

  // The next `count` global samples, advancing the state.
  std::vector<SampleRef> plan(int64_t count);

  const LoaderState& state() const { return state_; }
  // Continues from a saved state; throws, naming `origin`, if it does not fit these sources.
  void restore(const LoaderState& saved, const std::string& origin);

 private:
  MixtureSchedule mixture_;
  std::vector<uint64_t> streams_;  // per source: permutation stream, from the source's name
  LoaderState state_;
};

class TrainLoader {
 public:
  // Opens and validates every shard of every source before returning. With `resume`, continues
  // right after the batch the state was taken at.
  explicit TrainLoader(const LoaderConfig& config, const LoaderState* resume = nullptr,
                       const std::string& resume_origin = "loader state");
  ~TrainLoader();

  // This rank's rows of the next global batch; blocks if the background thread is behind.
  LoaderBatch next();

  // The state after the last batch next() returned (not after batches prefetched beyond it).
  LoaderState state() const { return consumed_state_; }

  // What each source holds, fixed at start-up (the sources themselves belong to the prefetch
  // thread).
  struct SourceSummary {
    std::string name;
    int64_t num_samples = 0, num_tokens = 0, num_documents = 0, num_shards = 0;
  };
  const std::vector<SourceSummary>& source_summaries() const { return summaries_; }
  int64_t rows_per_rank() const { return config_.global_batch / config_.world_size; }
  double wait_seconds() const { return prefetcher_->wait_seconds(); }
  double last_wait_seconds() const { return prefetcher_->last_wait_seconds(); }

 private:
  struct Prefetched {
    LoaderBatch batch;
    LoaderState state_after;
  };
  bool produce(Prefetched& out);

  LoaderConfig config_;
  std::vector<Source> sources_;
  std::vector<SourceSummary> summaries_;
  std::unique_ptr<SamplePlanner> planner_;  // used by the background thread only
  LoaderState consumed_state_;
  int64_t next_step_ = 0;  // background thread's next step
  std::unique_ptr<Prefetcher<Prefetched>> prefetcher_;
};

// Fills row `row` of `batch` from window `window` of `source`.
void read_window_into_row(Source& source, int64_t window, Batch& batch, int64_t row);

// Checks seq_len, batch and rank arguments shared by both loaders.
void check_batch_geometry(int64_t seq_len, int64_t global_batch, int rank, int world_size,
                          const char* what);

}  // namespace qwen3
