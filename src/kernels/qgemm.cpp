// Quantized / half-precision linear layers: quantizers, packing, the scalar references and the dispatch to
// portable/qgemm.cpp, avx2/qgemm.cpp (weight-only), avx2/int8.cpp, avx512/qgemm.cpp, avx512/int8_vnni.cpp.
// See qgemm.hpp for the formats.
#include "kernels/qgemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.hpp"
#include "kernels/common/epilogue_scalar.hpp"
#include "kernels/kernels.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {

const char* wtype_name(WType t) {
  switch (t) {
    case WType::F32: return "f32";
    case WType::F16: return "f16";
    case WType::BF16: return "bf16";
    case WType::Int8: return "int8";
    case WType::Int4: return "int4";
  }
  return "?";
}

bool parse_wtype(const std::string& s, WType* out) {
  for (WType t : {WType::F32, WType::F16, WType::BF16, WType::Int8, WType::Int4})
    if (s == wtype_name(t)) {
      *out = t;
      return true;
    }
  return false;
}

size_t QuantData::bytes() const {
  return half.size() * 2 + i8.size() + u4.size() + (scale.size() + zero.size()) * sizeof(float);
}

float quantize_row_int8(const float* a, int64_t K, int8_t* q) {
  float amax = 0.f;
  for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(a[k]));
  if (!(amax > 0.f) || !std::isfinite(amax)) {  // all zero (or non-finite input: no meaningful scale)
    std::fill(q, q + std::max<int64_t>(K, 0), int8_t{0});
    return amax > 0.f ? amax : 0.f;
  }
  const float s = amax / 127.f, inv = 1.f / s;
  for (int64_t k = 0; k < K; ++k) {
    float v = std::nearbyint(a[k] * inv);
    v = std::min(127.f, std::max(-127.f, v));
    q[k] = static_cast<int8_t>(v);
  }
  return s;
}

QuantData quantize(const float* w, int64_t N, int64_t K, WType type, int64_t group, Int4Method method) {
  if (N < 0 || K < 0) throw Error("quantize: N = " + std::to_string(N) + ", K = " + std::to_string(K) + ": negative shape");
  if (group <= 0) throw Error("quantize: group = " + std::to_string(group) + " must be positive");
  QuantData q;
  q.type = type;
  q.N = N;
  q.K = K;
  q.group = group;
  const size_t NK = static_cast<size_t>(N * K);
  switch (type) {
    case WType::F32: throw Error("quantize: type f32 is not a quantized type");
    case WType::F16:
      q.half.resize(NK);
      for (size_t i = 0; i < NK; ++i) q.half[i] = f32_to_f16(w[i]);
      break;
    case WType::BF16:
      q.half.resize(NK);
      for (size_t i = 0; i < NK; ++i) q.half[i] = f32_to_bf16(w[i]);
      break;
    case WType::Int8:
      // torchao Int8 weight: symmetric per output channel, scale = max|w| / 127 (eps-clamped), q in [-127, 127].
      q.i8.resize(NK);
      q.scale.resize(static_cast<size_t>(N));
      for (int64_t n = 0; n < N; ++n) {
        const float* r = w + n * K;
        float amax = 0.f;
        for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(r[k]));
        const float s = std::max(amax / 127.f, 1e-12f);
        q.scale[n] = s;
        for (int64_t k = 0; k < K; ++k) {
          float v = std::nearbyint(r[k] / s);
          q.i8[n * K + k] = static_cast<int8_t>(std::min(127.f, std::max(-127.f, v)));
        }
      }
      break;
    case WType::Int4: {
      const int64_t G = q.groups(), KB = (K + 1) / 2;
      q.u4.assign(static_cast<size_t>(N * KB), 0);
      q.scale.resize(static_cast<size_t>(N * G));
      q.zero.resize(static_cast<size_t>(N * G));
      std::vector<uint8_t> codes(static_cast<size_t>(std::min(K, group)));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t g = 0; g < G; ++g) {
          const int64_t k0 = g * group, k1 = std::min(K, k0 + group);
          int4_choose_params(w + n * K + k0, k1 - k0, method, &q.scale[n * G + g], &q.zero[n * G + g], codes.data());
          for (int64_t k = k0; k < k1; ++k)
            q.u4[n * KB + k / 2] |= static_cast<uint8_t>(k % 2 ? codes[k - k0] << 4 : codes[k - k0]);
        }
      break;
    }
  }
  return q;
}

QuantData concat_rows(const std::vector<const QuantData*>& parts) {
  if (parts.empty()) throw Error("concat_rows: no parts");
  QuantData r;
  r.type = parts[0]->type;
  r.K = parts[0]->K;
  r.group = parts[0]->group;
  for (const QuantData* p : parts) {
    if (p->type != r.type || p->K != r.K || p->group != r.group)
      throw Error("concat_rows: parts differ in type, K or group");
    r.N += p->N;
    r.half.insert(r.half.end(), p->half.begin(), p->half.end());
    r.i8.insert(r.i8.end(), p->i8.begin(), p->i8.end());
    r.u4.insert(r.u4.end(), p->u4.begin(), p->u4.end());
    r.scale.insert(r.scale.end(), p->scale.begin(), p->scale.end());
    r.zero.insert(r.zero.end(), p->zero.begin(), p->zero.end());
  }
  return r;
}

