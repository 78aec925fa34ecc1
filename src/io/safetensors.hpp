#pragma once
// safetensors reading (mmap, fully validated header) and writing (atomic: temp file + rename).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/atomic_file.hpp"  // write_file_atomic (every output writer uses it)
#include "vtx/tensor.hpp"

namespace vtx::io {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the data section
};

// A memory-mapped safetensors file. Construction validates everything and throws vtx::Error naming the
// file: header length and limit (100 MB), UTF-8 JSON, dtype names, shapes, dtype size x shape == byte
// length, offsets inside the file, no overlaps, no gaps.
class SafeTensorsFile {
 public:
  explicit SafeTensorsFile(const std::string& path);
  ~SafeTensorsFile();
  SafeTensorsFile(const SafeTensorsFile&) = delete;
  SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws if missing
  const uint8_t* bytes(const TensorInfo& t) const { return data_ + t.begin; }
  // Drops this process's mapping of the pages that lie wholly inside the tensor (madvise DONTNEED): the resident
  // set shrinks once a weight has been packed, and a later read maps the pages again from the page cache, so
  // bytes() stays valid. The mapping is read-only and private, so nothing can be lost.
  void drop_pages(const TensorInfo& t) const;
  // Maps the tensor's pages in one call (madvise POPULATE_READ) before it is read: the file is mapped without
  // MAP_POPULATE so that only the tensors being packed are resident, and one call beats a fault per 64 KiB.
  void populate(const TensorInfo& t) const;
  // Copies a tensor out; as_f32 converts F16/BF16/U8/I*/BOOL to F32.
  Tensor load(const std::string& name, bool as_f32 = false) const;

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Loads every tensor of a file (for small files: test inputs, CLI inputs).
std::map<std::string, Tensor> load_safetensors(const std::string& path, bool as_f32 = false);

// Writes tensors (in the order given) to path atomically (io/atomic_file.hpp: temporary file, then rename).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});


DType parse_dtype(const std::string& s, const std::string& file);  // throws on unknown dtype

}  // namespace vtx::io
