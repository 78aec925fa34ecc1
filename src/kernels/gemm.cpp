// f32 GEMM family: packing, dispatch by the packed layout (portable/gemm.cpp, avx2/gemm.cpp, avx512/gemm.cpp)
// and the scalar reference.
#include "kernels/gemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <string>

#include "core/half.hpp"
#include "kernels/kernels.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {

float act_ref(float x, Act act) {
  switch (act) {
    case Act::None: return x;
    case Act::Gelu: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Act::GeluTanh: {
      float c = 0.7978845608028654f;
      return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
    }
    case Act::Relu: return x > 0.f ? x : 0.f;
    case Act::QuickGelu: return x / (1.0f + std::exp(-1.702f * x));
  }
  return x;
}

void apply_act(float* y, int64_t n, Act act) {
  if (act == Act::None) return;
  kernel_table().activation(y, n, act);
}

struct PackAccess {
  static void set(PackedWeight& p, int64_t n, int64_t k, int layout, PageBuffer d) {
    p.n_ = n;
    p.k_ = k;
    p.layout_ = layout;
    p.data_ = std::move(d);
  }
};

bool PackedWeight::layout_supported(int layout) {
  switch (layout) {
    case kLayoutPortable: return true;
    case kLayoutAvx2: return isa_available(Isa::Avx2);
    case kLayoutAvx512: return isa_available(Isa::Avx512);
  }
  return false;
}

static int best_layout() { return kernel_table().gemm_layout; }

PackedWeight PackedWeight::pack(const float* w, int64_t N, int64_t K) { return pack(w, N, K, best_layout()); }

PackedWeight PackedWeight::pack(const float* w, int64_t N, int64_t K, int layout) {
  if (N < 0) throw Error("PackedWeight::pack: N = " + std::to_string(N) + " is negative");
  return pack_rows({{w, DType::F32, N}}, K, layout);
}

PackedWeight PackedWeight::pack_rows(const std::vector<WeightRows>& parts, int64_t K) {
  return pack_rows(parts, K, best_layout());
}

