#include "io/weights.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/files.hpp"
#include "vtx/error.hpp"

namespace fs = std::filesystem;

namespace vtx::io {

std::unique_ptr<WeightStore> WeightStore::open(const std::string& dir) {
  auto ws = std::make_unique<WeightStore>();
  ws->dir_ = dir;
  fs::path d(dir);
  fs::path single = d / "model.safetensors", index = d / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(fs::symlink_status(index, ec))) {
    ws->source_ = index.string();
    const std::string text = read_file(index.string(), "the checkpoint index", uint64_t{256} << 20);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(index.string() + ": invalid JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string() + ": no weight_map object");
    std::map<std::string, const SafeTensorsFile*> by_shard;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error(index.string() + ": weight_map entry '" + it.key() + "' is not a string");
      std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        throw Error(index.string() + ": shard name '" + shard + "' must be a plain file name");
      if (!by_shard.count(shard)) {
        ws->files_.push_back(std::make_unique<SafeTensorsFile>((d / shard).string()));
        by_shard[shard] = ws->files_.back().get();
      }
      const SafeTensorsFile* f = by_shard[shard];
      if (!f->has(it.key())) throw Error(f->path() + ": missing tensor '" + it.key() + "' (listed in " + index.string() + ")");
      ws->where_[it.key()] = f;
    }
  } else if (fs::exists(fs::symlink_status(single, ec))) {
    ws->source_ = single.string();
    ws->files_.push_back(std::make_unique<SafeTensorsFile>(single.string()));
    for (const auto& [k, ti] : ws->files_.back()->tensors()) ws->where_[k] = ws->files_.back().get();
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  ws->usage_->dir = dir;
  for (const auto& [k, f] : ws->where_) ws->usage_->file_of[k] = f->path();
  return ws;
}

bool WeightStore::has(const std::string& key) const { return where_.count(key) != 0; }

std::string WeightStore::file_of(const std::string& key) const {
  auto it = where_.find(key);
  return it == where_.end() ? source_ : it->second->path();  // a missing key: the index or the single file
}

void WeightStore::mark_used(const std::string& key) const {
  std::lock_guard<std::mutex> lk(usage_->mu);
  usage_->used.insert(key);
}

std::vector<std::string> WeightStore::Usage::unused() {
  std::lock_guard<std::mutex> lk(mu);
  std::vector<std::string> r;
  for (const auto& [k, f] : file_of)
    if (!used.count(k)) r.push_back(k);
  return r;
}

static std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

std::vector<int64_t> WeightStore::shape(const std::string& key) const {
  auto it = where_.find(key);
  if (it == where_.end()) throw Error(file_of(key) + ": missing tensor '" + key + "'");
  return it->second->info(key).shape;
}

WeightStore::View WeightStore::view(const std::string& key, const std::vector<int64_t>& expect) const {
  auto it = where_.find(key);
  if (it == where_.end()) throw Error(file_of(key) + ": missing tensor '" + key + "'");
  const TensorInfo& ti = it->second->info(key);
  if (!expect.empty() && ti.shape != expect)
    throw Error(it->second->path() + ": tensor '" + key + "' has shape " + shape_str(ti.shape) + ", config.json implies " +
                shape_str(expect));
  if (ti.dtype != DType::F32 && ti.dtype != DType::F16 && ti.dtype != DType::BF16)
    throw Error(it->second->path() + ": tensor '" + key + "' has dtype " + dtype_name(ti.dtype) + ", expected a float type");
  mark_used(key);
  it->second->populate(ti);
  return View{it->second->bytes(ti), ti.dtype, ti.shape};
}

Tensor WeightStore::f32(const std::string& key, const std::vector<int64_t>& expect) const {
  view(key, expect);  // checks
  return where_.find(key)->second->load(key, true);
}

void WeightStore::release(const std::string& key) const {
  auto it = where_.find(key);
  if (it != where_.end()) it->second->drop_pages(it->second->info(key));
}

DType WeightStore::dtype(const std::string& key) const {
  auto it = where_.find(key);
  if (it == where_.end()) throw Error(file_of(key) + ": missing tensor '" + key + "'");
  return it->second->info(key).dtype;
}

Tensor WeightStore::raw(const std::string& key) const {
  auto it = where_.find(key);
  if (it == where_.end()) throw Error(file_of(key) + ": missing tensor '" + key + "'");
  mark_used(key);
  return it->second->load(key, false);
}

std::vector<std::string> WeightStore::keys() const {
  std::vector<std::string> k;
  for (const auto& [n, f] : where_) k.push_back(n);
  return k;
}

int64_t WeightStore::num_parameters() const {
  int64_t n = 0;
  for (const auto& [k, f] : where_) {
    int64_t c = 1;
    for (int64_t d : f->info(k).shape) c *= d;
    n += c;
  }
  return n;
}

std::map<std::string, int64_t> WeightStore::dtype_counts() const {
  std::map<std::string, int64_t> m;
  for (const auto& [k, f] : where_) ++m[dtype_name(f->info(k).dtype)];
  return m;
}

}  // namespace vtx::io
