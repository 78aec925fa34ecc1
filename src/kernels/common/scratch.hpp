#pragma once
// Grow-only, 64-byte aligned per-thread scratch for the kernels (one per thread and purpose: nothing is allocated
// per call once warm). The unnamed namespace is deliberate: every kernel file gets its own copy, compiled with that
// file's instruction set, so no AVX2 / AVX-512 code can end up in a shared (weak) symbol that portable code calls.
#include <cstddef>
#include <new>

namespace vtx::kernels {
namespace {

template <class T>
struct ThreadBuf {
  T* p = nullptr;
  size_t n = 0;
  ~ThreadBuf() { ::operator delete(p, std::align_val_t(64)); }
  T* get(size_t need) {
    if (need > n) {
      ::operator delete(p, std::align_val_t(64));
      p = static_cast<T*>(::operator new(need * sizeof(T), std::align_val_t(64)));
      n = need;
    }
    return p;
  }
};

}  // namespace
}  // namespace vtx::kernels
