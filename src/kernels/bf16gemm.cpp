// bf16 compute (bf16gemm.hpp): packing, the scalar reference and the dispatch to avx512/bf16_dpbf16.cpp.
#include "kernels/bf16gemm.hpp"

#include <cstring>
#include <string>

#include "core/cpu.hpp"
#include "core/half.hpp"
#include "kernels/common/epilogue_scalar.hpp"
#include "kernels/kernels.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {

float round_to_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

namespace {

// Row n of a stored row block as bf16 words (F32 / F16 rounded to nearest even, BF16 as stored).
void bf16_row(const WeightRows& r, int64_t n, int64_t K, uint16_t* out) {
  const uint8_t* p = static_cast<const uint8_t*>(r.data);
  switch (r.dtype) {
    case DType::BF16:
      std::memcpy(out, p + n * K * 2, static_cast<size_t>(K) * 2);
      return;
    case DType::F16:
      for (int64_t k = 0; k < K; ++k) {
        uint16_t h;
        std::memcpy(&h, p + (n * K + k) * 2, 2);
        out[k] = f32_to_bf16(f16_to_f32(h));
      }
      return;
    case DType::F32:
      for (int64_t k = 0; k < K; ++k) {
        float f;
        std::memcpy(&f, p + (n * K + k) * 4, 4);
        out[k] = f32_to_bf16(f);
      }
      return;
    default:
      break;
  }
  throw Error(std::string("Bf16Weight::pack_rows: weight dtype ") + dtype_name(r.dtype) +
              " (expected F32, F16 or BF16)");
}

inline int64_t index_of(int64_t n, int64_t k, int64_t K2) {
  return ((n / Bf16Weight::NR) * K2 + k / 2) * (2 * Bf16Weight::NR) + (n % Bf16Weight::NR) * 2 + k % 2;
}

}  // namespace

Bf16Weight Bf16Weight::pack(const float* w, int64_t N, int64_t K) {
  return pack_rows({WeightRows{w, DType::F32, N}}, K);
}

Bf16Weight Bf16Weight::pack_rows(const std::vector<WeightRows>& parts, int64_t K) {
  if (K < 0) throw Error("Bf16Weight::pack_rows: K = " + std::to_string(K) + " is negative");
  Bf16Weight b;
  for (const WeightRows& r : parts) {
    if (r.rows < 0) throw Error("Bf16Weight::pack_rows: negative row count");
    b.n_ += r.rows;
  }
  b.k_ = K;
  const int64_t np = (b.n_ + NR - 1) / NR, K2 = (K + 1) / 2;
  b.data_.assign(static_cast<size_t>(np * K2 * NR * 2), 0);
  std::vector<uint16_t> row(static_cast<size_t>(K));
  int64_t n0 = 0;
  for (const WeightRows& r : parts) {
    for (int64_t n = 0; n < r.rows; ++n) {
      bf16_row(r, n, K, row.data());
      uint16_t* d = b.data_.data() + index_of(n0 + n, 0, K2);  // (n, k) at d[(k / 2) * 64 + k % 2]
      for (int64_t k = 0; k < K; ++k) d[(k / 2) * 2 * NR + k % 2] = row[static_cast<size_t>(k)];
    }
    n0 += r.rows;
  }
  return b;
}

std::vector<uint16_t> Bf16Weight::unpack() const {
  const int64_t K2 = (k_ + 1) / 2;
  std::vector<uint16_t> w(static_cast<size_t>(n_ * k_));
  for (int64_t n = 0; n < n_; ++n)
    for (int64_t k = 0; k < k_; ++k)
      w[static_cast<size_t>(n * k_ + k)] = data_[static_cast<size_t>(index_of(n, k, K2))];
  return w;
}

void linear_bf16_ref(const float* A, int64_t M, int64_t lda, const float* W, int64_t N, int64_t K, float* C,
                     int64_t ldc, const Epilogue& ep) {
  std::vector<float> wb(static_cast<size_t>(N * K)), ab(static_cast<size_t>(K));
  for (size_t i = 0; i < wb.size(); ++i) wb[i] = round_to_bf16(W[i]);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) ab[static_cast<size_t>(k)] = round_to_bf16(A[m * lda + k]);
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;  // bf16 x bf16 products are exact in float and in double
      for (int64_t k = 0; k < K; ++k)
        s += static_cast<double>(ab[static_cast<size_t>(k)]) * wb[static_cast<size_t>(n * K + k)];
      C[m * ldc + n] = epilogue_scalar(static_cast<float>(s), m, n, ep);
    }
  }
}

const char* bf16_kernel_name() { return kernel_table().paths[KernelTable::kGemmBf16].path; }

std::string bf16_unavailable_message(const std::string& what) {
  const CpuFeatures& f = cpu_features();
  std::string why;
  if (!f.avx512bf16)
    why = "this CPU has no AVX512-BF16 (it needs e.g. AMD Zen 4 / Zen 5 or Intel Sapphire Rapids or newer)";
  else if (!cpu_has_avx512())
    why = "AVX-512 is turned off by VTX_DISABLE_AVX512=1 or VTX_DISABLE_AVX2=1";
  else
    why = "AVX512-BF16 is turned off by VTX_DISABLE_BF16=1";
  return what + ": bf16 compute needs AVX512-BF16, but " + why +
         "; run without it (f32 compute; `--dtype bf16` / LoadOptions::dtype = BF16 still keeps the weights in bf16)";
}

void linear_bf16(const float* A, int64_t M, int64_t lda, const Bf16Weight& W, float* C, int64_t ldc,
                 const Epilogue& ep) {
  const LinearBf16Fn f = kernel_table().gemm_bf16;
  if (!f) throw Error(bf16_unavailable_message("linear_bf16"));
  f(A, M, lda, W, C, ldc, ep);
}

}  // namespace vtx::kernels
