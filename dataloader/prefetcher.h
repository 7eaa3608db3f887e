#pragma once
// Runs a producer on one background thread, keeping up to `depth` items ready (plus one being
// produced) so the consumer (the training step) finds its next batch waiting. Errors thrown by the
// producer are rethrown by next() on the consumer's thread, with their message intact.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "core/util/error.h"

namespace qwen3 {

template <class Item>
class Prefetcher {
 public:
  // produce(item) fills `item` and returns true, or returns false when there is nothing more.
  Prefetcher(std::function<bool(Item&)> produce, int64_t depth)
      : produce_(std::move(produce)), depth_(static_cast<size_t>(depth)) {
    QWEN3_CHECK(depth >= 1, "prefetch depth must be at least 1, got {}", depth);
    worker_ = std::thread([this] { run(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    space_.notify_all();
    worker_.join();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item, blocking until it is ready; nullopt once the producer has finished.
  std::optional<Item> next() {
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return !queue_.empty() || finished_; });
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    wait_seconds_ += waited;
    last_wait_seconds_ = waited;
    if (queue_.empty()) {
      if (error_) std::rethrow_exception(error_);
      return std::nullopt;
    }
    Item item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    space_.notify_one();
    return item;
  }

  // Seconds next() has spent blocked, in total and in its latest call.
  double wait_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return wait_seconds_;
  }
  double last_wait_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_wait_seconds_;
  }

 private:
  void run() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        space_.wait(lock, [this] { return stopping_ || queue_.size() < depth_; });
        if (stopping_) break;
      }
      Item item;
      bool more = false;
      try {
        more = produce_(item);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        more = false;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (!more) break;
      queue_.push_back(std::move(item));
      ready_.notify_one();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    ready_.notify_all();
  }

  std::function<bool(Item&)> produce_;
  size_t depth_;
  mutable std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<Item> queue_;
  std::exception_ptr error_;
  bool stopping_ = false, finished_ = false;
  double wait_seconds_ = 0, last_wait_seconds_ = 0;
  std::thread worker_;
};

}  // namespace qwen3
