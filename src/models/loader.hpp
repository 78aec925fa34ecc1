#pragma once
// The loader context every layer is built from (candle's VarBuilder): the checkpoint's weight store, a key prefix
// and the precision policy parsed once by Model::load. Blocks take a Loader scoped to themselves and name their
// tensors relatively, so the HF key of every tensor is built in one place:
//
//   Loader vb(store, policy);                               // root: keys as stored
//   Loader layer = vb.pp("encoder.layer").pp(3);            // "encoder.layer.3."
//   Linear::load(layer.pp("attention.output.dense"), D, D); // reads "encoder.layer.3.attention.output.dense.weight"
//
// Every accessor throws vtx::Error naming the file and the full key.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/weights.hpp"
#include "kernels/int4_params.hpp"
#include "kernels/qgemm.hpp"

namespace vtx::models {

// Precision of the encoder linear weights (LoadOptions::dtype and the folder's quantization_config), parsed once.
struct LinearPolicy {
  std::optional<kernels::WType> dtype;  // nullopt: keep the checkpoint's (F16/BF16 stay half, the rest f32)
  int64_t group_size = kernels::kInt4Group;                 // int4 groups along K
  kernels::Int4Method int4_method = kernels::Int4Method::Mse;  // when quantizing to int4 at load
  // LoadOptions::compute == BF16: the quantizable linears are packed as kernels::Bf16Weight (bf16 x bf16, f32 sums)
  // from their F32 / F16 / BF16 storage, whatever `dtype` says (setup_linear_precision allows nullopt / BF16 only).
  bool bf16_compute = false;
};

class Loader {
 public:
  Loader(const io::WeightStore& store, LinearPolicy policy)
      : store_(&store), policy_(std::make_shared<const LinearPolicy>(policy)) {}

  // A sub-scope: "a" -> "<prefix>a."; an empty name is the same scope.
  Loader pp(const std::string& name) const;
  Loader pp(int64_t index) const { return pp(std::to_string(index)); }

  const std::string& prefix() const { return prefix_; }   // "" or "...."
  std::string key(const std::string& name) const { return prefix_ + name; }
  std::string name() const { return prefix_.empty() ? "" : prefix_.substr(0, prefix_.size() - 1); }  // scope as a key

  bool has(const std::string& name) const { return store_->has(key(name)); }
  std::vector<int64_t> shape(const std::string& name) const { return store_->shape(key(name)); }
  DType dtype(const std::string& name) const { return store_->dtype(key(name)); }
  Tensor f32(const std::string& name, const std::vector<int64_t>& shape = {}) const { return store_->f32(key(name), shape); }
  std::vector<float> f32_vec(const std::string& name, const std::vector<int64_t>& shape = {}) const;
  Tensor raw(const std::string& name) const { return store_->raw(key(name)); }
  io::WeightStore::View view(const std::string& name, const std::vector<int64_t>& shape = {}) const {
    return store_->view(key(name), shape);
  }
  void release(const std::string& name) const { store_->release(key(name)); }
  std::string file_of(const std::string& name) const { return store_->file_of(key(name)); }
  std::string config_path() const { return store_->dir() + "/config.json"; }

  const io::WeightStore& store() const { return *store_; }
  const LinearPolicy& policy() const { return *policy_; }

 private:
  const io::WeightStore* store_;
  std::shared_ptr<const LinearPolicy> policy_;
  std::string prefix_;
};

}  // namespace vtx::models
