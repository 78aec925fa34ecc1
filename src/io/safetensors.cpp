#include "io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/files.hpp"
#include "vtx/error.hpp"

namespace vtx::io {

using json = nlohmann::json;

static constexpr uint64_t kMaxHeader = 100ull << 20;  // same limit as the safetensors library

DType parse_dtype(const std::string& s, const std::string& file) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "U8") return DType::U8;
  if (s == "I8") return DType::I8;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "BOOL") return DType::BOOL;
  throw Error(file + ": unsupported dtype '" + s + "'");
}

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  const int fd = open_regular(path);  // a FIFO or device is refused before open
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(path + ": cannot read (" + std::strerror(errno) + ")");
  }
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    throw Error(path + ": truncated safetensors file (" + std::to_string(map_size_) + " bytes, no header)");
  }
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error(path + ": mmap failed (" + std::strerror(errno) + ")");
  }
  try {
    const auto* p = static_cast<const uint8_t*>(map_);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | p[i];
    if (hlen > kMaxHeader) throw Error(path + ": safetensors header length " + std::to_string(hlen) + " exceeds the 100 MB limit");
    if (hlen > map_size_ - 8)
      throw Error(path + ": truncated safetensors file (header needs " + std::to_string(hlen) + " bytes, file has " +
                  std::to_string(map_size_ - 8) + ")");
    const char* h = reinterpret_cast<const char*>(p + 8);
    if (hlen == 0 || h[0] != '{') throw Error(path + ": safetensors header is not a JSON object");
    json j;
    try {
      j = json::parse(h, h + hlen);  // rejects invalid UTF-8
    } catch (const json::exception& e) {
      throw Error(path + ": invalid safetensors header JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw Error(path + ": safetensors header is not a JSON object");
    data_ = p + 8 + hlen;
    const uint64_t data_size = map_size_ - 8 - hlen;
    std::vector<const TensorInfo*> order;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& name = it.key();
      const json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) throw Error(path + ": __metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) throw Error(path + ": __metadata__ value for '" + m.key() + "' is not a string");
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
          !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
          v["data_offsets"].size() != 2)
        throw Error(path + ": tensor '" + name + "' has a malformed header entry");
      TensorInfo ti;
      ti.name = name;
      ti.dtype = parse_dtype(v["dtype"].get<std::string>(), path + ": tensor '" + name + "'");
      uint64_t n = 1;
      for (const auto& d : v["shape"]) {
        if (!d.is_number_unsigned()) throw Error(path + ": tensor '" + name + "' has a non-integer or negative dimension");
        uint64_t dv = d.get<uint64_t>();
        if (dv > (1ull << 40) || (dv && n > (1ull << 50) / dv)) throw Error(path + ": tensor '" + name + "' shape is too large");
        n *= dv;
        ti.shape.push_back(static_cast<int64_t>(dv));
      }
      for (const auto& o : v["data_offsets"])
        if (!o.is_number_unsigned()) throw Error(path + ": tensor '" + name + "' has invalid data_offsets");
      ti.begin = v["data_offsets"][0].get<uint64_t>();
      ti.end = v["data_offsets"][1].get<uint64_t>();
      if (ti.end < ti.begin) throw Error(path + ": tensor '" + name + "' has data_offsets end < begin");
      if (ti.end > data_size)
        throw Error(path + ": tensor '" + name + "' data ends at byte " + std::to_string(ti.end) + " past the end of the data (" +
                    std::to_string(data_size) + " bytes; file truncated or offsets corrupt)");
      if (n * dtype_size(ti.dtype) != ti.end - ti.begin)
        throw Error(path + ": tensor '" + name + "' byte length " + std::to_string(ti.end - ti.begin) +
                    " does not match dtype " + dtype_name(ti.dtype) + " x shape (" + std::to_string(n * dtype_size(ti.dtype)) + ")");
      auto [pos, ok] = tensors_.emplace(name, std::move(ti));
      if (!ok) throw Error(path + ": duplicate tensor '" + name + "'");
      order.push_back(&pos->second);
    }
    std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t cur = 0;
    for (const TensorInfo* t : order) {
      if (t->begin < cur) throw Error(path + ": tensor '" + t->name + "' overlaps another tensor");
      if (t->begin > cur) throw Error(path + ": gap in the data section before tensor '" + t->name + "'");
      cur = t->end;
    }
    if (cur != data_size)
      throw Error(path + ": data section has " + std::to_string(data_size - cur) + " trailing bytes not covered by any tensor");
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafeTensorsFile::~SafeTensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

void SafeTensorsFile::drop_pages(const TensorInfo& t) const {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto b = reinterpret_cast<uintptr_t>(bytes(t)), e = b + (t.end - t.begin);
  const uintptr_t pb = (b + page - 1) / page * page, pe = e / page * page;
  if (pe > pb) ::madvise(reinterpret_cast<void*>(pb), pe - pb, MADV_DONTNEED);  // advisory: failure is harmless
}

void SafeTensorsFile::populate(const TensorInfo& t) const {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto b = reinterpret_cast<uintptr_t>(bytes(t)) / page * page, e = reinterpret_cast<uintptr_t>(bytes(t)) + (t.end - t.begin);
  if (e <= b) return;
#ifdef MADV_POPULATE_READ
  if (::madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_READ) == 0) return;
#endif
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_WILLNEED);  // older kernels; advisory
}

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error(path_ + ": missing tensor '" + name + "'");
  return it->second;
}

Tensor SafeTensorsFile::load(const std::string& name, bool as_f32) const {
  const TensorInfo& ti = info(name);
  populate(ti);
  Tensor t = Tensor::uninitialized(ti.shape, ti.dtype);
  if (t.nbytes()) std::memcpy(t.raw(), bytes(ti), t.nbytes());
  return as_f32 ? t.to_f32() : t;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, bool as_f32) {
  SafeTensorsFile f(path);
  std::map<std::string, Tensor> out;
  for (const auto& [name, ti] : f.tensors()) out.emplace(name, f.load(name, as_f32));
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    if (h.contains(name)) throw Error(path + ": duplicate tensor name '" + name + "'");
    h[name] = {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {off, off + t.nbytes()}}};
    off += t.nbytes();
  }
  std::string hs = h.dump();
  while ((hs.size() + 8) % 8) hs.push_back(' ');
  std::string out;
  out.reserve(8 + hs.size() + off);
  uint64_t hl = hs.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((hl >> (8 * i)) & 0xff));
  out += hs;
  for (const auto& [name, t] : tensors) out.append(static_cast<const char*>(t.raw()), t.nbytes());
  write_file_atomic(path, out);
}

}  // namespace vtx::io
