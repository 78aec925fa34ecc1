#include "models/loader.hpp"

namespace vtx::models {

Loader Loader::pp(const std::string& name) const {
  Loader l = *this;
  if (!name.empty()) l.prefix_ = prefix_ + name + ".";
  return l;
}

std::vector<float> Loader::f32_vec(const std::string& name, const std::vector<int64_t>& shape) const {
  const Tensor t = f32(name, shape);
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

}  // namespace vtx::models