static inline float int4_at(const QuantData& q, int64_t n, int64_t k) {
  const int64_t KB = (q.K + 1) / 2, G = q.groups(), g = k / q.group;
  const uint8_t b = q.u4[n * KB + k / 2];
  const int v = k % 2 ? b >> 4 : b & 15;
  return std::fma(static_cast<float>(v - 8), q.scale[n * G + g], q.zero[n * G + g]);
}

std::vector<float> dequantize(const QuantData& q) {
  std::vector<float> w(static_cast<size_t>(q.N * q.K));
  for (int64_t n = 0; n < q.N; ++n)
    for (int64_t k = 0; k < q.K; ++k) {
      float v = 0.f;
      const size_t i = static_cast<size_t>(n * q.K + k);
      switch (q.type) {
        case WType::F32: break;
        case WType::F16: v = f16_to_f32(q.half[i]); break;
        case WType::BF16: v = bf16_to_f32(q.half[i]); break;
        case WType::Int8: v = static_cast<float>(q.i8[i]) * q.scale[n]; break;
        case WType::Int4: v = int4_at(q, n, k); break;
      }
      w[i] = v;
    }
  return w;
}

std::string validate(const QuantData& q) {
  const size_t N = static_cast<size_t>(q.N), NK = static_cast<size_t>(q.N * q.K);
  auto sz = [](const char* what, size_t got, size_t want) {
    return got == want ? std::string() : std::string(what) + " has " + std::to_string(got) + " elements, expected " +
                                             std::to_string(want);
  };
  std::string e;
  switch (q.type) {
    case WType::F32: return "f32 is not a quantized type";
    case WType::F16:
    case WType::BF16: return sz("weight", q.half.size(), NK);
    case WType::Int8:
      if (!(e = sz("weight", q.i8.size(), NK)).empty()) return e;
      if (!(e = sz("weight_scale", q.scale.size(), N)).empty()) return e;
      for (int8_t v : q.i8)
        if (v == -128) return "weight holds -128 (int8 weights must be in [-127, 127])";
      break;
    case WType::Int4: {
      if (q.group <= 0) return "group_size must be positive";
      const size_t G = static_cast<size_t>(q.groups());
      if (!(e = sz("weight", q.u4.size(), N * static_cast<size_t>((q.K + 1) / 2))).empty()) return e;
      if (!(e = sz("weight_scale", q.scale.size(), N * G)).empty()) return e;
      if (!(e = sz("weight_zero_point", q.zero.size(), N * G)).empty()) return e;
      break;
    }
  }
  for (float s : q.scale)
    if (!std::isfinite(s) || s < 0.f) return "weight_scale holds a negative or non-finite value";
  for (float z : q.zero)
    if (!std::isfinite(z)) return "weight_zero_point holds a non-finite value";
  return "";
}

// ---------------------------------------------------------------------------------------------------------
// Packing

QuantWeight QuantWeight::pack(const QuantData& q) {
  const std::string err = validate(q);
  if (!err.empty()) throw Error("QuantWeight::pack: " + err);
  QuantWeight w;
  w.type_ = q.type;
  w.n_ = q.N;
  w.k_ = q.K;
  w.group_ = q.group;
  const int64_t N = q.N, K = q.K, np = (N + NR - 1) / NR;
  switch (q.type) {
    case WType::F32: break;
    case WType::F16:
    case WType::BF16: {
      w.data_.assign(static_cast<size_t>(np * K * NR * 2), 0);
      uint16_t* d = reinterpret_cast<uint16_t*>(w.data_.data());
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) d[((n / NR) * K + k) * NR + n % NR] = q.half[n * K + k];
      break;
    }
    case WType::Int8: {
      const int64_t K4 = (K + 3) / 4;
      w.data_.assign(static_cast<size_t>(np * K4 * NR * 4), 0);
      int8_t* d = reinterpret_cast<int8_t*>(w.data_.data());
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) d[(((n / NR) * K4 + k / 4) * NR + n % NR) * 4 + k % 4] = q.i8[n * K + k];
      w.scale_.assign(static_cast<size_t>(np * NR), 0.f);
      std::copy(q.scale.begin(), q.scale.end(), w.scale_.begin());
      w.comp_.assign(static_cast<size_t>(np * NR), 0);
      for (int64_t n = 0; n < N; ++n) {
        int32_t sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += q.i8[n * K + k];
        w.comp_[n] = 128 * sum;
      }
      break;
    }
    case WType::Int4: {
      const int64_t G = q.groups();
      w.data_.assign(static_cast<size_t>(np * K * NR / 2), 0);
      w.scale_.assign(static_cast<size_t>(np * G * NR), 0.f);
      w.zero_.assign(static_cast<size_t>(np * G * NR), 0.f);
      const int64_t KB = (K + 1) / 2;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t p = n / NR, j = n % NR;
        for (int64_t k = 0; k < K; ++k) {
          const uint8_t b = q.u4[n * KB + k / 2];
          const uint8_t v = k % 2 ? b >> 4 : b & 15;
          w.data_[static_cast<size_t>((p * K + k) * (NR / 2) + j / 2)] |= static_cast<uint8_t>(j % 2 ? v << 4 : v);
        }
        for (int64_t g = 0; g < G; ++g) {
          w.scale_[static_cast<size_t>((p * G + g) * NR + j)] = q.scale[n * G + g];
          w.zero_[static_cast<size_t>((p * G + g) * NR + j)] = q.zero[n * G + g];
        }
      }
      break;
    }
  }
  return w;
}

