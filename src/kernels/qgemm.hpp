#pragma once
// Reduced-precision and quantized linear layers: C[M,N] = epilogue(A[M,K] * W[N,K]^T) with W stored as
//
//   F16 / BF16  weight-only: the weight is kept in half precision and converted to f32 inside the GEMM
//               (F16C vcvtph2ps / bf16 << 16, both exact); accumulation and everything else in f32.
//   Int8        symmetric per-output-channel int8 weights (q in [-127, 127], w = q * scale[n]) and dynamic
//               per-token symmetric int8 activations (per row of A: s_a = max|a| / 127, q_a = round(a / s_a)
//               in [-127, 127]); exact int32 dot products; y = acc * s_a[m] * scale[n], then the epilogue.
//   Int4        weight-only, groups of `group` (128) consecutive k of one output row, asymmetric uint4 with a
//               float zero point exactly as torchao's Int4WeightOnlyConfig(group_size=128) defines it
//               (torchao.quantization.quant_primitives: choose_qparams_affine with MappingType.ASYMMETRIC,
//               quant_min 0, quant_max 15, eps 1e-6, preserve_zero=False, ZeroPointDomain.FLOAT):
//                 scale = max((max - min) / 15, 1e-6),   zero = min + scale * 8   (mid_point = (15 + 0 + 1) / 2)
//                 q     = clamp(round((w - (zero - 8 * scale)) / scale), 0, 15)  (round half to even)
//                 w'    = (q - 8) * scale + zero                                  (dequantize_affine, FLOAT domain)
//               That is Int4Method::MinMax; the default, Int4Method::Mse, chooses scale and zero point per group
//               to minimise the squared error within this same format (int4_params.hpp); codes and w' as above.
//               K not a multiple of the group: the last group covers the K % group tail (its own parameters).
//               Activations stay f32; dequantization is fused in the GEMM (per 16-column panel, per K block).
//
// QuantData is the canonical, row-major form (what `vtx quantize` writes and the scalar references use);
// QuantWeight is the packed run-time form (panels of 16 output columns, same layout on every CPU, so the
// portable, AVX2 and AVX-512 kernels read the same bytes; AVX-512 takes two adjacent panels per 32-column
// tile). Only the packed form is kept in a loaded model.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/int4_params.hpp"

namespace vtx::kernels {

enum class WType : uint8_t { F32, F16, BF16, Int8, Int4 };
const char* wtype_name(WType t);                 // "f32", "f16", "bf16", "int8", "int4"
bool parse_wtype(const std::string& s, WType* out);  // false when unknown

constexpr int64_t kInt4Group = 128;

struct QuantData {
  WType type = WType::F32;
  int64_t N = 0, K = 0;
  int64_t group = kInt4Group;  // int4 only
  std::vector<uint16_t> half;  // F16 / BF16: [N, K]
  std::vector<int8_t> i8;      // Int8: [N, K]
  std::vector<uint8_t> u4;     // Int4: [N, (K + 1) / 2], k even in the low nibble, k odd in the high nibble
  std::vector<float> scale;    // Int8: [N]; Int4: [N, groups()]
  std::vector<float> zero;     // Int4: [N, groups()] (float zero point, torchao FLOAT domain)
  int64_t groups() const { return (K + group - 1) / group; }
  size_t bytes() const;        // storage of the quantized weight incl. scales / zero points
};

// Quantizes / converts a row-major f32 weight [N, K] (f16/bf16: round to nearest even). Int4: `method` chooses
// each group's scale and zero point (int4_params.hpp; MinMax = torchao's choice bit for bit), the format is the same.
QuantData quantize(const float* w, int64_t N, int64_t K, WType type, int64_t group = kInt4Group,
                   Int4Method method = int4_default_method());
// Rows of several weights of the same type, K and group stacked (e.g. fused q/k/v). Equal to quantizing the
// stacked f32 weight: every scheme here is per output row.
QuantData concat_rows(const std::vector<const QuantData*>& parts);
// The weight the kernels effectively multiply with, [N, K] f32 (int8: q * scale; int4: (q - 8) * s + z).
std::vector<float> dequantize(const QuantData& q);
// Structural check (sizes of every array, value ranges); returns "" or a description of the problem.
std::string validate(const QuantData& q);

class QuantWeight {
 public:
  QuantWeight() = default;
  static QuantWeight pack(const QuantData& q);
  QuantData unpack() const;  // exact inverse of pack
  WType type() const { return type_; }
  int64_t N() const { return n_; }
  int64_t K() const { return k_; }
  int64_t group() const { return group_; }
  bool empty() const { return n_ == 0; }
  size_t bytes() const { return data_.size() + (scale_.size() + zero_.size() + comp_.size()) * 4; }

