#include "core/tensor/tensor.h"

#include "core/util/error.h"

namespace qwen3 {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return 4;
    case DType::BF16:
      return 2;
    case DType::I32:
      return 4;
    case DType::F64:
    case DType::I64:
      return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "f32";
    case DType::BF16:
      return "bf16";
    case DType::I32:
      return "i32";
    case DType::F64:
      return "f64";
    case DType::I64:
      return "i64";
  }
  return "?";
}

const char* device_name(Device device) {
  return device == Device::CPU ? "cpu" : "cuda";
}

Shape::Shape(std::initializer_list<int64_t> dims) {
  QWEN3_CHECK(dims.size() <= kMaxRank, "tensor rank {} exceeds the maximum {}", dims.size(),
              kMaxRank);
  for (int64_t d : dims) {
    QWEN3_CHECK(d >= 0, "negative tensor dimension {}", d);
    dims_[rank_++] = d;
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i)
    n *= dims_[i];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[i] != other.dims_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string out = "[";
  for (int i = 0; i < rank_; ++i)
    out += (i ? ", " : "") + std::to_string(dims_[i]);
  return out + "]";
}

TensorView TensorView::reshaped(Shape new_shape) const {
  QWEN3_CHECK(new_shape.numel() == numel(), "cannot view a tensor of shape {} as {}", shape.str(),
              new_shape.str());
  TensorView view = *this;
  view.shape = new_shape;
  return view;
}

TensorView TensorView::rows(int64_t first, int64_t count) const {
  QWEN3_CHECK(shape.rank() >= 1 && first >= 0 && count >= 0 && first + count <= shape[0],
              "rows [{}, {}) are outside a tensor of shape {}", first, first + count, shape.str());
  const int64_t row_elements = shape[0] > 0 ? numel() / shape[0] : 0;
  TensorView view = *this;
  view.data =
      static_cast<char*>(data) + static_cast<size_t>(first * row_elements) * dtype_size(dtype);
  switch (shape.rank()) {
    case 1:
      view.shape = Shape{count};
      break;
    case 2:
      view.shape = Shape{count, shape[1]};
      break;
    case 3:
      view.shape = Shape{count, shape[1], shape[2]};
      break;
    default:
      view.shape = Shape{count, shape[1], shape[2], shape[3]};
  }
  return view;
}

}  // namespace qwen3
