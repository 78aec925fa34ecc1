// Quantized / half-precision GEMM kernels against their scalar references (kernels/qgemm.hpp): every type,
// odd M/N/K, K not a multiple of the int4 group, every epilogue, 1 and 2 threads, the portable path, the AVX2
// path and (where the CPU has them) the AVX-512 weight-only and VNNI int8 paths; quantizer properties;
// pack/unpack round trips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/cpu.hpp"
#include "core/half.hpp"
#include "core/threadpool.hpp"
#include "epilogue_cases.hpp"
#include "kernels/kernels.hpp"
#include "kernels/qgemm.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {
namespace {

std::vector<float> rnd(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

struct Shape {
  int64_t M, N, K;
};
const Shape kShapes[] = {{1, 1, 1}, {1, 16, 4}, {7, 17, 33}, {13, 50, 130}, {6, 33, 128}, {37, 40, 300},
                         {5, 48, 129}, {64, 64, 256}, {100, 31, 257}};
const WType kTypes[] = {WType::F16, WType::BF16, WType::Int8, WType::Int4};

// ep: test::epilogue_case numbering (none, bias + GELU, bias + layer scale + residual in place, ReLU).
struct Case {
  std::vector<float> A, W, bias, scale, C0;
  Epilogue ep(int which, float* C, int64_t ldc) const {
    return test::epilogue_case(which, bias.data(), scale.data(), C, ldc);
  }
};

Case make_case(const Shape& s, uint32_t seed) {
  Case c;
  c.A = rnd(static_cast<size_t>(s.M * (s.K + 3)), seed);  // lda = K + 3 (strided rows)
  c.W = rnd(static_cast<size_t>(s.N * s.K), seed + 1, 0.5f);
  c.bias = rnd(static_cast<size_t>(s.N), seed + 2);
  c.scale = rnd(static_cast<size_t>(s.N), seed + 3);
  c.C0 = rnd(static_cast<size_t>(s.M * (s.N + 2)), seed + 4);  // ldc = N + 2
  return c;
}

// |got - ref| <= tol * (sum_k |a w| + |ref|) per element (the ref and the kernel differ in summation order only).
void expect_close_q(const std::vector<float>& got, const std::vector<float>& ref, const Case& c, const Shape& s,
                    int64_t ldc, double tol, const std::string& what) {
  const int64_t lda = s.K + 3;
  int bad = 0;
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t n = 0; n < s.N; ++n) {
      double mag = 0;
      for (int64_t k = 0; k < s.K; ++k) mag += std::fabs(c.A[m * lda + k] * c.W[n * s.K + k]);
      const double g = got[m * ldc + n], r = ref[m * ldc + n];
      if (!(std::fabs(g - r) <= tol * (mag + std::fabs(r) + 1.0)) && bad++ < 5)
        ADD_FAILURE() << what << ": C[" << m << "," << n << "] = " << g << ", reference " << r;
    }
  // untouched padding columns
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t n = s.N; n < ldc; ++n)
      if (got[m * ldc + n] != ref[m * ldc + n] && bad++ < 5) ADD_FAILURE() << what << ": wrote past N";
}

using Kernel = void (*)(const float*, int64_t, int64_t, const QuantWeight&, float*, int64_t, const Epilogue&);

template <class Shapes = decltype(kShapes)>
void run_all(Kernel kernel, const char* name, int threads, const Shapes& shapes = kShapes) {
  set_num_threads(threads);
  uint32_t seed = 10;
  for (const Shape& s : shapes)
    for (WType t : kTypes)
      for (int e = 0; e < 4; ++e) {
        const Case c = make_case(s, seed += 7);
        const QuantData q = quantize(c.W.data(), s.N, s.K, t);
        const QuantWeight w = QuantWeight::pack(q);
        const int64_t ldc = s.N + 2;
        std::vector<float> got = c.C0, ref = c.C0;
        kernel(c.A.data(), s.M, s.K + 3, w, got.data(), ldc, c.ep(e, got.data(), ldc));
        linear_q_ref(c.A.data(), s.M, s.K + 3, q, ref.data(), ldc, c.ep(e, ref.data(), ldc));
        const std::string what = std::string(name) + " " + wtype_name(t) + " M=" + std::to_string(s.M) +
                                 " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) + " ep=" +
                                 std::to_string(e) + " threads=" + std::to_string(threads);
        // int8: identical integer dot products, the epilogue differs by float rounding (and the vector GELU) only.
        expect_close_q(got, ref, c, s, ldc, 2e-6, what);
      }
  set_num_threads(0);
}

