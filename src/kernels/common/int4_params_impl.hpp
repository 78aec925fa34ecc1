// The int4 parameter search of int4_params.cpp, compiled twice: included by portable/int4_params.cpp (portable
// flags) and avx2/int4_params.cpp (-mavx2 -mfma), each inside its own namespace.
// Both builds give bit-identical results: every loop works on 8 float lanes / 4 double lanes with the same
// per-lane IEEE operations, contraction to FMA is off, and nothing is reassociated. No standard-library
// template is instantiated here (AVX2 code must not leak into shared weak symbols), everything but the two
// entry points has internal linkage.
// The pragmas let GCC if-convert the clamp (no value changes) and forbid a * b + c -> fma.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math", "fp-contract=off")
#endif

namespace {

constexpr int kSearchSteps = 6;       // candidates per anchor: t = -1, -1 + 2 / steps, ..., 1
constexpr int kRefinements = 2;       // at most this many assign-codes / refit rounds
constexpr int L = 8;                  // float lanes
constexpr int D = 4;                  // double lanes
constexpr float kRound = 12582912.f;  // 1.5 * 2^23: (t + kRound) - kRound rounds t in [0, 15] half to even

inline bool finite(double x) { return x - x == 0; }

// clamp to [0, 15], then round half to even: equal to torchao's clamp(round(t), 0, 15) for every t.
inline float round_code(float t) {
  t = t > 0.f ? t : 0.f;
  t = t < 15.f ? t : 15.f;
  return (t + kRound) - kRound;
}

// torchao quantize_affine (FLOAT zero-point domain): q = clamp(round((w - (z - 8 s)) / s), 0, 15).
void assign_codes(const float* w, int64_t n, float s, float z, uint8_t* codes) {
  const float min_val = z - s * 8.f;
  for (int64_t k = 0; k < n; ++k) codes[k] = static_cast<uint8_t>(static_cast<int32_t>(round_code((w[k] - min_val) / s)));
}

// 8 float lanes as one GCC/Clang vector (SSE2: two xmm, AVX2: one ymm), 4 double lanes likewise; lane j
// does exactly what the scalar code for lane j does (the tails).
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));

// a < b ? a : b and a > b ? a : b (vminps / vmaxps are exactly these selects, NaN -> the second operand)
inline v8f vmin(v8f a, v8f b) {
#if defined(__AVX__)
  return __builtin_ia32_minps256(a, b);
#else
  return a < b ? a : b;
#endif
}
inline v8f vmax(v8f a, v8f b) {
#if defined(__AVX__)
  return __builtin_ia32_maxps256(a, b);
#else
  return a > b ? a : b;
#endif
}

inline v8f load8(const float* p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline v8f round_code8(v8f t) {
  const v8f zero = {}, fifteen = zero + 15.f;
  t = vmin(vmax(t, zero), fifteen);
  return (t + kRound) - kRound;
}

inline double hsum(v8f v) {  // (l0 + l4) + (l2 + l6) + ((l1 + l5) + (l3 + l7)), the same on every ISA
  v4f lo, hi;
  __builtin_memcpy(&lo, &v, sizeof lo);
  __builtin_memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  const v4f h = lo + hi;
  return (static_cast<double>(h[0]) + h[2]) + (static_cast<double>(h[1]) + h[3]);
}

struct Stats {
  float mn, mx;
  double sw, sww;
};

Stats group_stats(const float* w, int64_t n, bool sums) {
  v8f vmn = v8f{} + w[0], vmx = vmn;
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    const v8f x = load8(w + k);
    vmn = vmin(x, vmn);
    vmx = vmax(x, vmx);
  }
  float amn[L], amx[L];
  __builtin_memcpy(amn, &vmn, sizeof amn);
  __builtin_memcpy(amx, &vmx, sizeof amx);
  for (int j = 0; k + j < n; ++j) {
    amn[j] = w[k + j] < amn[j] ? w[k + j] : amn[j];
    amx[j] = w[k + j] > amx[j] ? w[k + j] : amx[j];
  }
  Stats st{amn[0], amx[0], 0.0, 0.0};
  for (int j = 1; j < L; ++j) {
    st.mn = amn[j] < st.mn ? amn[j] : st.mn;
    st.mx = amx[j] > st.mx ? amx[j] : st.mx;
  }
  if (!sums) return st;
  v4d vw = {}, vww = {};
  for (k = 0; k + D <= n; k += D) {
    v4f x;
    __builtin_memcpy(&x, w + k, sizeof x);
    const v4d v = __builtin_convertvector(x, v4d);
    vw += v;
    vww += v * v;
  }
  double aw[D], aww[D];
  __builtin_memcpy(aw, &vw, sizeof aw);
  __builtin_memcpy(aww, &vww, sizeof aww);
  for (int j = 0; k + j < n; ++j) {
    const double v = w[k + j];
    aw[j] += v;
    aww[j] += v * v;
  }
  st.sw = (aw[0] + aw[1]) + (aw[2] + aw[3]);
  st.sww = (aww[0] + aww[1]) + (aww[2] + aww[3]);
  return st;
}

struct Sums {
  double q = 0, qq = 0, qw = 0;  // q, qq: exact integers (every partial sum < 2^24 for groups < 74000)
};

