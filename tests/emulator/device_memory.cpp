#include "tests/emulator/device_memory.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>

#include "tests/emulator/emulator.h"
#include "tests/emulator/guard_pages.h"

namespace qwen3::emulator {

namespace {

constexpr size_t kAlignment = 256;  // cudaMalloc's

// The margins' poison, by address parity: bytes 0x81, 0xFF make every aligned bf16 0xFF81 and
// every fp32 0xFF81FF81, signalling NaNs. A read gives NaN, and arithmetic on it a quiet NaN, so
// a value computed from a margin read and written back into a margin still differs from the
// poison.
unsigned char poison_at(const unsigned char* address) {
  return reinterpret_cast<uintptr_t>(address) & 1u ? 0xFF : 0x81;
}

void poison(unsigned char* begin, unsigned char* end) {
  for (unsigned char* p = begin; p < end; ++p)
    *p = poison_at(p);
}

struct Allocation {
  char* mapping;
  size_t mapping_bytes;
  char* low;   // first byte between the guard pages
  char* high;  // one past the last
  size_t bytes;
};

std::map<const char*, Allocation>& allocations() {
  static std::map<const char*, Allocation> all;
  return all;
}

size_t page_bytes() {
  static const size_t bytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return bytes;
}

// Checks and re-poisons [begin, end); returns the offset of the first changed byte or -1.
int64_t first_changed(unsigned char* begin, unsigned char* end) {
  int64_t first = -1;
  for (unsigned char* p = begin; p < end; ++p) {
    if (*p != poison_at(p)) {
      if (first < 0) first = p - begin;
      *p = poison_at(p);
    }
  }
  return first;
}

}  // namespace

void* allocate_device_memory(size_t bytes) {
  install_fault_handler();
  const size_t page = page_bytes();
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  const size_t data_pages = (rounded + page - 1) / page;
  const size_t mapping_bytes = (data_pages + 2) * page;
  void* mapping =
      mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::bad_alloc();
  Allocation a;
  a.mapping = static_cast<char*>(mapping);
  a.mapping_bytes = mapping_bytes;
  a.low = a.mapping + page;
  a.high = a.low + data_pages * page;
  a.bytes = bytes;
  mprotect(a.mapping, page, PROT_NONE);
  mprotect(a.high, page, PROT_NONE);
  poison(reinterpret_cast<unsigned char*>(a.low), reinterpret_cast<unsigned char*>(a.high));
  char* data = a.high - rounded;
  register_guard_page(a.mapping, page,
                      fmt::format("the guard page before a {}-byte device buffer at {}", bytes,
                                  static_cast<void*>(data)));
  register_guard_page(a.high, page,
                      fmt::format("the guard page after a {}-byte device buffer at {}", bytes,
                                  static_cast<void*>(data)));
  allocations()[data] = a;
  return data;
}

void free_device_memory(void* pointer) {
  auto& all = allocations();
  const auto it = all.find(static_cast<const char*>(pointer));
  if (it == all.end())
    throw std::invalid_argument(
        fmt::format("emulator: {} is not a live device allocation", pointer));
  const Allocation& a = it->second;
  unregister_guard_page(a.mapping);
  unregister_guard_page(a.high);
  munmap(a.mapping, a.mapping_bytes);
  all.erase(it);
}

size_t device_bytes_from(const void* pointer) {
  const auto& all = allocations();
  const char* p = static_cast<const char*>(pointer);
  auto it = all.upper_bound(p);
  if (it == all.begin()) return 0;
  --it;
  const char* end = it->first + it->second.bytes;
  return p < end ? size_t(end - p) : 0;
}

size_t live_device_bytes() {
  size_t total = 0;
  for (const auto& entry : allocations())
    total += entry.second.bytes;
  return total;
}

void check_device_memory_margins(const std::string& context) {
  for (auto& [data, a] : allocations()) {
    auto* begin = reinterpret_cast<unsigned char*>(a.low);
    auto* start = reinterpret_cast<unsigned char*>(const_cast<char*>(data));
    auto* end = start + a.bytes;
    const int64_t before = first_changed(begin, start);
    const int64_t after = first_changed(end, reinterpret_cast<unsigned char*>(a.high));
    if (before >= 0)
      throw KernelFault(
          fmt::format("{}: wrote {} bytes before the start of a {}-byte device "
                      "buffer at {}",
                      context, start - (begin + before), a.bytes, static_cast<const void*>(data)));
    if (after >= 0)
      throw KernelFault(
          fmt::format("{}: wrote at byte {} of a {}-byte device buffer at {}, "
                      "past its end",
                      context, a.bytes + after, a.bytes, static_cast<const void*>(data)));
  }
}

}  // namespace qwen3::emulator
