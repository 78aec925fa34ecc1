// bf16 compute (kernels/bf16gemm.hpp): the AVX512-BF16 kernel against the scalar reference (both operands rounded
// to bf16, double sums) on odd shapes, every epilogue, 1 and 2 threads and both thread splits; the activation
// rounding bit for bit (an identity weight makes C = bf16(A) exactly); the weight packing from F32 / F16 / BF16
// rows; and the vtx::Error where AVX512-BF16 is missing or turned off (the avx2: / portable: reruns of this test
// take that branch on every machine).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.hpp"
#include "core/half.hpp"
#include "core/threadpool.hpp"
#include "epilogue_cases.hpp"
#include "kernels/kernels.hpp"
#include "support.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {
namespace {

// Uniform in [-scale, scale) (support.hpp).
std::vector<float> rnd(size_t n, uint32_t seed, float scale = 1.f) {
  return test::random_floats(n, seed, -scale, scale);
}

bool have_bf16() { return kernel_table().gemm_bf16 != nullptr; }

void expect_unavailable_error() {
  const std::vector<float> a(4, 1.f), w(4, 1.f);
  std::vector<float> c(4, 0.f);
  const Bf16Weight bw = Bf16Weight::pack(w.data(), 2, 2);  // packing needs no special instructions
  EXPECT_STREQ(bf16_kernel_name(), "none");
  try {
    linear_bf16(a.data(), 2, 2, bw, c.data(), 2);
    ADD_FAILURE() << "linear_bf16 ran without AVX512-BF16";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("AVX512-BF16"), std::string::npos) << m;
    EXPECT_NE(m.find("--dtype bf16"), std::string::npos) << m;  // says what to do instead
  }
}

struct Shape {
  int64_t M, N, K;
};

TEST(Bf16Gemm, KernelMatchesReference) {
  test::for_each_isa([] {
    if (!have_bf16()) return expect_unavailable_error();
    EXPECT_STREQ(bf16_kernel_name(), "avx512-bf16");
    // Odd M / N / K (K tails of the 16-wide A conversion, an odd last k-pair, a last panel past N, a last row
    // tile below 8), several row blocks of the packed A (K = 3072: 40 rows per block), N large enough for the
    // 2-thread panel split and M large enough for the row split.
    const Shape shapes[] = {{1, 1, 1},     {3, 5, 2},      {7, 17, 33},   {13, 50, 130},  {37, 40, 301}, {100, 31, 257},
                            {9, 130, 200}, {203, 72, 520}, {2, 200, 700}, {90, 40, 3072}, {420, 96, 64}};
    uint32_t seed = 3;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (const Shape& s : shapes)
        for (int e = 0; e < test::kEpilogueCases; ++e) {
          const int64_t lda = s.K + 3, ldc = s.N + 2;
          const auto A = rnd(static_cast<size_t>(s.M * lda), seed += 5),
                     W = rnd(static_cast<size_t>(s.N * s.K), seed + 1, 0.5f);
          const auto bias = rnd(static_cast<size_t>(s.N), seed + 2), scale = rnd(static_cast<size_t>(s.N), seed + 3);
          const auto C0 = rnd(static_cast<size_t>(s.M * ldc), seed + 4);
          std::vector<float> got = C0, ref = C0;
          const Bf16Weight bw = Bf16Weight::pack(W.data(), s.N, s.K);
          linear_bf16(A.data(), s.M, lda, bw, got.data(), ldc,
                      test::epilogue_case(e, bias.data(), scale.data(), got.data(), ldc));
          linear_bf16_ref(A.data(), s.M, lda, W.data(), s.N, s.K, ref.data(), ldc,
                          test::epilogue_case(e, bias.data(), scale.data(), ref.data(), ldc));
          const std::string what = "M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) +
                                   " K=" + std::to_string(s.K) + " ep=" + std::to_string(e) +
                                   " threads=" + std::to_string(threads);
          int bad = 0;
          for (int64_t m = 0; m < s.M; ++m) {
            for (int64_t n = 0; n < s.N; ++n) {
              double mag = 0;  // the kernel and the reference differ by the fp32 summation order only
              for (int64_t k = 0; k < s.K; ++k) mag += std::fabs(A[m * lda + k] * W[n * s.K + k]);
              const double g = got[m * ldc + n], r = ref[m * ldc + n];
              if (!(std::fabs(g - r) <= 2e-6 * (mag + std::fabs(r) + 1.0)) && bad++ < 5)
                ADD_FAILURE() << what << ": C[" << m << "," << n << "] = " << g << ", reference " << r;
            }
            for (int64_t n = s.N; n < ldc; ++n)
              if (got[m * ldc + n] != C0[m * ldc + n] && bad++ < 5) ADD_FAILURE() << what << ": wrote past N";
          }
        }
    }
    set_num_threads(0);
  });
}