TEST(QGemm, PortableMatchesReference) {
  run_all(linear_q_portable, "portable", 1);
  run_all(linear_q_portable, "portable", 2);
}

TEST(QGemm, DispatchMatchesReference) {
  std::printf("int8 kernel on this CPU: %s\n", int8_kernel_name());
  run_all(linear_q, "linear_q", 1);
  run_all(linear_q, "linear_q", 2);
}

TEST(QGemm, Avx2MatchesReference) {
  if (!cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2/FMA on this CPU (the portable path is tested above)";
  run_all(linear_q_avx2, "avx2", 1);
  run_all(linear_q_avx2, "avx2", 2);
}

// The AVX-512 weight-only kernels (f16/bf16/int4; int8 goes to the kernel linear_q picks) on the shapes above
// plus ones that reach every blocking case of the 8x32 kernel with its default tuning (kc 256, mc 192): M past
// one row block and not a multiple of 8, several K blocks whose boundaries fall inside int4 groups, an odd
// number of 16-column panels (a 32-column tile with its second panel past N), N > 96 so that 2 threads split
// the panels, and both threading splits. lda = K + 3, ldc = N + 2 and every epilogue as in run_all.
TEST(QGemm, Avx512MatchesReference) {
  if (!cpu_has_avx512())
    GTEST_SKIP() << "no AVX-512 F/VL/BW/DQ on this CPU, or VTX_DISABLE_AVX512=1 (AVX2 and portable tested above)";
  EXPECT_STREQ(weight_only_kernel_name(), "avx512");
  const Shape extra[] = {{9, 130, 200}, {203, 72, 520}, {397, 100, 129}, {2, 200, 700}};
  for (int threads : {1, 2}) {
    run_all(linear_q_avx512, "avx512", threads);
    run_all(linear_q_avx512, "avx512", threads, extra);
  }
}

// The int8 kernels compute exact integer dot products with the same activation quantization and the same
// float epilogue: the portable kernel, the AVX2 kernel and the VNNI kernel agree bit for bit (no GELU here:
// the vector GELU differs from erf in the last bits).
TEST(QGemm, Int8PathsBitIdentical) {
  for (const Shape& s : {Shape{37, 40, 300}, Shape{100, 31, 257}, Shape{9, 70, 1000}, Shape{300, 64, 64}}) {
    const Case c = make_case(s, 99);
    const QuantData q = quantize(c.W.data(), s.N, s.K, WType::Int8);
    const QuantWeight w = QuantWeight::pack(q);
    const int64_t ldc = s.N + 2;
    for (int e : {0, 2, 3}) {
      std::vector<float> ref = c.C0, port = c.C0, disp = c.C0, avx2 = c.C0;
      linear_q_ref(c.A.data(), s.M, s.K + 3, q, ref.data(), ldc, c.ep(e, ref.data(), ldc));
      linear_q_portable(c.A.data(), s.M, s.K + 3, w, port.data(), ldc, c.ep(e, port.data(), ldc));
      linear_q(c.A.data(), s.M, s.K + 3, w, disp.data(), ldc, c.ep(e, disp.data(), ldc));
      EXPECT_EQ(0, std::memcmp(ref.data(), port.data(), ref.size() * 4)) << "portable, ep " << e;
      EXPECT_EQ(0, std::memcmp(ref.data(), disp.data(), ref.size() * 4)) << int8_kernel_name() << ", ep " << e;
      if (cpu_has_avx2_fma()) {
        linear_q_avx2(c.A.data(), s.M, s.K + 3, w, avx2.data(), ldc, c.ep(e, avx2.data(), ldc));
        EXPECT_EQ(0, std::memcmp(ref.data(), avx2.data(), ref.size() * 4)) << "avx2, ep " << e;
      }
    }
  }
}

// vpmaddubsw saturation: the largest possible pair sums (|a| = |w| = 127 everywhere, all sign combinations)
// must give the exact integer result.
TEST(QGemm, Int8NoSaturation) {
  const int64_t M = 4, N = 16, K = 256;
  std::vector<float> A(M * K), W(N * K);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) A[m * K + k] = (m == 0 || (m == 1 && k % 2) || (m == 3 && k % 3)) ? 1.f : -1.f;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) W[n * K + k] = (n % 2 == 0 || (k / 2) % 2) ? 2.f : -2.f;
  const QuantData q = quantize(W.data(), N, K, WType::Int8);
  for (int8_t v : q.i8) ASSERT_EQ(std::abs(v), 127);
  const QuantWeight w = QuantWeight::pack(q);
  std::vector<float> got(M * N), ref(M * N);
  for (Kernel k : {linear_q, linear_q_portable}) {
    k(A.data(), M, K, w, got.data(), N, {});
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double exact = 0;
        for (int64_t kk = 0; kk < K; ++kk) exact += A[m * K + kk] * W[n * K + kk];
        EXPECT_NEAR(got[m * N + n], exact, 1e-4 * std::fabs(exact) + 1e-4) << m << "," << n;
      }
  }
  if (cpu_has_avx2_fma()) {
    linear_q_avx2(A.data(), M, K, w, got.data(), N, {});
    linear_q_ref(A.data(), M, K, q, ref.data(), N, {});
    EXPECT_EQ(0, std::memcmp(got.data(), ref.data(), got.size() * 4));
  }
}

