#pragma once
// TensorView: a typed, shaped window onto memory owned elsewhere (a flat parameter, gradient or
// activation buffer). Views never own memory; slicing a flat buffer into named views is how
// parameters, gradients and activations are organised (llm.c's layout).
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace qwen3 {

enum class Device { CPU, CUDA };
// F32: CPU storage, accumulators, optimizer state. BF16: CUDA storage. I32: token ids, positions.
// F64 and I64: host-side sums reduced across ranks (loss sums, scored-token counts, norms).
enum class DType { F32, BF16, I32, F64, I64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(Device device);

constexpr int kMaxRank = 4;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t numel() const;
  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }
  std::string str() const;  // "[4, 512, 1024]"

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  Shape shape;

  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  // The same memory seen with another shape of equal element count.
  TensorView reshaped(Shape new_shape) const;
  // Rows [first, first + count) along the first dimension, the others kept: elements of a 1-D
  // view, rows of a matrix. Bounds-checked.
  TensorView rows(int64_t first, int64_t count) const;

  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

}  // namespace qwen3
