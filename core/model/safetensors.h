#pragma once
// The safetensors file format, as Hugging Face's `safetensors` package reads and writes it:
//
//   [8 bytes: N, little-endian uint64] [N bytes: JSON header] [data]
//
// The header maps each tensor name to {"dtype": "F32" | "BF16" | ..., "shape": [...],
// "data_offsets": [begin, end]} (byte offsets from the start of the data) and may hold a
// "__metadata__" object of string values. Writers pad the header with spaces to a multiple of 8
// bytes so that the data starts aligned.
//
// Files hold whole checkpoints (Qwen3-0.6B: 1.2 GB in bf16, 2.4 GB in fp32), so both directions
// stream one tensor at a time through a small buffer and never hold the file in memory.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor/bf16.h"
#include "core/tensor/tensor.h"

namespace qwen3 {

// One tensor to write. The values are fp32 on the host and are converted while writing when
// `dtype` is BF16 (round to nearest even), so a bf16 file needs no second copy of the model.
struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::F32;     // in the file: F32 or BF16
  std::vector<int64_t> shape;   // [] is a scalar
  const float* data = nullptr;  // shape's element count, row-major
};

// Writes `tensors` in the given order (data offsets ascending) with `metadata` as __metadata__,
// then fsyncs the file. Throws, naming the path or tensor, on a bad name, dtype or I/O error.
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

// One tensor as the header describes it.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // the file's name for it: "F32", "BF16", "F16", "I64", ...
  std::vector<int64_t> shape;   // [] is a scalar
  uint64_t begin = 0, end = 0;  // byte offsets from the start of the data
  int64_t numel() const;
  std::string shape_str() const;  // "[1024, 64]"
};

// An open safetensors file whose header has been checked in full: the header length against the
// file size, JSON syntax, duplicate names, each entry's keys and types, known dtypes, shape times
// dtype size equal to the offsets' span, offsets inside the data and no two tensors overlapping.
// Every error names the file and, where there is one, the tensor.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;
  SafetensorsReader(SafetensorsReader&& other) noexcept;
  SafetensorsReader& operator=(SafetensorsReader&& other) noexcept;

  const std::string& path() const { return path_; }
  // In data order.
  const std::vector<SafetensorsEntry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr when the file has no such tensor.
  const SafetensorsEntry* find(const std::string& name) const;
  // Throws, naming the file and tensor, when there is no such tensor.
  const SafetensorsEntry& at(const std::string& name) const;

  // Elements [first, first + count) of `name`, flattened row-major, converted to fp32 into
  // out[count]. count -1 means to the end. F32, BF16 and F16 tensors can be read this way. Reads
  // use pread, so several threads may read from one reader at once.
  void read_f32(const std::string& name, float* out, int64_t first = 0, int64_t count = -1) const;

 private:
  void close();

  std::string path_;
  int fd_ = -1;
  uint64_t data_start_ = 0;  // 8 + header length
  std::vector<SafetensorsEntry> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// IEEE half to fp32, subnormals, infinities and NaN included.
float f16_bits_to_float(uint16_t bits);

}  // namespace qwen3