TEST(QGemm, PackUnpackRoundTrip) {
  for (WType t : kTypes)
    for (const Shape& s : kShapes) {
      const auto W = rnd(static_cast<size_t>(s.N * s.K), 5);
      const QuantData q = quantize(W.data(), s.N, s.K, t);
      ASSERT_EQ(validate(q), "");
      const QuantData u = QuantWeight::pack(q).unpack();
      EXPECT_EQ(u.half, q.half);
      EXPECT_EQ(u.i8, q.i8);
      EXPECT_EQ(u.u4, q.u4);
      EXPECT_EQ(u.scale, q.scale);
      EXPECT_EQ(u.zero, q.zero);
    }
}

TEST(QGemm, HalfConversionIsExact) {
  // f16/bf16-representable weights survive quantize + dequantize exactly (what keeps F16/BF16 checkpoints exact).
  auto W = rnd(1000, 3);
  for (auto& x : W) x = f16_to_f32(f32_to_f16(x));
  EXPECT_EQ(dequantize(quantize(W.data(), 10, 100, WType::F16)), W);
  for (auto& x : W) x = bf16_to_f32(f32_to_bf16(x));
  EXPECT_EQ(dequantize(quantize(W.data(), 10, 100, WType::BF16)), W);
}

TEST(QGemm, Int4FollowsTorchao) {
  // One row, K = 130: a full group of 128 and a tail group of 2. Int4Method::MinMax: torchao's parameters.
  std::vector<float> w(130);
  for (int k = 0; k < 128; ++k) w[k] = -1.0f + 2.0f * k / 127.f;  // min -1, max 1
  w[128] = 5.f;
  w[129] = 5.f;  // constant tail group: scale clamps to eps 1e-6
  const QuantData q = quantize(w.data(), 1, 130, WType::Int4, kInt4Group, Int4Method::MinMax);
  ASSERT_EQ(q.groups(), 2);
  EXPECT_FLOAT_EQ(q.scale[0], 2.f / 15.f);
  EXPECT_FLOAT_EQ(q.zero[0], -1.f + 8.f * (2.f / 15.f));
  EXPECT_FLOAT_EQ(q.scale[1], 1e-6f);
  const auto d = dequantize(q);
  EXPECT_FLOAT_EQ(d[0], -1.f);   // q = 0
  EXPECT_FLOAT_EQ(d[127], 1.f);  // q = 15
  EXPECT_NEAR(d[128], 5.f, 1e-6);
  for (int k = 0; k < 128; ++k) EXPECT_LE(std::fabs(d[k] - w[k]), 0.5f * 2.f / 15.f + 1e-6f) << k;
  EXPECT_EQ(q.u4[0] & 15, 0);
  EXPECT_EQ(q.u4[63] >> 4, 15);
}