  // Layout (NR = 16 output columns per panel, np = ceil(N / 16), columns past N zero):
  //   F16/BF16: uint16 [np][K][16]
  //   Int8:     int8   [np][ceil(K/4)][16][4] (k padded with zeros to a multiple of 4); scale_ float [np*16]
  //   Int4:     uint8  [np][K][8] (byte j: column 2j low nibble, 2j+1 high nibble); scale_ / zero_ float
  //             [np][groups][16]
  //   The int8 layout is also the AVX-512 VNNI layout: one k-quad of one panel is one zmm (vpdpbusd).
  static constexpr int64_t NR = 16;
  const uint8_t* data() const { return data_.data(); }
  const float* scales() const { return scale_.data(); }
  const float* zeros() const { return zero_.data(); }

 private:
  WType type_ = WType::F32;
  int64_t n_ = 0, k_ = 0, group_ = kInt4Group;
  std::vector<uint8_t, AlignedAllocator<uint8_t>> data_;
  std::vector<float, AlignedAllocator<float>> scale_, zero_;
  std::vector<int32_t, AlignedAllocator<int32_t>> comp_;  // Int8: 128 * sum_k q[n, k] (u8-offset kernels)
 public:
  const int32_t* comp() const { return comp_.data(); }
};

// Multi-threaded on the global pool. Same contract as linear(): A rows strided by lda >= K, C rows by ldc >= N,
// ep.residual may alias C exactly. Kernels: F16/BF16/Int4 AVX-512 (8x32 fp32 microkernel of the fp32 GEMM) when
// cpu_has_avx512(), else AVX2 when cpu_has_avx2_fma(), else portable; Int8 see int8_kernel_name().
void linear_q(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
              const Epilogue& ep = {});
// Portable path (any CPU; what linear_q runs without AVX2). Exposed for tests.
void linear_q_portable(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                       const Epilogue& ep = {});

// The AVX2 kernels even where linear_q would pick AVX-512 VNNI for int8 (tests/benchmarks; throws without AVX2).
void linear_q_avx2(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                   const Epilogue& ep = {});
// The AVX-512 kernels (tests/benchmarks; throws when cpu_has_avx512() is false). Int8: what linear_q runs.
void linear_q_avx512(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                     const Epilogue& ep = {});
// The F16/BF16/Int4 kernel linear_q runs on this CPU: "avx512", "avx2" or "portable".
const char* weight_only_kernel_name();
// The int8 kernel linear_q runs on this CPU: "avx512-vnni" (AVX-512 BW + VNNI; VTX_DISABLE_VNNI=1 or
// VTX_DISABLE_AVX512=1 turn it off), "avx2" (vpmaddubsw), "portable". All give the same int32 dot products.
const char* int8_kernel_name();

// Scalar references on the canonical data. Weight-only types: double accumulation over dequantize(q).
// Int8: per-row activation quantization exactly as the kernels do it (quantize_row_int8), exact integer
// dot products, then acc * s_a * scale[n] and the epilogue.
void linear_q_ref(const float* A, int64_t M, int64_t lda, const QuantData& q, float* C, int64_t ldc,
                  const Epilogue& ep = {});

// Dynamic per-token activation quantization used by the int8 path: s = max|a| / 127 (0 for an all-zero row),
// q = round_half_even(a / s) clamped to [-127, 127] (a / s computed as a * (1 / s)). Returns s.
float quantize_row_int8(const float* a, int64_t K, int8_t* q);

}  // namespace vtx::kernels
