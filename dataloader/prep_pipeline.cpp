#include "dataloader/prep_pipeline.h"

namespace qwen3 {

TokenizingPool::TokenizingPool(const Tokenizer& tokenizer, TextSettings settings,
                               const std::vector<std::string>& paths, int threads)
    : settings_(std::move(settings)), paths_(paths) {
  for (int t = 0; t < threads; ++t)
    workers_.emplace_back([this, &tokenizer] { work(tokenizer); });
}

TokenizingPool::~TokenizingPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_)
    worker.join();
}

void TokenizingPool::submit(std::unique_ptr<TextBatch> batch) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(batch.get());
    in_flight_.push_back(std::move(batch));
  }
  work_ready_.notify_one();
}

std::unique_ptr<TextBatch> TokenizingPool::take_oldest() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (in_flight_.empty()) return nullptr;
  batch_done_.wait(lock, [&] { return in_flight_.front()->done; });
  std::unique_ptr<TextBatch> batch = std::move(in_flight_.front());
  in_flight_.pop_front();
  return batch;
}

void TokenizingPool::work(const Tokenizer& tokenizer) {
  Encoder encoder(tokenizer);
  for (;;) {
    TextBatch* batch = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      batch = queue_.front();
      queue_.pop_front();
    }
    try {
      for (TextDocument& document : batch->documents) {
        document.outcome = tokenize_text_document(
            document.raw, settings_, paths_[static_cast<size_t>(document.position.file)],
            document.position.location, encoder, document.tokens);
        document.raw = std::string();
      }
    } catch (...) {
      batch->error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      batch->done = true;
    }
    batch_done_.notify_all();
  }
}

}  // namespace qwen3