// Groups of many shapes and distributions for the int4 parameter choice.
std::vector<std::vector<float>> int4_test_groups() {
  std::mt19937 g(42);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::student_t_distribution<float> td(2.f);
  std::uniform_real_distribution<float> ud(-1.f, 1.f);
  std::vector<std::vector<float>> groups;
  for (int64_t n : {1, 2, 3, 7, 16, 31, 32, 44, 64, 100, 128, 129, 256})
    for (int dist = 0; dist < 10; ++dist)
      for (int rep = 0; rep < 6; ++rep) {
        std::vector<float> w(static_cast<size_t>(n));
        for (auto& x : w) switch (dist) {
            case 0: x = nd(g); break;                             // Gaussian
            case 1: x = ud(g); break;                             // uniform
            case 2: x = td(g); break;                             // heavy tails
            case 3: x = 0.02f * nd(g); break;                     // trained-weight scale
            case 4: x = 3.f; break;                               // constant
            case 5: x = nd(g) > 0 ? 0.5f : -0.25f; break;         // two values
            case 6: x = 1e-7f * nd(g); break;                     // range below torchao's eps
            case 7: x = 1000.f + 0.01f * nd(g); break;            // large offset, small range
            case 8: x = 1e4f * ud(g); break;                      // large magnitude
            default: x = nd(g) > 0 ? 0.1f * nd(g) : 0.f; break;  // half exact zeros
          }
        if (dist == 0 && n > 2 && rep % 2) w[static_cast<size_t>(rep) % w.size()] = 40.f;  // one outlier
        groups.push_back(w);
      }
  return groups;
}