// For C code assignments c (C = 1 or 2, one pass over w): q = round_code((w - lo[c]) * inv[c]); sum q,
// sum q^2, sum q w.
template <int C>
void code_sums(const float* w, int64_t n, const float* lo, const float* inv, Sums* out) {
  v8f vq[C] = {}, vqq[C] = {}, vqw[C] = {};
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    const v8f x = load8(w + k);
    for (int c = 0; c < C; ++c) {
      const v8f q = round_code8((x - lo[c]) * inv[c]);
      vq[c] += q;
      vqq[c] += q * q;
      vqw[c] += q * x;
    }
  }
  if (k < n) {  // tail: zero-padded, the padding lanes' codes masked to 0
    float buf[L] = {};
    for (int j = 0; k + j < n; ++j) buf[j] = w[k + j];
    const v8f x = load8(buf), zero = {};
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int c = 0; c < C; ++c) {
      const v8f q = lane < static_cast<int32_t>(n - k) ? round_code8((x - lo[c]) * inv[c]) : zero;
      vq[c] += q;
      vqq[c] += q * q;
      vqw[c] += q * x;
    }
  }
  for (int c = 0; c < C; ++c) out[c] = Sums{hsum(vq[c]), hsum(vqq[c]), hsum(vqw[c])};
}

struct Fit {
  double err = __builtin_huge_val();  // squared error (infinite: no fit)
  float s = 0.f, z = 0.f;
};

// The least-squares (s, b) of w ~ s q + b for the codes behind `c`, kept in *best when its error is smaller.
void consider(const Sums& c, int64_t n, const Stats& st, Fit* best) {
  const double dn = static_cast<double>(n), det = dn * c.qq - c.q * c.q;
  if (!(det > 0)) return;  // all codes equal: no unique fit
  // minimum of sum (w - s q - b)^2 = sum w^2 - [sw sqw] A^-1 [sw sqw]^T, A = [[n, sq], [sq, sqq]]
  const double err = st.sww - (c.qq * st.sw * st.sw - 2.0 * c.q * st.sw * c.qw + dn * c.qw * c.qw) / det;
  if (!(err < best->err)) return;
  const double s = (dn * c.qw - c.q * st.sw) / det, b = (c.qq * st.sw - c.q * c.qw) / det;
  const float sf = static_cast<float>(s), zf = static_cast<float>(b + 8.0 * s);
  // s: a positive normal float with a finite reciprocal (the codes divide by it); z finite.
  if (!(sf >= 4.7e-38f) || !finite(sf) || !finite(zf)) return;
  *best = Fit{err, sf, zf};
}

// sum_k ((q_k - 8) s + z - w_k)^2 in double for C parameter sets at once (one pass over w).
template <int C>
void group_errors(const float* w, int64_t n, const float* scale, const float* zero, const uint8_t* const* codes,
                  double* out) {
  double acc[C][D] = {};
  int64_t k = 0;
  for (; k + D <= n; k += D)
    for (int c = 0; c < C; ++c)
      for (int j = 0; j < D; ++j) {
        const double d = (static_cast<double>(codes[c][k + j]) - 8.0) * scale[c] + zero[c] - w[k + j];
        acc[c][j] += d * d;
      }
  for (int c = 0; c < C; ++c) {
    for (int j = 0; k + j < n; ++j) {
      const double d = (static_cast<double>(codes[c][k + j]) - 8.0) * scale[c] + zero[c] - w[k + j];
      acc[c][j] += d * d;
    }
    out[c] = (acc[c][0] + acc[c][1]) + (acc[c][2] + acc[c][3]);
  }
}
}  // namespace

double group_error(const float* w, int64_t n, float scale, float zero, const uint8_t* codes) {
  double e;
  group_errors<1>(w, n, &scale, &zero, &codes, &e);
  return e;
}

void choose_params(const float* w, int64_t n, bool mse, float* scale, float* zero, uint8_t* codes,
                   uint8_t* scratch) {
  const Stats st = group_stats(w, n, mse);
  // torchao choose_qparams_affine (ASYMMETRIC, preserve_zero=False, ZeroPointDomain.FLOAT, eps 1e-6)
  const float r = st.mx - st.mn, s0 = r / 15.f > 1e-6f ? r / 15.f : 1e-6f;
  *scale = s0;
  *zero = st.mn + s0 * 8.f;
  assign_codes(w, n, *scale, *zero, codes);
  if (!mse || !(r > 0.f) || !finite(r) || !finite(st.sww)) return;

  Fit best;
  for (int i = 0; i <= kSearchSteps; ++i) {
    // inv = (15 + t) / r, t from -1 to 1, anchored at the minimum and at the maximum
    const float inv = (14.f + 2.f * static_cast<float>(i) / kSearchSteps) / r;
    const float lo[2] = {st.mn, st.mx - 15.f / inv}, invs[2] = {inv, inv};
    Sums c[2];
    code_sums<2>(w, n, lo, invs, c);
    consider(c[0], n, st, &best);
    consider(c[1], n, st, &best);
  }
  for (int it = 0; it < kRefinements && best.s > 0.f; ++it) {  // nearest codes for (s, z), refit
    const double before = best.err;
    const float lo = best.z - 8.f * best.s, inv = 1.f / best.s;
    Sums c;
    code_sums<1>(w, n, &lo, &inv, &c);
    consider(c, n, st, &best);
    if (!(best.err < before)) break;
  }
  if (!(best.s > 0.f)) return;
  assign_codes(w, n, best.s, best.z, scratch);
  const float ss[2] = {best.s, *scale}, zz[2] = {best.z, *zero};
  const uint8_t* const cc[2] = {scratch, codes};
  double e[2];
  group_errors<2>(w, n, ss, zz, cc, e);
  if (!(e[0] < e[1])) return;  // min/max unless strictly better
  *scale = best.s;
  *zero = best.z;
  for (int64_t k = 0; k < n; ++k) codes[k] = scratch[k];
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
