#include "vtx/tensor.hpp"

#include <cstring>
#include <sstream>

#include "core/half.hpp"
#include "vtx/error.hpp"

namespace vtx {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::U8: case DType::I8: case DType::BOOL: return 1;
    case DType::I64: return 8;
  }
  return 1;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::U8: return "U8";
    case DType::I8: return "I8";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

Tensor::Tensor(std::vector<int64_t> shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  for (int64_t d : shape_)
    if (d < 0) throw Error("tensor: negative dimension in shape " + shape_str());
  size_t n = nbytes();
  data_ = std::shared_ptr<std::byte[]>(new std::byte[n ? n : 1]());
}

Tensor Tensor::uninitialized(std::vector<int64_t> shape, DType dtype) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  for (int64_t d : t.shape_)
    if (d < 0) throw Error("tensor: negative dimension in shape " + t.shape_str());
  const size_t n = t.nbytes();
  t.data_ = std::shared_ptr<std::byte[]>(new std::byte[n ? n : 1]);
  return t;
}

Tensor Tensor::wrap(std::vector<int64_t> shape, DType dtype, void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  for (int64_t d : t.shape_)
    if (d < 0) throw Error("tensor: negative dimension in shape " + t.shape_str());
  if (!data && t.numel() != 0) throw Error("tensor: wrap of a null pointer with shape " + t.shape_str());
  // Aliasing constructor: shares ownership with `owner`, points at `data`.
  t.data_ = std::shared_ptr<std::byte[]>(std::move(owner), static_cast<std::byte*>(data));
  if (!t.data_) {  // an empty tensor with no owner still needs non-null storage (empty() means "unset")
    t.data_ = std::shared_ptr<std::byte[]>(new std::byte[1]());
  }
  return t;
}

Tensor Tensor::from_data(std::vector<int64_t> shape, const float* data) {
  Tensor t = uninitialized(std::move(shape), DType::F32);
  if (t.numel()) std::memcpy(t.raw(), data, t.nbytes());
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Tensor Tensor::clone() const {
  Tensor t = uninitialized(shape_, dtype_);
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

Tensor Tensor::to_f32() const {
  if (dtype_ == DType::F32) return *this;
  Tensor t = uninitialized(shape_, DType::F32);
  float* o = t.data<float>();
  const int64_t n = numel();
  const void* p = raw();
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype_) {
      case DType::F16: o[i] = f16_to_f32(static_cast<const uint16_t*>(p)[i]); break;
      case DType::BF16: o[i] = bf16_to_f32(static_cast<const uint16_t*>(p)[i]); break;
      case DType::U8: case DType::BOOL: o[i] = static_cast<const uint8_t*>(p)[i]; break;
      case DType::I8: o[i] = static_cast<const int8_t*>(p)[i]; break;
      case DType::I32: o[i] = static_cast<float>(static_cast<const int32_t*>(p)[i]); break;
      case DType::I64: o[i] = static_cast<float>(static_cast<const int64_t*>(p)[i]); break;
      case DType::F32: break;
    }
  }
  return t;
}

Tensor Tensor::reshape(std::vector<int64_t> shape) const {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype_;
  t.data_ = data_;
  if (t.numel() != numel()) throw Error("tensor: cannot reshape " + shape_str() + " to " + t.shape_str());
  return t;
}

std::string Tensor::shape_str() const {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape_.size(); ++i) os << (i ? ", " : "") << shape_[i];
  os << ']';
  return os.str();
}

}  // namespace vtx