// The error-minimising choice: valid torchao-format parameters, codes = torchao's quantize_affine with them,
// never a larger squared error than min/max, and a clearly smaller one on Gaussian groups.
TEST(QGemm, Int4MseNeverWorseThanMinMax) {
  double sum_mm = 0, sum_mse = 0;
  int better = 0;
  for (const auto& w : int4_test_groups()) {
    const int64_t n = static_cast<int64_t>(w.size());
    std::vector<uint8_t> c_mm(w.size()), c_mse(w.size());
    float s_mm, z_mm, s, z;
    int4_choose_params(w.data(), n, Int4Method::MinMax, &s_mm, &z_mm, c_mm.data());
    int4_choose_params(w.data(), n, Int4Method::Mse, &s, &z, c_mse.data());
    const std::string what = "n=" + std::to_string(n) + " w[0]=" + std::to_string(w[0]);
    {  // MinMax: torchao's choose_qparams_affine + quantize_affine, bit for bit
      const float mn = *std::min_element(w.begin(), w.end()), mx = *std::max_element(w.begin(), w.end());
      const float ts = std::max((mx - mn) / 15.f, 1e-6f), tz = mn + ts * 8.f;
      ASSERT_EQ(s_mm, ts) << what;
      ASSERT_EQ(z_mm, tz) << what;
      for (int64_t k = 0; k < n; ++k)
        ASSERT_EQ(c_mm[k], static_cast<uint8_t>(std::min(15.f, std::max(0.f, std::nearbyint((w[k] - (tz - ts * 8.f)) / ts)))))
            << what << " k=" << k;
    }
    ASSERT_TRUE(std::isfinite(s) && s > 0.f && std::isfinite(z)) << what << " s=" << s << " z=" << z;
    for (int64_t k = 0; k < n; ++k) {
      ASSERT_LE(c_mse[k], 15) << what;
      // torchao quantize_affine with the chosen parameters
      const float v = std::nearbyint((w[k] - (z - s * 8.f)) / s);
      ASSERT_EQ(c_mse[k], static_cast<uint8_t>(std::min(15.f, std::max(0.f, v)))) << what << " k=" << k;
    }
    const double e_mm = int4_group_error(w.data(), n, s_mm, z_mm, c_mm.data());
    const double e = int4_group_error(w.data(), n, s, z, c_mse.data());
    ASSERT_LE(e, e_mm) << what;
    if (e < e_mm) ++better;
    else EXPECT_TRUE(s == s_mm && z == z_mm && c_mse == c_mm) << what << ": not better, so min/max's parameters";
    // int4_group_error measures the weights the kernels use (fma dequantization) up to their float rounding.
    for (int64_t k = 0; k < n; ++k) {
      const float f = std::fma(static_cast<float>(c_mse[k] - 8), s, z);
      const double d = (static_cast<double>(c_mse[k]) - 8.0) * s + z;
      ASSERT_LE(std::fabs(f - d), std::fabs(std::nextafter(f, 2 * f + 1) - f)) << what;
    }
    if (n == 128 && std::fabs(w[1] - w[2]) > 0.f) {
      sum_mm += e_mm;
      sum_mse += e;
    }
    // constant groups and groups of one: min/max's parameters (s = eps), exact up to the rounding of z
    if (std::all_of(w.begin(), w.end(), [&](float x) { return x == w[0]; })) {
      const float a = std::fabs(w[0]) + 8e-6f, ulp = std::nextafter(a, 2 * a) - a;
      EXPECT_LE(e, static_cast<double>(n) * (2.0 * ulp) * (2.0 * ulp)) << what;
    }
  }
  std::printf("mse / minmax squared error over the 128-groups: %.3f; better in %d groups\n", sum_mse / sum_mm, better);
  EXPECT_LT(sum_mse, 0.9 * sum_mm);
}

