#include "core/cpu.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "vtx/error.hpp"

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
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
    {  // CPUID.(EAX=7, ECX=1):EAX bit 5 (read directly: not every compiler's __builtin_cpu_supports knows it)
      unsigned a = 0, b = 0, cx = 0, d = 0;
      c.avx512bf16 = c.avx512f && __get_cpuid_count(7, 1, &a, &b, &cx, &d) && (a & (1u << 5)) != 0;
    }
#endif
    return c;
  }();
  return f;
}

bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  if (!e || !*e || std::strcmp(e, "0") == 0) return false;
  if (std::strcmp(e, "1") == 0) return true;
  throw Error(std::string(name) + "=\"" + e + "\": expected 0 or 1");
}

int64_t env_int(const char* name, int64_t def, int64_t lo, int64_t hi) {
  const char* e = std::getenv(name);
  if (!e || !*e) return def;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(e, &end, 10);
  if (errno != 0 || end == e || *end != '\0' || v < lo || v > hi)
    throw Error(std::string(name) + "=\"" + e + "\": expected an integer in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  return v;
}

bool cpu_has_avx2_fma() {
  static const bool ok = [] {
    const bool off = env_flag("VTX_DISABLE_AVX2");
    const CpuFeatures& f = cpu_features();
    return !off && f.avx2 && f.fma && f.f16c;
  }();
  return ok;
}

bool cpu_has_avx512() {
  static const bool ok = [] {
    const bool off = env_flag("VTX_DISABLE_AVX512");
    const CpuFeatures& f = cpu_features();
    return !off && cpu_has_avx2_fma() && f.avx512f && f.avx512vl && f.avx512bw && f.avx512dq;
  }();
  return ok;
}

bool cpu_has_avx512_vnni() {
  static const bool ok = [] {
    const bool off = env_flag("VTX_DISABLE_VNNI");
    return !off && cpu_has_avx512() && cpu_features().avx512vnni;
  }();
  return ok;
}

bool cpu_has_avx512_bf16() {
  static const bool ok = [] {
    const bool off = env_flag("VTX_DISABLE_BF16");
    return !off && cpu_has_avx512() && cpu_features().avx512bf16;
  }();
  return ok;
}

}  // namespace vtx
