#pragma once
// Durable file writes, for checkpoints: a file is written in full, flushed to the device and only
// then renamed into place, so a crash (kill -9, power loss) leaves either the old file or the new
// one, never a torn one. Errors name the path and the failing system call.
#include <cstdint>
#include <string>

namespace qwen3 {

// Writes `data` to `path`.tmp, fsyncs it, renames it to `path` and fsyncs the directory.
void write_file_atomic(const std::string& path, const std::string& data);
// Whole file as bytes; throws naming the path.
std::string read_file(const std::string& path);
// Flushes a written file (or a directory's entries) to stable storage.
void fsync_path(const std::string& path);
// fsyncs the directory that holds `path`, making a rename or creation in it durable.
void fsync_parent_dir(const std::string& path);
// CRC-32 (zlib's polynomial) of the whole file, and its size in bytes.
struct FileChecksum {
  uint64_t bytes = 0;
  uint32_t crc32 = 0;
};
FileChecksum checksum_file(const std::string& path);

}  // namespace qwen3