// Row n of the stacked weight, converted to f32 (unaligned sources are read with memcpy).
static void read_row(const WeightRows& part, int64_t r, int64_t K, float* out) {
  if (K == 0) return;  // a [N, 0] weight may come with a null pointer
  const auto* base = static_cast<const uint8_t*>(part.data);
  switch (part.dtype) {
    case DType::F32: std::memcpy(out, base + r * K * 4, static_cast<size_t>(K) * 4); return;
    case DType::F16:
    case DType::BF16: {
      const uint8_t* src = base + r * K * 2;
      for (int64_t k = 0; k < K; ++k) {
        uint16_t h;
        std::memcpy(&h, src + 2 * k, 2);
        out[k] = part.dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    }
    default: throw Error("PackedWeight::pack_rows: weights must be F32, F16 or BF16");
  }
}

// dst (64-byte aligned, n a multiple of 16) <- src with non-temporal stores where available: the packed weight is
// written once and not read again during load.
static void stream_copy(float* dst, const float* src, int64_t n) {
#if defined(__SSE2__)
  for (int64_t i = 0; i < n; i += 4) _mm_stream_ps(dst + i, _mm_load_ps(src + i));
#else
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
#endif
}

PackedWeight PackedWeight::pack_rows(const std::vector<WeightRows>& parts, int64_t K, int layout) {
  int64_t N = 0;
  for (const WeightRows& p : parts) {
    if (p.rows < 0) throw Error("PackedWeight::pack_rows: parts.rows = " + std::to_string(p.rows) + " is negative");
    if (p.dtype != DType::F32 && p.dtype != DType::F16 && p.dtype != DType::BF16)
      throw Error("PackedWeight::pack_rows: parts.dtype must be F32, F16 or BF16");
    N += p.rows;
  }
  if (K < 0) throw Error("PackedWeight::pack: K = " + std::to_string(K) + " is negative");
  if (!layout_supported(layout)) {
    if (layout == kLayoutAvx2 || layout == kLayoutAvx512)
      throw Error("PackedWeight::pack: layout " + std::to_string(layout) + " not supported by this CPU");
    throw Error("PackedWeight::pack: unknown layout " + std::to_string(layout));
  }
  // Layout 0 is [K, N] (one panel N wide); layouts 1 and 2 are panels of NR columns, [N/NR][K][NR]. The buffer
  // starts zeroed, so the padding columns of the last panel need no writes.
  const int64_t NR = layout == kLayoutAvx2 ? 16 : layout == kLayoutAvx512 ? 32 : std::max<int64_t>(N, 1);
  const int64_t np = (N + NR - 1) / NR;
  PageBuffer buf(static_cast<size_t>(np * K * NR) * sizeof(float));
  float* t = reinterpret_cast<float*>(buf.data());
  // Rows go through a small f32 staging block (converted, unaligned-safe) and are written k-blocked, so the
  // strided writes of one panel stay within a few KiB.
  constexpr int64_t KB = 64;
  const int64_t R = std::min<int64_t>(NR, 32);  // rows staged at a time (layout 0: its whole "panel" is N)
  std::vector<float> stage(static_cast<size_t>(R * K));
  AlignedFloats tile(static_cast<size_t>(KB * R));
  std::vector<std::pair<const WeightRows*, int64_t>> src(static_cast<size_t>(N));  // row n -> (part, row)
  {
    int64_t n = 0;
    for (const WeightRows& part : parts)
      for (int64_t r = 0; r < part.rows; ++r) src[static_cast<size_t>(n++)] = {&part, r};
  }
  for (int64_t n0 = 0; n0 < N; n0 += R) {
    const int64_t rows = std::min(R, N - n0);
    for (int64_t j = 0; j < rows; ++j) {
      const auto& [part, r] = src[static_cast<size_t>(n0 + j)];
      read_row(*part, r, K, stage.data() + j * K);
    }
    if (layout != kLayoutPortable && rows == NR) {  // a whole panel: transpose k-blocks in L1, stream them out (no read-for-ownership)
      float* panel = t + (n0 / NR) * K * NR;
      for (int64_t k0 = 0; k0 < K; k0 += KB) {
        const int64_t k1 = std::min(K, k0 + KB);
        for (int64_t j = 0; j < NR; ++j)
          for (int64_t k = k0; k < k1; ++k) tile[static_cast<size_t>((k - k0) * NR + j)] = stage[static_cast<size_t>(j * K + k)];
        stream_copy(panel + k0 * NR, tile.data(), (k1 - k0) * NR);
      }
      continue;
    }
    for (int64_t j = 0; j < rows; ++j) {
      const int64_t n = n0 + j;
      float* dst = t + (n / NR) * K * NR + n % NR;
      const float* s = stage.data() + j * K;
      for (int64_t k = 0; k < K; ++k) dst[k * NR] = s[k];
    }
  }
#if defined(__SSE2__)
  _mm_sfence();
#endif
  PackedWeight p;
  PackAccess::set(p, N, K, layout, std::move(buf));
  return p;
}

void linear(const float* A, int64_t M, int64_t lda, const PackedWeight& W, float* C, int64_t ldc,
            const Epilogue& ep) {
  gemm_kernel_for_layout(W.layout())(A, M, lda, W.data(), W.N(), W.K(), C, ldc, ep);
}

void linear_ref(const float* A, int64_t M, int64_t lda, const float* W, int64_t N, int64_t K, float* C,
                int64_t ldc, const Epilogue& ep) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(A[m * lda + k]) * W[n * K + k];
      float y = static_cast<float>(s);
      if (ep.bias) y += ep.bias[n];
      y = act_ref(y, ep.act);
      if (ep.scale) y *= ep.scale[n];
      if (ep.residual) y += ep.residual[m * ep.ldr + n];
      C[m * ldc + n] = y;
    }
  }
}

}  // namespace vtx::kernels
