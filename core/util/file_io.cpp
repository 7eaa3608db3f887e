#include "core/util/file_io.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/util/error.h"

namespace qwen3 {
namespace {

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err) {
  throw Error(what + " '" + path + "' failed: " + std::strerror(err));
}

// Closes on scope exit; a failed close of a written file is checked explicitly.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void fsync_path(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) throw_io("open (for fsync) of", path, errno);
  if (::fsync(f.fd) != 0) throw_io("fsync of", path, errno);
}

void fsync_parent_dir(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  fsync_path(parent.empty() ? "." : parent);
}

void write_file_atomic(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  {
    Fd f;
    f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f.fd < 0) throw_io("creating", tmp, errno);
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(f.fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_io("writing", tmp, errno);
      }
      done += size_t(n);
    }
    if (::fsync(f.fd) != 0) throw_io("fsync of", tmp, errno);
    const int fd = f.fd;
    f.fd = -1;
    if (::close(fd) != 0) throw_io("closing", tmp, errno);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw_io("renaming to", path, errno);
  fsync_parent_dir(path);
}

std::string read_file(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) throw_io("opening", path, errno);
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(f.fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("reading", path, errno);
    }
    if (n == 0) break;
    out.append(buffer, size_t(n));
  }
  return out;
}

FileChecksum checksum_file(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) throw_io("opening", path, errno);
  // 4 MiB reads: large enough that the syscall count is negligible next to the CRC itself.
  std::vector<unsigned char> buffer(size_t(4) << 20);
  FileChecksum sum;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (;;) {
    const ssize_t n = ::read(f.fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("reading", path, errno);
    }
    if (n == 0) break;
    crc = crc32_z(crc, buffer.data(), size_t(n));
    sum.bytes += uint64_t(n);
  }
  sum.crc32 = uint32_t(crc);
  return sum;
}

}  // namespace qwen3
