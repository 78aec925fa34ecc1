#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vtx/export.hpp"

namespace vtx {

enum class DType : uint8_t { F32, F16, BF16, U8, I8, I32, I64, BOOL };

VTX_API size_t dtype_size(DType t);
VTX_API const char* dtype_name(DType t);  // safetensors spelling: "F32", "F16", "BF16", "U8", ...

// A dense, C-contiguous n-d array that owns (or shares) its storage.
// Copying a Tensor shares the storage (like torch); use clone() for a deep copy.
class VTX_API Tensor {
 public:
  Tensor() = default;
  Tensor(std::vector<int64_t> shape, DType dtype);  // zero-initialised
  static Tensor from_data(std::vector<int64_t> shape, const float* data);  // copies
  // Storage left uninitialised: for outputs that a kernel overwrites completely.
  static Tensor uninitialized(std::vector<int64_t> shape, DType dtype);
  // Wraps memory owned elsewhere without copying: `owner` keeps it alive for as long as any Tensor sharing
  // the storage exists (e.g. a numpy array's reference). `data` must hold numel * dtype_size bytes, C order.
  static Tensor wrap(std::vector<int64_t> shape, DType dtype, void* data, std::shared_ptr<void> owner);
  // The storage owner, for handing the memory to another runtime without a copy (keep it while using raw()).
  std::shared_ptr<void> storage() const { return data_; }

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + static_cast<int>(shape_.size()) : i); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  DType dtype() const { return dtype_; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return !data_; }

  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }
  template <class T> T* data() { return static_cast<T*>(raw()); }
  template <class T> const T* data() const { return static_cast<const T*>(raw()); }

  Tensor clone() const;
  Tensor to_f32() const;                                   // converts F16/BF16/U8/BOOL/I* to F32
  Tensor reshape(std::vector<int64_t> shape) const;        // shares storage
  std::string shape_str() const;                           // "[1, 3, 224, 224]"

 private:
  std::vector<int64_t> shape_;
  DType dtype_ = DType::F32;
  std::shared_ptr<std::byte[]> data_;
};

}  // namespace vtx
