#pragma once
// qwen3-prep's tokenizing threads: batches of raw text documents go in, in input order; worker
// threads tokenize them, each with an Encoder of its own; batches come back in the order they went
// in, whatever the number of threads. So the shards do not depend on the thread count.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataloader/prep_progress.h"
#include "dataloader/prep_readers.h"
#include "dataloader/tokenizer/tokenizer.h"

namespace qwen3 {

struct TextDocument {
  std::string raw;  // the file's text, or the JSONL line
  DocumentPosition position;
  TextOutcome outcome = TextOutcome::kDocument;
  std::vector<uint32_t> tokens;
};

struct TextBatch {
  std::vector<TextDocument> documents;
  size_t raw_bytes = 0;
  // The first error, in document order; documents after it are left as they are.
  std::exception_ptr error;
  bool done = false;
};

class TokenizingPool {
 public:
  // `paths` are the input files that positions index; `threads` at least 1.
  TokenizingPool(const Tokenizer& tokenizer, TextSettings settings,
                 const std::vector<std::string>& paths, int threads);
  ~TokenizingPool();
  TokenizingPool(const TokenizingPool&) = delete;
  TokenizingPool& operator=(const TokenizingPool&) = delete;

  void submit(std::unique_ptr<TextBatch> batch);
  // The oldest batch submitted and not yet taken, once it is tokenized; nullptr when none is left.
  std::unique_ptr<TextBatch> take_oldest();
  size_t in_flight() const { return in_flight_.size(); }

 private:
  void work(const Tokenizer& tokenizer);

  const TextSettings settings_;
  const std::vector<std::string>& paths_;
  std::mutex mutex_;
  std::condition_variable work_ready_, batch_done_;
  std::deque<TextBatch*> queue_;                      // submitted, not yet picked up by a worker
  std::deque<std::unique_ptr<TextBatch>> in_flight_;  // submitted, not yet taken, oldest first
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace qwen3
