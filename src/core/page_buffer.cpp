#include "core/page_buffer.hpp"

#include <sys/mman.h>

#include <cstring>
#include <new>
#include <utility>

namespace vtx {

PageBuffer::PageBuffer(size_t bytes) : n_(bytes) {
  if (bytes == 0) return;
  if (bytes >= kMapThreshold) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
      n_ = 0;
      throw std::bad_alloc();
    }
    p_ = static_cast<uint8_t*>(p);
    mapped_ = true;
    return;
  }
  p_ = static_cast<uint8_t*>(::operator new(bytes, std::align_val_t(64)));
  std::memset(p_, 0, bytes);
}

void PageBuffer::release() noexcept {
  if (!p_) return;
  if (mapped_)
    ::munmap(p_, n_);
  else
    ::operator delete(p_, std::align_val_t(64));
  p_ = nullptr;
  n_ = 0;
  mapped_ = false;
}

PageBuffer::~PageBuffer() { release(); }

PageBuffer::PageBuffer(const PageBuffer& o) : PageBuffer(o.n_) {
  if (n_) std::memcpy(p_, o.p_, n_);
}

PageBuffer& PageBuffer::operator=(const PageBuffer& o) {
  if (this != &o) *this = PageBuffer(o);
  return *this;
}

PageBuffer::PageBuffer(PageBuffer&& o) noexcept
    : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), mapped_(std::exchange(o.mapped_, false)) {}

PageBuffer& PageBuffer::operator=(PageBuffer&& o) noexcept {
  if (this != &o) {
    release();
    p_ = std::exchange(o.p_, nullptr);
    n_ = std::exchange(o.n_, 0);
    mapped_ = std::exchange(o.mapped_, false);
  }
  return *this;
}

}  // namespace vtx
