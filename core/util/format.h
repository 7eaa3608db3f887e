#pragma once
#include <cstdint>
#include <string>

namespace qwen3 {

// 596049920 -> "596,049,920": parameter counts are read by people.
std::string with_commas(int64_t value);

// 1536 * 1024 * 1024 -> "1.50 GiB".
std::string human_bytes(double bytes);

}  // namespace qwen3
