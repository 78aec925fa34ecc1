#pragma once
// All tensors of a hub checkpoint folder: model.safetensors, or model.safetensors.index.json + shards.
// Keys are the HF state-dict names, used as they are. Every access checks presence, and shape when
// given, and throws vtx::Error naming the file and the key.
#include <map>
#include <memory>
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

  int64_t num_parameters() const;
  std::map<std::string, int64_t> dtype_counts() const;  // "F32" -> number of tensors

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafeTensorsFile>> files_;
  std::map<std::string, const SafeTensorsFile*> where_;
};

}  // namespace vtx::io