// With W = identity (exact in bf16) every output is one product bf16(a) * 1 plus zeros: C must equal
// round_to_bf16(A) bit for bit, for round-to-nearest-even ties (low 16 bits exactly 0x8000, odd and even kept
// bits), values just below and above a tie, and every k position of the 16-wide conversion (K = 37).
// Subnormal inputs are left out: vdpbf16ps treats bf16 subnormals as zero (the reference rounds them).
TEST(Bf16Gemm, ActivationsRoundToNearestEven) {
  test::for_each_isa([] {
    if (!have_bf16()) return expect_unavailable_error();
    const int64_t M = 21, K = 37;
    std::mt19937 g(7);
    std::vector<float> A(static_cast<size_t>(M * K)), I(static_cast<size_t>(K * K), 0.f);
    const uint32_t lows[] = {0x8000u, 0x7fffu, 0x8001u, 0x0000u, 0xffffu};
    for (size_t i = 0; i < A.size(); ++i) {
      // sign, exponent in [100, 150] (normal, no overflow), random kept mantissa bits, a chosen low half
      const uint32_t hi = ((g() & 1u) << 15) | ((100u + g() % 51u) << 7) | (g() & 0x7fu);
      const uint32_t u = hi << 16 | (i % 7 < 5 ? lows[i % 7] : g() & 0xffffu);
      std::memcpy(&A[i], &u, 4);
    }
    for (int64_t k = 0; k < K; ++k) I[static_cast<size_t>(k * K + k)] = 1.f;
    const Bf16Weight bw = Bf16Weight::pack(I.data(), K, K);
    std::vector<float> C(static_cast<size_t>(M * K), -1.f);
    linear_bf16(A.data(), M, K, bw, C.data(), K);
    int bad = 0;
    for (size_t i = 0; i < A.size(); ++i) {
      const float want = round_to_bf16(A[i]);
      if (std::memcmp(&C[i], &want, 4) != 0 && bad++ < 5)
        ADD_FAILURE() << "A[" << i << "] = " << A[i] << ": kernel " << C[i] << ", round to nearest even " << want;
    }
  });
}

// pack_rows converts stacked F32 / F16 / BF16 blocks (unaligned, as from a mapped file) to the same bf16 words
// as rounding each value (F16 through its exact f32 value); BF16 words are kept as stored. unpack inverts it.
TEST(Bf16Gemm, PackRowsFromEveryStoredType) {
  const int64_t K = 19, r0 = 5, r1 = 30, r2 = 3;
  const auto f = rnd(static_cast<size_t>(r0 * K), 1), h = rnd(static_cast<size_t>(r1 * K), 2),
             b = rnd(static_cast<size_t>(r2 * K), 3);
  std::vector<uint8_t> f32buf(f.size() * 4 + 1), f16buf(h.size() * 2 + 1), bf16buf(b.size() * 2 + 1);
  std::vector<uint16_t> want;
  std::memcpy(f32buf.data() + 1, f.data(), f.size() * 4);
  for (float x : f) want.push_back(f32_to_bf16(x));
  for (size_t i = 0; i < h.size(); ++i) {
    const uint16_t v = f32_to_f16(h[i]);
    std::memcpy(f16buf.data() + 1 + 2 * i, &v, 2);
    want.push_back(f32_to_bf16(f16_to_f32(v)));
  }
  for (size_t i = 0; i < b.size(); ++i) {
    const uint16_t v = f32_to_bf16(b[i]);
    std::memcpy(bf16buf.data() + 1 + 2 * i, &v, 2);
    want.push_back(v);
  }
  const Bf16Weight w = Bf16Weight::pack_rows(
      {{f32buf.data() + 1, DType::F32, r0}, {f16buf.data() + 1, DType::F16, r1}, {bf16buf.data() + 1, DType::BF16, r2}},
      K);
  EXPECT_EQ(w.N(), r0 + r1 + r2);
  EXPECT_EQ(w.K(), K);
  EXPECT_EQ(w.bytes(), static_cast<size_t>(2 * 32 * ((K + 1) / 2) * 2 * 2));  // 2 panels of 32 columns, K padded to 20
  EXPECT_EQ(w.unpack(), want);
  // The padding (columns past N, the odd K's last k) is zero: the kernel multiplies it.
  size_t nonzero = 0;
  for (size_t i = 0; i < w.bytes() / 2; ++i) nonzero += w.data()[i] != 0;
  size_t want_nonzero = 0;
  for (uint16_t v : want) want_nonzero += v != 0;
  EXPECT_EQ(nonzero, want_nonzero);
  EXPECT_THROW(Bf16Weight::pack_rows({{f32buf.data(), DType::I8, 1}}, K), Error);
}

}  // namespace
}  // namespace vtx::kernels
