#include "core/model/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "core/util/file_io.h"

// Tensor bytes are little-endian in the file and are copied to and from memory as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors I/O assumes a little-endian host");

namespace qwen3 {
namespace {

using json = nlohmann::json;

// The safetensors package refuses headers above 100 MB; so do we, before allocating for one.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
// Elements converted per write or read call: 2 MiB of bf16, 4 MiB of fp32.
constexpr int64_t kChunkElements = int64_t(1) << 20;

// Every dtype the format defines, so that a file holding, say, int64 tensors next to the weights
// still validates; only F32, BF16 and F16 convert to fp32.
size_t known_dtype_size(const std::string& dtype) {
  static const std::pair<const char*, size_t> kDTypes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  for (const auto& [name, size] : kDTypes)
    if (dtype == name) return size;
  return 0;
}

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err) {
  throw_error(fmt::format("{} '{}' failed: {}", what, path, std::strerror(err)));
}

void write_all(int fd, const void* data, size_t bytes, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("writing", path, errno);
    }
    p += n;
    bytes -= size_t(n);
  }
}

// Reads exactly `bytes` at `offset`; false when the file ends first.
bool pread_all(int fd, void* out, size_t bytes, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(out);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("reading", path, errno);
    }
    if (n == 0) return false;
    p += n;
    bytes -= size_t(n);
    offset += uint64_t(n);
  }
  return true;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Element count, or -1 when it does not fit in int64.
int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

// Closes on scope exit unless released.
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

// Records the first duplicate key of any JSON object while nlohmann parses; nlohmann itself keeps
// the last value silently, and two tensors under one name would hide one of them.
struct DuplicateKeyFinder {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  bool duplicate_at_top = false;

  bool operator()(int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) {
        duplicate = key;
        duplicate_at_top = open_objects.size() == 1;
      }
    }
    return true;
  }
};

}  // namespace

