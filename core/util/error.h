#pragma once
// One family of checks for the whole project. Library code throws qwen3::Error; only the programs
// in launch/ catch it and decide to exit. Every message names the rank (once parallel/ has set it),
// and call checks also name the failing call, file and line.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace qwen3 {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The rank printed in every error. -1 means "not running under MPI (yet)".
void set_process_rank(int rank);
int process_rank();

// "[rank 3] " or "" before any rank is known.
std::string rank_prefix();

// The message of an Error without its leading rank prefix, for wrapping it in another message
// (which gets its own) or printing it after "on rank R".
std::string without_rank_prefix(const std::string& message);

[[noreturn]] void throw_error(const std::string& message);

// Reports a failed library call: which library, the call's source text, its status code and the
// library's description of it, and where it was made.
[[noreturn]] void throw_call_failure(const char* library, const char* call_text, long long code,
                                     const std::string& description, const char* file, int line);

}  // namespace qwen3

// QWEN3_CHECK(condition, "format {}", args...): throws qwen3::Error with the formatted message.
#define QWEN3_CHECK(condition, ...)                                   \
  do {                                                                \
    if (!(condition)) ::qwen3::throw_error(fmt::format(__VA_ARGS__)); \
  } while (0)

// Building block for the per-library macros (QWEN3_CUDA_CHECK, QWEN3_CUBLAS_CHECK,
// QWEN3_NCCL_CHECK, QWEN3_MPI_CHECK, QWEN3_HDF5_CHECK): `ok` is an expression over `status_`,
// `describe` turns `status_` into text.
#define QWEN3_CALL_CHECK(library, call, ok, describe)                                          \
  do {                                                                                         \
    auto status_ = (call);                                                                     \
    if (!(ok))                                                                                 \
      ::qwen3::throw_call_failure(library, #call, static_cast<long long>(status_), (describe), \
                                  __FILE__, __LINE__);                                         \
  } while (0)
