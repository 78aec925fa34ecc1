#include "core/cpu.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstdlib>
#include <cstring>

namespace vtx {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    {  // CPUID.1:ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c")
      unsigned a = 0, b = 0, cx = 0, d = 0;
      c.f16c = __get_cpuid(1, &a, &b, &cx, &d) && (cx & (1u << 29)) != 0;
    }
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512dq = __builtin_cpu_supports("avx512dq");
#endif
    return c;
  }();
  return f;
}

bool cpu_has_avx2_fma() {
  static const bool ok = [] {
    const char* e = std::getenv("VTX_DISABLE_AVX2");
    if (e && *e && std::strcmp(e, "0") != 0) return false;
    return cpu_features().avx2 && cpu_features().fma;
  }();
  return ok;
}

bool cpu_has_avx512() {
  static const bool ok = [] {
    const char* e = std::getenv("VTX_DISABLE_AVX512");
    if (e && *e && std::strcmp(e, "0") != 0) return false;
    const CpuFeatures& f = cpu_features();
    return cpu_has_avx2_fma() && f.avx512f && f.avx512vl && f.avx512bw && f.avx512dq;
  }();
  return ok;
}

}  // namespace vtx