float f16_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {  // infinity or NaN
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: shift the mantissa up until its leading 1 becomes the implicit bit
    exponent = 113;
    while (!(mantissa & 0x400u)) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

int64_t SafetensorsEntry::numel() const {
  return checked_numel(shape);
}

std::string SafetensorsEntry::shape_str() const {
  return shape_text(shape);
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Insertion order is kept so that the header lists tensors in the order their data follows.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata)
      meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const SafetensorsTensor& t : tensors) {
    QWEN3_CHECK(!t.name.empty() && t.name != "__metadata__",
                "{}: tensor name '{}' is reserved or empty", path, t.name);
    QWEN3_CHECK(names.insert(t.name).second, "{}: tensor '{}' is listed twice", path, t.name);
    QWEN3_CHECK(t.dtype == DType::F32 || t.dtype == DType::BF16,
                "{}: tensor '{}' has dtype {}; safetensors files are written in F32 or BF16", path,
                t.name, dtype_name(t.dtype));
    const int64_t numel = checked_numel(t.shape);
    QWEN3_CHECK(numel >= 0, "{}: tensor '{}' has an invalid shape {}", path, t.name,
                shape_text(t.shape));
    QWEN3_CHECK(numel == 0 || t.data != nullptr, "{}: tensor '{}' has no data", path, t.name);
    const uint64_t bytes = uint64_t(numel) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", t.dtype == DType::F32 ? "F32" : "BF16"},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {  // a name or value that is not UTF-8
    throw_error(fmt::format("{}: cannot write the safetensors header: {}", path, e.what()));
  }
  // Spaces up to a multiple of 8, as the format asks, so the data starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  FdGuard f;
  f.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f.fd < 0) throw_io("creating", path, errno);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));
  write_all(f.fd, length, sizeof length, path);
  write_all(f.fd, text.data(), text.size(), path);
  std::vector<uint16_t> chunk;
  for (const SafetensorsTensor& t : tensors) {
    const int64_t numel = checked_numel(t.shape);
    if (t.dtype == DType::F32) {
      write_all(f.fd, t.data, size_t(numel) * sizeof(float), path);
      continue;
    }
    chunk.resize(size_t(std::min(numel, kChunkElements)));
    for (int64_t first = 0; first < numel; first += kChunkElements) {
      const int64_t n = std::min(kChunkElements, numel - first);
      for (int64_t i = 0; i < n; ++i)
        chunk[size_t(i)] = float_to_bf16_bits(t.data[first + i]);
      write_all(f.fd, chunk.data(), size_t(n) * sizeof(uint16_t), path);
    }
  }
  // A failed close can be the first report of a failed write (NFS, quota).
  if (::close(f.release()) != 0) throw_io("closing", path, errno);
  fsync_path(path);
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  FdGuard f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) throw_io("opening", path, errno);
  struct stat st;
  if (::fstat(f.fd, &st) != 0) throw_io("stat of", path, errno);
  QWEN3_CHECK(S_ISREG(st.st_mode), "{}: not a regular file", path);
  const uint64_t file_size = uint64_t(st.st_size);
  QWEN3_CHECK(file_size >= 8,
              "{}: truncated safetensors file: {} bytes, fewer than the 8-byte header length", path,
              file_size);

  unsigned char length_bytes[8];
  QWEN3_CHECK(pread_all(f.fd, length_bytes, 8, 0, path), "{}: truncated while reading", path);
  uint64_t header_bytes = 0;
  for (int i = 0; i < 8; ++i)
    header_bytes |= uint64_t(length_bytes[i]) << (8 * i);
  QWEN3_CHECK(header_bytes <= file_size - 8,
              "{}: header length {} runs past the end of the file ({} bytes): truncated or not a "
              "safetensors file",
              path, header_bytes, file_size);
  QWEN3_CHECK(header_bytes <= kMaxHeaderBytes,
              "{}: header length {} exceeds the format's limit of {} bytes", path, header_bytes,
              kMaxHeaderBytes);
  std::string text(size_t(header_bytes), '\0');
  QWEN3_CHECK(pread_all(f.fd, text.data(), text.size(), 8, path), "{}: truncated while reading",
              path);
  data_start_ = 8 + header_bytes;
  const uint64_t data_bytes = file_size - data_start_;

  DuplicateKeyFinder duplicates;
  json header;
  try {
    header = json::parse(text, std::ref(duplicates));
  } catch (const json::parse_error& e) {
    throw_error(fmt::format("{}: safetensors header is not valid JSON: {}", path, e.what()));
  }
  QWEN3_CHECK(duplicates.duplicate.empty(), "{}: header lists {} '{}' twice", path,
              duplicates.duplicate_at_top ? "tensor" : "key", duplicates.duplicate);
  QWEN3_CHECK(header.is_object(), "{}: safetensors header is a JSON {}, not an object", path,
              header.type_name());

  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      QWEN3_CHECK(value.is_object(), "{}: __metadata__ must be an object of strings", path);
      for (const auto& [key, text_value] : value.items()) {
        QWEN3_CHECK(text_value.is_string(), "{}: __metadata__ '{}' must be a string, not {}", path,
                    key, text_value.type_name());
        metadata_[key] = text_value.get<std::string>();
      }
      continue;
    }
    QWEN3_CHECK(!name.empty(), "{}: a tensor has an empty name", path);
    QWEN3_CHECK(value.is_object(), "{}: tensor '{}': entry must be an object, not {}", path, name,
                value.type_name());
    for (const auto& item : value.items())
      QWEN3_CHECK(item.key() == "dtype" || item.key() == "shape" || item.key() == "data_offsets",
                  "{}: tensor '{}': unknown key '{}' (expected dtype, shape, data_offsets)", path,
                  name, item.key());
    for (const char* key : {"dtype", "shape", "data_offsets"})
      QWEN3_CHECK(value.contains(key), "{}: tensor '{}': missing '{}'", path, name, key);

    SafetensorsEntry e;
    e.name = name;
    const json& dtype = value["dtype"];
    QWEN3_CHECK(dtype.is_string(), "{}: tensor '{}': dtype must be a string", path, name);
    e.dtype = dtype.get<std::string>();
    const size_t element_size = known_dtype_size(e.dtype);
    QWEN3_CHECK(element_size > 0, "{}: tensor '{}': unknown dtype '{}'", path, name, e.dtype);

    const json& shape = value["shape"];
    QWEN3_CHECK(shape.is_array(), "{}: tensor '{}': shape must be a list", path, name);
    for (const json& d : shape) {
      QWEN3_CHECK(d.is_number_unsigned() &&
                      d.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()),
                  "{}: tensor '{}': shape {} holds something other than a non-negative integer",
                  path, name, shape.dump());
      e.shape.push_back(int64_t(d.get<uint64_t>()));
    }
    const json& offsets = value["data_offsets"];
    QWEN3_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                    offsets[1].is_number_unsigned(),
                "{}: tensor '{}': data_offsets must be two non-negative integers, got {}", path,
                name, offsets.dump());
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    QWEN3_CHECK(e.begin <= e.end, "{}: tensor '{}': data_offsets [{}, {}] end before they begin",
                path, name, e.begin, e.end);

    const int64_t numel = e.numel();
    QWEN3_CHECK(numel >= 0 && uint64_t(numel) <= std::numeric_limits<uint64_t>::max() / 8,
                "{}: tensor '{}': shape {} has too many elements", path, name, e.shape_str());
    const uint64_t expected = uint64_t(numel) * element_size;
    QWEN3_CHECK(e.end - e.begin == expected,
                "{}: tensor '{}': shape {} of {} needs {} bytes, but data_offsets [{}, {}] span {}",
                path, name, e.shape_str(), e.dtype, expected, e.begin, e.end, e.end - e.begin);
    QWEN3_CHECK(e.end <= data_bytes,
                "{}: tensor '{}': data_offsets [{}, {}] run past the end of the data ({} bytes): "
                "the file is truncated",
                path, name, e.begin, e.end, data_bytes);
    tensors_.push_back(std::move(e));
  }

  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  // Empty tensors occupy no bytes and cannot overlap anything.
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& e : tensors_) {
    if (e.begin == e.end) continue;
    QWEN3_CHECK(!previous || e.begin >= previous->end,
                "{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data", path,
                previous ? previous->name : "", previous ? previous->begin : 0,
                previous ? previous->end : 0, e.name, e.begin, e.end);
    previous = &e;
  }
  for (size_t i = 0; i < tensors_.size(); ++i)
    index_[tensors_[i].name] = i;
  fd_ = f.release();
}

