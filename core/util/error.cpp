#include "core/util/error.h"

#include <atomic>

namespace qwen3 {

namespace {
std::atomic<int> g_process_rank{-1};
}

void set_process_rank(int rank) {
  g_process_rank.store(rank);
}
int process_rank() {
  return g_process_rank.load();
}

std::string rank_prefix() {
  const int rank = process_rank();
  return rank < 0 ? std::string() : fmt::format("[rank {}] ", rank);
}

std::string without_rank_prefix(const std::string& message) {
  const std::string prefix = rank_prefix();
  if (!prefix.empty() && message.compare(0, prefix.size(), prefix) == 0)
    return message.substr(prefix.size());
  return message;
}

void throw_error(const std::string& message) {
  throw Error(rank_prefix() + message);
}

void throw_call_failure(const char* library, const char* call_text, long long code,
                        const std::string& description, const char* file, int line) {
  throw Error(fmt::format("{}{} call failed: {} returned {} ({}) at {}:{}", rank_prefix(), library,
                          call_text, code, description, file, line));
}

}  // namespace qwen3
