#pragma once
// All tensors of a hub checkpoint folder: model.safetensors, or model.safetensors.index.json + shards.
// Keys are the HF state-dict names, used as they are. Every access checks presence, and shape when
// given, and throws vtx::Error naming the file and the key.
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "io/safetensors.hpp"
#include "vtx/tensor.hpp"

namespace vtx::io {

class WeightStore {
 public:
  static std::unique_ptr<WeightStore> open(const std::string& dir);

  bool has(const std::string& key) const;
  // Loads a tensor converted to F32; if shape is non-empty it must match exactly.
  Tensor f32(const std::string& key, const std::vector<int64_t>& shape = {}) const;
  std::vector<int64_t> shape(const std::string& key) const;
  std::string file_of(const std::string& key) const;
  std::vector<std::string> keys() const;
  const std::string& dir() const { return dir_; }

  // A float tensor (F32/F16/BF16) in place in the mapped file, no copy; same checks as f32(). The bytes may be
  // unaligned and stay valid as long as the store.
  struct View {
    const void* data;
    DType dtype;
    std::vector<int64_t> shape;
  };
  View view(const std::string& key, const std::vector<int64_t>& shape = {}) const;
  // The tensor has been consumed (packed / copied): drop its pages from the resident set (see
  // SafeTensorsFile::drop_pages). Views and later reads stay valid. No-op for unknown keys.
  void release(const std::string& key) const;

  DType dtype(const std::string& key) const;     // as stored; throws (naming file and key) when missing
  Tensor raw(const std::string& key) const;       // a copy as stored (any dtype)

  // Which tensors were read through view() / f32() / raw() (shape(), dtype() and has() do not count). Shared,
  // so that it outlives the store: after a model is built, Model::load reports the checkpoint tensors the
  // architecture did not use.
  struct Usage {
    std::string dir;
    std::map<std::string, std::string> file_of;  // every key -> its file
    std::mutex mu;
    std::set<std::string> used;
    std::vector<std::string> unused();  // sorted
  };
  std::shared_ptr<Usage> usage() const { return usage_; }
  std::vector<std::string> unused() const { return usage_->unused(); }
  void mark_used(const std::string& key) const;

  int64_t num_parameters() const;
  std::map<std::string, int64_t> dtype_counts() const;  // "F32" -> number of tensors

 private:
  std::string dir_;
  std::string source_;  // model.safetensors or model.safetensors.index.json: named for a missing key
  std::shared_ptr<Usage> usage_ = std::make_shared<Usage>();
  std::vector<std::unique_ptr<SafeTensorsFile>> files_;
  std::map<std::string, const SafeTensorsFile*> where_;
};

}  // namespace vtx::io