// The search is built portable and with AVX2 (int4_params_impl.hpp); both give the same bits.
TEST(QGemm, Int4ParamsPortableEqualsAvx2) {
  if (!cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  for (const auto& w : int4_test_groups()) {
    const int64_t n = static_cast<int64_t>(w.size());
    std::vector<uint8_t> c0(w.size()), c1(w.size()), scratch(w.size());
    float s0, z0, s1, z1;
    portable::int4_choose_params(w.data(), n, true, &s0, &z0, c0.data(), scratch.data());
    avx2::int4_choose_params(w.data(), n, true, &s1, &z1, c1.data(), scratch.data());
    ASSERT_EQ(std::memcmp(&s0, &s1, 4), 0) << "n=" << n;
    ASSERT_EQ(std::memcmp(&z0, &z1, 4), 0) << "n=" << n;
    ASSERT_EQ(c0, c1) << "n=" << n;
  }
}

// quantize() with the default (Mse) on whole weights incl. a K % 128 tail: validate() accepts it, the packed
// form round-trips, the weight error is below min/max's, and the row-major codes are the per-group choice.
TEST(QGemm, Int4MseQuantize) {
  EXPECT_EQ(int4_default_method(), Int4Method::Mse) << "VTX_INT4_METHOD set in the environment?";
  Int4Method m;
  EXPECT_TRUE(parse_int4_method("minmax", &m) && m == Int4Method::MinMax);
  EXPECT_TRUE(parse_int4_method("mse", &m) && m == Int4Method::Mse);
  EXPECT_FALSE(parse_int4_method("gptq", &m));
  for (int64_t K : {1, 5, 128, 300}) {
    const int64_t N = 37;
    auto W = rnd(static_cast<size_t>(N * K), 11, 0.05f);
    W[3] = 2.f;  // an outlier
    const QuantData q = quantize(W.data(), N, K, WType::Int4);
    const QuantData qm = quantize(W.data(), N, K, WType::Int4, kInt4Group, Int4Method::MinMax);
    ASSERT_EQ(validate(q), "");
    EXPECT_EQ(QuantWeight::pack(q).unpack().u4, q.u4);
    const auto d = dequantize(q), dm = dequantize(qm);
    double e = 0, em = 0;
    for (size_t i = 0; i < W.size(); ++i) {
      e += (d[i] - W[i]) * static_cast<double>(d[i] - W[i]);
      em += (dm[i] - W[i]) * static_cast<double>(dm[i] - W[i]);
    }
    EXPECT_LE(e, em * (1 + 1e-6)) << "K=" << K;
    if (K >= 128) {
      EXPECT_LT(e, 0.95 * em) << "K=" << K;
    }
    // row 0, last group: the same as int4_choose_params on it
    const int64_t G = q.groups(), k0 = (G - 1) * kInt4Group, n = K - k0;
    std::vector<uint8_t> codes(static_cast<size_t>(n));
    float s, z;
    int4_choose_params(W.data() + k0, n, Int4Method::Mse, &s, &z, codes.data());
    EXPECT_EQ(q.scale[G - 1], s);
    EXPECT_EQ(q.zero[G - 1], z);
    for (int64_t k = 0; k < n; ++k) {
      const uint8_t b = q.u4[(k0 + k) / 2];
      EXPECT_EQ((k0 + k) % 2 ? b >> 4 : b & 15, codes[k]) << "K=" << K << " k=" << k;
    }
  }
}

TEST(QGemm, Int8WeightsSymmetric) {
  const auto W = rnd(64 * 50, 8);
  const QuantData q = quantize(W.data(), 64, 50, WType::Int8);
  for (int64_t n = 0; n < 64; ++n) {
    float amax = 0;
    for (int k = 0; k < 50; ++k) amax = std::max(amax, std::fabs(W[n * 50 + k]));
    EXPECT_FLOAT_EQ(q.scale[n], amax / 127.f);
    for (int k = 0; k < 50; ++k) EXPECT_LE(std::fabs(q.i8[n * 50 + k] * q.scale[n] - W[n * 50 + k]), q.scale[n] * 0.5001f);
  }
}

TEST(QGemm, ValidateRejectsBadData) {
  const auto W = rnd(4 * 10, 2);
  QuantData q = quantize(W.data(), 4, 10, WType::Int4);
  q.zero.pop_back();
  EXPECT_NE(validate(q), "");
  EXPECT_THROW(QuantWeight::pack(q), vtx::Error);
  QuantData q8 = quantize(W.data(), 4, 10, WType::Int8);
  q8.i8[3] = -128;
  EXPECT_NE(validate(q8), "");
  q8 = quantize(W.data(), 4, 10, WType::Int8);
  q8.scale[0] = -1.f;
  EXPECT_NE(validate(q8), "");
}

TEST(QGemm, ZeroRowsAndEmpty) {
  const auto W = rnd(20 * 9, 2);
  for (WType t : kTypes) {
    const QuantWeight w = QuantWeight::pack(quantize(W.data(), 20, 9, t));
    std::vector<float> A(3 * 9, 0.f), C(3 * 20, 7.f);
    linear_q(A.data(), 3, 9, w, C.data(), 20, {});
    for (float v : C) EXPECT_EQ(v, 0.f) << wtype_name(t);
    linear_q(A.data(), 0, 9, w, C.data(), 20, {});  // M = 0: no-op
  }
}

}  // namespace
}  // namespace vtx::kernels
