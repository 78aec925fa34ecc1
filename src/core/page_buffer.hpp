#pragma once
// Zero-filled, 64-byte aligned byte buffer for data built once at load time (packed weights).
//
// Buffers of kMapThreshold bytes or more come straight from an anonymous mmap whose pages are populated in the
// same call (MAP_POPULATE): the kernel hands back fresh zero pages without one page-fault exception per 4 KiB
// page. On a paravirtualised VM those exceptions cost more than the packing itself (ViT-B: ~88k faults, most
// of the old load time; BENCHMARK.md "Load time and memory"). Smaller buffers use aligned operator new.
#include <cstddef>
#include <cstdint>

namespace vtx {

class PageBuffer {
 public:
  static constexpr size_t kMapThreshold = size_t{1} << 20;

  PageBuffer() = default;
  explicit PageBuffer(size_t bytes);  // every byte zero; throws std::bad_alloc
  ~PageBuffer();
  PageBuffer(const PageBuffer& o);
  PageBuffer& operator=(const PageBuffer& o);
  PageBuffer(PageBuffer&& o) noexcept;
  PageBuffer& operator=(PageBuffer&& o) noexcept;

  uint8_t* data() { return p_; }
  const uint8_t* data() const { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

 private:
  void release() noexcept;
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
  bool mapped_ = false;
};

}  // namespace vtx