QuantData QuantWeight::unpack() const {
  QuantData q;
  q.type = type_;
  q.N = n_;
  q.K = k_;
  q.group = group_;
  const int64_t N = n_, K = k_;
  switch (type_) {
    case WType::F32: break;
    case WType::F16:
    case WType::BF16: {
      q.half.resize(static_cast<size_t>(N * K));
      const uint16_t* d = reinterpret_cast<const uint16_t*>(data_.data());
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) q.half[n * K + k] = d[((n / NR) * K + k) * NR + n % NR];
      break;
    }
    case WType::Int8: {
      const int64_t K4 = (K + 3) / 4;
      q.i8.resize(static_cast<size_t>(N * K));
      const int8_t* d = reinterpret_cast<const int8_t*>(data_.data());
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) q.i8[n * K + k] = d[(((n / NR) * K4 + k / 4) * NR + n % NR) * 4 + k % 4];
      q.scale.assign(scale_.begin(), scale_.begin() + N);
      break;
    }
    case WType::Int4: {
      const int64_t G = q.groups(), KB = (K + 1) / 2;
      q.u4.assign(static_cast<size_t>(N * KB), 0);
      q.scale.resize(static_cast<size_t>(N * G));
      q.zero.resize(static_cast<size_t>(N * G));
      for (int64_t n = 0; n < N; ++n) {
        const int64_t p = n / NR, j = n % NR;
        for (int64_t k = 0; k < K; ++k) {
          const uint8_t b = data_[static_cast<size_t>((p * K + k) * (NR / 2) + j / 2)];
          const uint8_t v = j % 2 ? b >> 4 : b & 15;
          q.u4[n * KB + k / 2] |= static_cast<uint8_t>(k % 2 ? v << 4 : v);
        }
        for (int64_t g = 0; g < G; ++g) {
          q.scale[n * G + g] = scale_[static_cast<size_t>((p * G + g) * NR + j)];
          q.zero[n * G + g] = zero_[static_cast<size_t>((p * G + g) * NR + j)];
        }
      }
      break;
    }
  }
  return q;
}

void linear_q_ref(const float* A, int64_t M, int64_t lda, const QuantData& q, float* C, int64_t ldc,
                  const Epilogue& ep) {
  const int64_t N = q.N, K = q.K;
  if (q.type == WType::Int8) {
    std::vector<int8_t> qa(static_cast<size_t>(K));
    for (int64_t m = 0; m < M; ++m) {
      const float sa = quantize_row_int8(A + m * lda, K, qa.data());
      for (int64_t n = 0; n < N; ++n) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += static_cast<int64_t>(qa[k]) * q.i8[n * K + k];
        const float y = static_cast<float>(acc) * (sa * q.scale[n]);
        C[m * ldc + n] = epilogue_scalar(y, m, n, ep);
      }
    }
    return;
  }
  const std::vector<float> w = dequantize(q);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(A[m * lda + k]) * w[n * K + k];
      C[m * ldc + n] = epilogue_scalar(static_cast<float>(s), m, n, ep);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Dispatch

static void run_q(const KernelTable& t, const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C,
                  int64_t ldc, const Epilogue& ep) {
  if (W.type() == WType::F32) throw Error("linear_q: W is empty or f32 (not a QuantWeight type)");
  (W.type() == WType::Int8 ? t.gemm_int8 : t.gemm_weight_only)(A, M, lda, W, C, ldc, ep);
}

void linear_q(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
              const Epilogue& ep) {
  run_q(kernel_table(), A, M, lda, W, C, ldc, ep);
}

void linear_q_portable(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                       const Epilogue& ep) {
  run_q(kernel_table(Isa::Portable), A, M, lda, W, C, ldc, ep);
}

void linear_q_avx2(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                   const Epilogue& ep) {
  run_q(kernel_table(Isa::Avx2), A, M, lda, W, C, ldc, ep);
}

void linear_q_avx512(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                     const Epilogue& ep) {
  run_q(kernel_table(Isa::Avx512), A, M, lda, W, C, ldc, ep);
}

const char* weight_only_kernel_name() { return kernel_table().paths[KernelTable::kGemmWeightOnly].path; }
const char* int8_kernel_name() { return kernel_table().paths[KernelTable::kGemmInt8].path; }

}  // namespace vtx::kernels