SafetensorsReader::~SafetensorsReader() {
  close();
}

SafetensorsReader::SafetensorsReader(SafetensorsReader&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      data_start_(other.data_start_),
      tensors_(std::move(other.tensors_)),
      index_(std::move(other.index_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsReader& SafetensorsReader::operator=(SafetensorsReader&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    data_start_ = other.data_start_;
    tensors_ = std::move(other.tensors_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

void SafetensorsReader::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

const SafetensorsEntry* SafetensorsReader::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsEntry& SafetensorsReader::at(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  QWEN3_CHECK(e != nullptr, "{}: no tensor '{}'", path_, name);
  return *e;
}

void SafetensorsReader::read_f32(const std::string& name, float* out, int64_t first,
                                 int64_t count) const {
  QWEN3_CHECK(fd_ >= 0, "{}: reading tensor '{}' from a closed file", path_, name);
  const SafetensorsEntry& e = at(name);
  const int64_t numel = e.numel();
  if (count < 0) count = numel - first;
  QWEN3_CHECK(first >= 0 && count >= 0 && first <= numel && count <= numel - first,
              "{}: tensor '{}': elements [{}, {}) are outside its {} elements", path_, name, first,
              first + count, numel);
  const bool f32 = e.dtype == "F32", bf16 = e.dtype == "BF16", f16 = e.dtype == "F16";
  QWEN3_CHECK(f32 || bf16 || f16,
              "{}: tensor '{}' is {}; only F32, BF16 and F16 tensors are read as fp32", path_, name,
              e.dtype);
  const size_t element_size = f32 ? 4 : 2;
  const uint64_t start = data_start_ + e.begin + uint64_t(first) * element_size;
  auto truncated = [&] {
    throw_error(
        fmt::format("{}: tensor '{}': the file ended while reading it (changed since it "
                    "was opened?)",
                    path_, name));
  };
  if (f32) {
    if (!pread_all(fd_, out, size_t(count) * 4, start, path_)) truncated();
    return;
  }
  std::vector<uint16_t> chunk(size_t(std::min(count, kChunkElements)));
  for (int64_t done = 0; done < count; done += kChunkElements) {
    const int64_t n = std::min(kChunkElements, count - done);
    if (!pread_all(fd_, chunk.data(), size_t(n) * 2, start + uint64_t(done) * 2, path_))
      truncated();
    for (int64_t i = 0; i < n; ++i)
      out[done + i] =
          bf16 ? bf16_bits_to_float(chunk[size_t(i)]) : f16_bits_to_float(chunk[size_t(i)]);
  }
}

}  // namespace qwen3
