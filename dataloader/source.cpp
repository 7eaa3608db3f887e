#include "dataloader/source.h"

#include <glob.h>
#include <sys/resource.h>

#include <algorithm>

#include "core/util/format.h"

namespace qwen3 {

std::vector<std::string> expand_shard_pattern(const std::string& pattern, const std::string& what) {
  QWEN3_CHECK(!pattern.empty(), "{}: the shard path pattern is empty", what);
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  glob_t matches{};
  const int status = glob(pattern.c_str(), GLOB_ERR, nullptr, &matches);
  std::vector<std::string> paths;
  if (status == 0)
    for (size_t i = 0; i < matches.gl_pathc; ++i)
      paths.emplace_back(matches.gl_pathv[i]);
  globfree(&matches);
  if (status == GLOB_NOMATCH || (status == 0 && paths.empty()))
    throw_error(fmt::format("{}: pattern '{}' matches no files", what, pattern));
  QWEN3_CHECK(status == 0, "{}: cannot list pattern '{}' (glob error {})", what, pattern, status);
  std::sort(paths.begin(), paths.end());
  return paths;
}

Source::Source(std::string name, const std::string& pattern, int64_t seq_len,
               int64_t model_vocab_size)
    : name_(std::move(name)), seq_len_(seq_len), model_vocab_size_(model_vocab_size) {
  QWEN3_CHECK(seq_len_ >= 1, "data source '{}': seq_len must be positive, got {}", name_, seq_len_);
  QWEN3_CHECK(model_vocab_size_ >= 1, "data source '{}': the model's vocab_size must be positive",
              name_);
  sample_begin_.push_back(0);
  for (const std::string& path : expand_shard_pattern(pattern, "data source '" + name_ + "'")) {
    ShardReader shard(path);
    shard.release();
    const ShardInfo& info = shard.info();
    if (info.vocab_size > model_vocab_size_)
      throw_error(
          fmt::format("data shard '{}' was tokenized with vocab_size {} (tokenizer '{}'), "
                      "larger than the model's vocab_size {}; its tokens may not fit the "
                      "embedding",
                      path, info.vocab_size, info.tokenizer, model_vocab_size_));
    if (info.num_tokens < seq_len_ + 1)
      throw_error(
          fmt::format("data shard '{}' has {} tokens, fewer than one window of seq_len + "
                      "1 = {} tokens; merge it with another shard or drop it from '{}'",
                      path, info.num_tokens, seq_len_ + 1, pattern));
    if (!shards_.empty())
      check_same_tokenizer(info, shards_.front().info(), "data source '" + name_ + "'");
    num_tokens_ += info.num_tokens;
    num_documents_ += info.num_documents;
    sample_begin_.push_back(sample_begin_.back() + (info.num_tokens - 1) / seq_len_);
    shards_.push_back(std::move(shard));
  }
  window_.resize(static_cast<size_t>(seq_len_ + 1));
  max_open_shards_ = max_open_shards();
  open_position_.resize(shards_.size());
  in_open_order_.assign(shards_.size(), false);
}

std::pair<size_t, int64_t> Source::locate(int64_t sample) const {
  QWEN3_CHECK(sample >= 0 && sample < num_samples(),
              "data source '{}': window {} is out of range [0, {})", name_, sample, num_samples());
  const auto next = std::upper_bound(sample_begin_.begin(), sample_begin_.end(), sample);
  const auto shard = static_cast<size_t>(next - sample_begin_.begin() - 1);
  return {shard, (sample - sample_begin_[shard]) * seq_len_};
}

size_t Source::max_open_shards() {
  rlimit limit{};
  const rlim_t soft = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 1024;
  return static_cast<size_t>(std::clamp<rlim_t>(soft / 8, 64, 4096));
}

void Source::touch(size_t shard) {
  if (in_open_order_[shard]) {
    open_order_.splice(open_order_.begin(), open_order_, open_position_[shard]);
    return;
  }
  open_order_.push_front(shard);
  open_position_[shard] = open_order_.begin();
  in_open_order_[shard] = true;
  if (open_order_.size() > max_open_shards_) {
    const size_t oldest = open_order_.back();
    shards_[oldest].release();
    in_open_order_[oldest] = false;
    open_order_.pop_back();
  }
}

void Source::read_window(int64_t sample, const WindowRows& rows) {
  const auto [shard_index, begin] = locate(sample);
  ShardReader& shard = shards_[shard_index];
  touch(shard_index);
  shard.read_tokens(begin, seq_len_ + 1, window_.data());

  const auto vocab = static_cast<uint32_t>(model_vocab_size_);
  uint32_t largest = 0;
  for (uint32_t token : window_)
    largest = std::max(largest, token);
  if (largest >= vocab) {
    const auto at =
        std::find_if(window_.begin(), window_.end(), [&](uint32_t t) { return t >= vocab; });
    throw_error(fmt::format(
        "data shard '{}': token {} at position {} is not below the model's "
        "vocab_size {} (the data and the model disagree on the tokenizer, or "
        "the shard is corrupt)",
        shard.info().path, *at, with_commas(begin + (at - window_.begin())), model_vocab_size_));
  }

  // Documents starting inside the window restart the positions and take the next id.
  shard.document_starts(begin, begin + seq_len_, starts_);
  size_t next = 0;
  int32_t doc_id = 0, position = 0;
  for (int64_t t = 0; t < seq_len_; ++t) {
    if (next < starts_.size() && begin + t == starts_[next]) {
      ++doc_id;
      position = 0;
      ++next;
    }
    rows.inputs[t] = static_cast<int32_t>(window_[static_cast<size_t>(t)]);
    rows.targets[t] = static_cast<int32_t>(window_[static_cast<size_t>(t + 1)]);
    rows.positions[t] = position++;
    rows.doc_ids[t] = doc_id;
  }
}

}  // namespace qwen3
