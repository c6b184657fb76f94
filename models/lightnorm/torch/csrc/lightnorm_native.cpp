// SPDX-License-Identifier: Apache-2.0
// LightNorm element-wise passes on the CPU: the native backend of lightnorm.torch.
//
// The element-wise passes of docs/spec.md (store + statistics, variance sums, normalize,
// backward pass 1 and 2) as fused loops, bit-identical to the torch-op passes of
// lightnorm.torch (lightnorm/torch/passes.py, ops.py document the arithmetic) and so to the numpy
// reference model. Every operator is one correct rounding; four arithmetic modes implement it
// (LnArgs::arith, chosen per pass by lightnorm/torch/native.py):
//   0 float32 emulation, formats with E <= 7 (ops.py _f32_fmt, _add_f32, _mul_f32): a + b and
//     a * b in float32 are exact or innocuously double-rounded, then quantize (below);
//   3 float32 with exact sums: results in formats with E <= 7, operands any float32 values
//     (e.g. E8M7 or FP32 per-channel statistics; ops.py _add_f32x, _mul_f32x): a + b is float32
//     TwoSum with the breakpoint nudge, a * b an exact float32 product (or one far outside the
//     result's range), then quantize (argument at add_x below);
//   2 binary32: every format of the pass is FP32 (E8M23) and rounds to nearest even: IEEE
//     float32 add / sub / mul are the operators themselves (quantize is the identity on float32
//     values; saturation maps +-Inf to +-max_normal); BFP of FP32 values rounds on the float32
//     bit patterns in integer operations (BfpVec, W = true); the store pass (no add / mul) also
//     under truncation;
//   1 float64: products of two format values are exact; a + b is TwoSum with the breakpoint
//     nudge (lightnorm.arith), then quantize (any other configuration).
// Modes 0, 2 and 3 run on explicit SIMD vectors (GCC vector extensions: one code path whose width is
// the machine's, LN_VB bytes: 64 with AVX-512, 32 with AVX/AVX2, 16 otherwise; LN_VEC_BYTES
// overrides it, which the tests use to run every width on one machine). Mode 1 runs scalar
// loops over block rows.
//
// quantize(x, f) (spec section 2): k = clamp(floor(log2|x|), emin, emax + 1) - M; 2^k * R(x * 2^-k);
// R = round half even or trunc; then the overflow policy. Vector form (mode 0): round half even
// to a multiple of 2^k is (|x| + C) - C with C = 1.5 * 2^(k + 23), built from the exponent bits
// of x (float32 addition rounds there to nearest even, |x| < 2^(k + 22)); truncation clears the
// low significand bits; overflow is decided from |x|. No branch, no lane-dependent control flow:
// the loops are the same instructions on every ISA (the previous kernels relied on the compiler
// to vectorize selects, which GCC does only with AVX-512 masking). BFP (rule max / second_max)
// rounds to the shared grid 2^sh the same way (mode 2, FP32 elements: integer rounding of the
// bit patterns, BfpVec below).
// Build flags must keep IEEE semantics: no -ffast-math, -ffp-contract=off (a fused multiply-add
// would change TwoSum and the products). The passes run with the default floating-point
// environment (round to nearest, no flush-to-zero / denormals-are-zero), set per call.
//
// Layout: (N, C, S) contiguous; BFP groups are `g` consecutive channels at one (n, s). Work
// items are (n, group) pairs, handed to torch's OpenMP threads in chunks (see run()). An item is
// processed in blocks of up to 1024 positions: its rows are staged in per-thread vector buffers
// (with S <= 1024 a group's rows are one contiguous stream), the operator chains run over packs of
// four vectors (independent chains side by side: one chain of roundings is latency-bound), and
// the next block's rows are prefetched meanwhile. Row sums per (n, c): float64 (exact for 'f64'
// kinds) or 32-bit limbs in int64 (exact for any format up to FP32; filled from float64
// accumulators over exponent windows), which lightnorm_native_round_limbs combines and rounds
// per channel.
// Range statistics with grad_mode range_exact: the store pass also finds each chunk's arg-max
// and arg-min (stream indices, ChunkArgs below) while the stored rows are staged, and backward
// pass 2 takes them and applies the correction at those elements of the blocks that hold them.

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

// Small arithmetic helpers are always inlined: a call in a loop body stops vectorization.
#define LN_INLINE inline __attribute__((always_inline))

namespace {

constexpr int kBlock = 512;   // s-block length of the float64 passes' per-group buffers
constexpr int kVBlock = 1024;  // s-block length of the vector passes (a multiple of 64): a
                               // group's rows of up to 1024 values are one contiguous stream

struct Fmt {  // a float format and the policies of the operators rounding to it
  int32_t man, emin, emax, rne, sat, pad;
  double maxn;
};

struct Bfp {  // BFP storage (enabled = 0: none)
  int32_t enabled, mb, g, e_lo, e_hi, second_max, rne, keeps;
};

}  // namespace

extern "C" {

// One call's arguments (mirrored by lightnorm/torch/_native.py; keep the field order).
struct LnArgs {
  int32_t pass;       // 0 store, 1 var, 2 norm, 3 bwd1, 4 bwd2
  int32_t arith;      // 0 float32 emulation, 1 float64, 2 binary32, 3 float32 with exact sums
  int32_t in0_half;   // in0 is float16 (else float32)
  int32_t in1_half;   // in1 is float16 (else float32)
  int32_t out_half;   // the stored output (x_c / dy_c) is float16 (else float32)
  int64_t n, c, s;
  int32_t nthreads;
  int32_t mode;         // bwd2: 0 bn, 1 range_exact, 2 eval; norm: 1 = the input is raw (I3)
  int32_t extrema;      // store: row max / min
  int32_t sum_kind;     // 0 none, 1 float64 rows, 2 limb rows
  int32_t nlimbs;
  Fmt fc;   // compute format (store: the stored format)
  Fmt fg;   // grad format
  Fmt fs;   // format of the summed values (limb decomposition)
  Bfp bfp;
  const void* in0;  // store: v (f32); var/norm: x_c (norm raw: x f32); bwd1: dy (f32), bwd2: dy_c
  const void* in1;  // bwd1/bwd2: x_c
  const double* v0;  // per-channel vectors (C,)
  const double* v1;
  const double* v2;
  const double* v3;
  const double* v4;
  const double* v5;
  void* out0;        // stored values / y / dx
  double* sum0;      // (N, C) float64 rows, or the non-finite part when limbs
  int64_t* limb0;    // (N, C, nlimbs)
  double* sum1;
  int64_t* limb1;
  double* ext_max;   // (N, C)
  double* ext_min;
  // chunk arg-max / arg-min (range_exact): K_n chunks of m values in each channel's stream
  // (stream index i = n * S + s, chunk min(i / m, K_n - 1)); store (chunks > 0): outputs,
  // bwd2 range_exact: inputs; (C, K_n) int64 stream indices
  int64_t chunks;     // K_n (0: store without chunk args)
  int64_t chunk_len;  // m = n // K_n
  int64_t* arg_max;
  int64_t* arg_min;
  void* arg_slots;    // internal (set by lightnorm_native_pass): per-row partials, ArgSlot
  int64_t arg_nseg;   // internal: partials per (n, c) row
};

int lightnorm_native_abi(void) { return 6; }

}  // extern "C"

namespace {

// ---- bit-level helpers ----------------------------------------------------------------------

template <class T> struct Bits;
template <> struct Bits<float> {
  using U = uint32_t;
  static constexpr int kMan = 23, kBias = 127, kMask = 0xFF;
};
template <> struct Bits<double> {
  using U = uint64_t;
  static constexpr int kMan = 52, kBias = 1023, kMask = 0x7FF;
};

template <class T> LN_INLINE int ilogb_bits(T x) {  // floor(log2|x|) of normals; 0: -bias
  const auto u = __builtin_bit_cast(typename Bits<T>::U, x);
  return static_cast<int>((u >> Bits<T>::kMan) & Bits<T>::kMask) - Bits<T>::kBias;
}

template <class T> LN_INLINE T pow2(int k) {  // 2^k for k in the normal range of T
  using U = typename Bits<T>::U;
  return __builtin_bit_cast(T, static_cast<U>(static_cast<U>(k + Bits<T>::kBias) << Bits<T>::kMan));
}

LN_INLINE int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// The rounding (P::rne: to nearest even, else toward zero) and the overflow policy (P::sat)
// are the configuration's, the same for every operator of a pass: compile-time, so that the
// chains of operators below have no branches.
template <bool Rne, bool Sat> struct Pol {
  static constexpr bool rne = Rne, sat = Sat;
};

template <class P, class T> LN_INLINE T rnd(T x) { return P::rne ? std::rint(x) : std::trunc(x); }

template <class P, class T> LN_INLINE T quant(T x, const Fmt& f) {
  int e = ilogb_bits(x);
  e = e < f.emin ? f.emin : e;
  e = e > f.emax + 1 ? f.emax + 1 : e;
  const int k = e - f.man;
  const T out = rnd<P>(x * pow2<T>(-k)) * pow2<T>(k);
  const T maxn = static_cast<T>(f.maxn);
  // overflow: saturate -> +-max_normal; inf & rne -> +-Inf; inf & rtz -> +-max_normal for
  // finite x (Inf stays Inf)
  const T lim = (P::rne && !P::sat) ? std::numeric_limits<T>::infinity() : maxn;
  const bool repl = (std::fabs(out) > maxn) & ((P::sat || P::rne) | std::isfinite(x));
  return repl ? std::copysign(lim, x) : out;
}

// Round the exact value s + err once (|err| below half an ulp of s): a one-ulp nudge toward the
// exact sum where s is a breakpoint of f (a value or a midpoint), then quantize.
template <class P> LN_INLINE double round_with_error(double s, double err, const Fmt& f) {
  const int k = clampi(ilogb_bits(s), f.emin, f.emax + 1) - (f.man + 1);
  const double sc = s * pow2<double>(-k);
  const bool nudge = std::isfinite(s) & (s != 0.0) & (sc == std::trunc(sc)) & (err != 0.0);
  const int64_t u = __builtin_bit_cast(int64_t, s) + (nudge ? ((err > 0.0) == (s > 0.0) ? 1 : -1) : 0);
  return quant<P>(__builtin_bit_cast(double, u), f);
}

template <class P> LN_INLINE double add(double a, double b, const Fmt& f) {
  const double s = a + b;
  const double bb = s - a;
  const double err = (a - (s - bb)) + (b - bb);  // TwoSum
  return round_with_error<P>(s, err, f);
}
template <class P> LN_INLINE double sub(double a, double b, const Fmt& f) { return add<P>(a, -b, f); }
template <class P> LN_INLINE double mul(double a, double b, const Fmt& f) { return quant<P>(a * b, f); }

// ---- SIMD vectors (GCC vector extensions) ------------------------------------------------------

#if defined(LN_VEC_BYTES)
#define LN_VB LN_VEC_BYTES
#elif defined(__AVX512F__)
#define LN_VB 64
#elif defined(__AVX__)
#define LN_VB 32
#else
#define LN_VB 16
#endif
#define LN_STR2(x) #x
#define LN_ISA_STR(x) LN_STR2(x)
static_assert(LN_VB == 16 || LN_VB == 32 || LN_VB == 64, "LN_VEC_BYTES: 16, 32 or 64");

constexpr int kL = LN_VB / 4;     // float32 lanes
constexpr int kNV = kVBlock / kL;  // vectors per block row
typedef float VF __attribute__((vector_size(LN_VB)));
typedef int32_t VI __attribute__((vector_size(LN_VB)));
typedef uint32_t VU __attribute__((vector_size(LN_VB)));
typedef double VD __attribute__((vector_size(LN_VB)));
typedef float VFu __attribute__((vector_size(LN_VB), aligned(4), __may_alias__));

constexpr int32_t kSignBit = INT32_MIN, kAbsMask = 0x7FFFFFFF, kInfBits = 0x7F800000;
constexpr int32_t kNanBits = 0x7FC00000;

LN_INLINE VF vf(float s) {
  VF v;
  for (int i = 0; i < kL; ++i) v[i] = s;
  return v;
}
LN_INLINE VI vi(int32_t s) { return VI{} + s; }
LN_INLINE VI iota() {
  VI v;
  for (int i = 0; i < kL; ++i) v[i] = i;
  return v;
}

template <size_t... I> LN_INLINE VD lo_d(VF v, std::index_sequence<I...>) {
  return __builtin_convertvector(__builtin_shufflevector(v, v, I...), VD);
}
template <size_t... I> LN_INLINE VD hi_d(VF v, std::index_sequence<I...>) {
  return __builtin_convertvector(__builtin_shufflevector(v, v, (I + kL / 2)...), VD);
}
using Half = std::make_index_sequence<kL / 2>;

// loads / stores of `rem` values (rem >= kL: a whole vector; else zero-filled / partial)
LN_INLINE VF ld_f32(const float* p, int rem) {
  if (__builtin_expect(rem >= kL, 1)) return *reinterpret_cast<const VFu*>(p);
  VF v = {};
  std::memcpy(&v, p, sizeof(float) * rem);
  return v;
}
LN_INLINE void st_f32(float* p, VF v, int rem) {
  if (__builtin_expect(rem >= kL, 1)) {
    *reinterpret_cast<VFu*>(p) = v;
    return;
  }
  std::memcpy(p, &v, sizeof(float) * rem);
}

// float16 <-> float32 (exact: the values are float16 values); F16C when the CPU has it
LN_INLINE VF cvt_h(const uint16_t* p) {
#if defined(__F16C__) && LN_VB == 16
  return (VF)_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
#elif defined(__F16C__) && LN_VB == 32
  return (VF)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#elif defined(__AVX512F__) && LN_VB == 64
  return (VF)_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(__F16C__) && LN_VB == 64
  typedef float V8 __attribute__((vector_size(32)));
  const V8 a = (V8)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const V8 b = (V8)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
  return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#else
  VF v;
  for (int i = 0; i < kL; ++i) v[i] = static_cast<float>(__builtin_bit_cast(_Float16, p[i]));
  return v;
#endif
}
LN_INLINE void cvt_store_h(uint16_t* p, VF v) {
#if defined(__F16C__) && LN_VB == 16
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_cvtps_ph((__m128)v, _MM_FROUND_TO_NEAREST_INT));
#elif defined(__F16C__) && LN_VB == 32
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT));
#elif defined(__AVX512F__) && LN_VB == 64
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph((__m512)v, _MM_FROUND_TO_NEAREST_INT));
#elif defined(__F16C__) && LN_VB == 64
  typedef float V8 __attribute__((vector_size(32)));
  const V8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
  const V8 b = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph((__m256)a, _MM_FROUND_TO_NEAREST_INT));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 8), _mm256_cvtps_ph((__m256)b, _MM_FROUND_TO_NEAREST_INT));
#else
  for (int i = 0; i < kL; ++i) p[i] = __builtin_bit_cast(uint16_t, static_cast<_Float16>(v[i]));
#endif
}
LN_INLINE VF ld_h(const uint16_t* p, int rem) {
  if (__builtin_expect(rem >= kL, 1)) return cvt_h(p);
  uint16_t t[kL] = {};
  std::memcpy(t, p, sizeof(uint16_t) * rem);
  return cvt_h(t);
}
LN_INLINE void st_h(uint16_t* p, VF v, int rem) {
  if (__builtin_expect(rem >= kL, 1)) {
    cvt_store_h(p, v);
    return;
  }
  uint16_t t[kL];
  cvt_store_h(t, v);
  std::memcpy(p, t, sizeof(uint16_t) * rem);
}

LN_INLINE VF masked(VF x, int rem) {  // lanes >= rem set to +0
  if (__builtin_expect(rem >= kL, 1)) return x;
  return iota() < rem ? x : VF{};
}

// ---- vector quantize and operators (modes 0, 2 and 3) -------------------------------------------

struct QC {  // a format's constants (modes 0, 3: a format with E <= 7; mode 2: FP32) and policy
  VI e_lo, c_add, emin_b, rtz_base;
  VF maxn, lim, big;
  VF lim_inf;  // what +-Inf becomes: +-Inf, or +-max_normal under saturation
};

QC make_qc(const Fmt& f, bool rne, bool sat) {
  QC q;
  q.e_lo = vi((f.emin + 127) << 23);
  q.c_add = vi(((23 - f.man) << 23) | 0x400000);
  q.emin_b = vi(f.emin + 127);
  q.rtz_base = vi(23 - f.man);
  q.maxn = vf(static_cast<float>(f.maxn));
  q.lim = vf(rne && !sat ? std::numeric_limits<float>::infinity() : static_cast<float>(f.maxn));
  q.lim_inf = vf(sat ? static_cast<float>(f.maxn) : std::numeric_limits<float>::infinity());
  // the smallest |x| whose rounding overflows: rne: max_normal + half an ulp (the tie rounds to
  // even, up: max_normal's significand is odd); rtz: 2^(emax + 1)
  const double half_ulp = std::ldexp(1.0, f.emax - f.man - 1);
  q.big = vf(static_cast<float>(rne ? f.maxn + half_ulp : std::ldexp(1.0, f.emax + 1)));
  return q;
}

// quantize(x, f) of float32 x, K = 0: a format with E <= 7 (its scalings are normal float32).
// rne: |x| rounded to a multiple of 2^k by (|x| + C) - C, C = 1.5 * 2^(k + 23) from the exponent
// bits clamped below at emin; rtz: the significand bits below 2^k cleared. Overflow is decided
// from |x| itself (|x| >= big), off the rounding's dependency chain; values beyond 2^(emax + 2),
// whose C would not be meaningful, all overflow. The sign is put back last (a negative value
// rounding to zero gives -0). NaN stays NaN.
// K = 2: FP32 itself, quantize of a float32 value is the identity (saturation: Inf -> max).
// The overflow policy is in the constants (one instantiation for both policies); P::sat unused.
template <class P, int K> LN_INLINE VF vq(VF x, const QC& c) {
  if constexpr (K == 2) {
    const VI xb = (VI)x;
    return ((xb & kAbsMask) == kInfBits) ? (VF)((xb & kSignBit) | (VI)c.lim_inf) : x;
  } else {
    const VI xb = (VI)x;
    const VI s = xb & kSignBit;
    const VI ab = xb & kAbsMask;
    const VF a = (VF)ab;
    VF r;
    if constexpr (P::rne) {
      VI e = xb & kInfBits;
      e = e < c.e_lo ? c.e_lo : e;
      const VF cc = (VF)((VU)e + (VU)c.c_add);
      r = (a + cc) - cc;
      r = a >= c.big ? c.lim : r;
    } else {
      const VI e = ab >> 23;
      VI d = c.emin_b - e;
      d = d > 0 ? d : 0;
      const VI ncl = c.rtz_base + d;  // significand bits below 2^k
      const VI n23 = ncl < 23 ? ncl : 23;
      VU m = (VU)vi(-1) << (VU)n23;
      m = ncl >= 24 ? VU{} : m;
      r = (VF)(e == 255 ? ab : (ab & (VI)m));
      r = a >= c.big ? ((ab == kInfBits) ? c.lim_inf : c.maxn) : r;
    }
    return (VF)((VI)r | s);
  }
}

// Mode 3 (float32 with exact sums): the operators of mode 0 for operands that are float32 values
// of any width (E8M7 statistics, FP32 scalars) and a result format f with E <= 7, M <= 21 and
// lsb = emin - M >= -124 (ops.py _add_f32x, _mul_f32x).
// add: TwoSum gives s = fl32(a + b) and e = (a + b) - s exactly (Knuth; valid for all finite
// float32 a, b, subnormals included, unless s overflows). From (s, e) the sum rounded to odd is
// one integer step: x = a + b itself if e = 0, else the one of the two float32 values around x
// (s and its neighbour toward e) whose significand is odd: s + 1 ulp toward e when s is even.
// Rounding to odd at 24 bits, then once to f, is the correct rounding of x (Boldo & Melquiond:
// p + 2 bits suffice for round to nearest; here M + 3 <= 24): the breakpoints of f (its values
// and midpoints: M + 2 significant bits, or multiples of 2^(lsb - 1) >= 2^-125 below 2^emin) are
// even float32 values, while an inexact x and its odd rounding lie strictly between the same two
// consecutive float32 values with only the odd one, no breakpoint, between them: both round
// alike to nearest (ties included) and toward zero. The float64 path's breakpoint nudge
// (round_with_error) gives the same value. An exact sum below 2^-126 is representable (float32
// addition is exact there). Overflow: f's threshold (c.big, round or truncate) is a breakpoint,
// so the odd rounding is on the same side as x. A float32 sum that overflows (finite a, b) has
// |a + b| > 2^127 beyond f's range: quantize overflows either way except for truncation with
// Overflow.INF, which keeps +-Inf inputs but maps finite overflow to +-max_normal: there such s
// becomes +-FLT_MAX first.
// mul (ops.py _mul_f32x: the significands have <= 24 bits together): a * b is exact in float32
// when |a * b| >= 2^-126 (a normal result; below 2^128). A true product below 2^-126 < 2^(lsb - 1)
// (half f's smallest subnormal) quantizes to a signed zero, and so does its float32 rounding
// (at most 2^-126, same sign). A product overflowing float32 (finite a, b) is far beyond f's
// range: as for add, +-FLT_MAX under truncation with Overflow.INF.
// odd_step: the integer step from s to the sum rounded to odd (0, +1 or -1 on the bits of s).
LN_INLINE VI odd_step(VF s, VF e) {
  const VI sb = (VI)s;
  const VI go = (e != 0) & ((sb & 1) == 0) & ((sb & kAbsMask) < kInfBits);
  return go & ((((VI)e ^ sb) >> 31) | 1);  // toward e: -1 / +1 in magnitude
}
// finite operands, float32 overflow: +-FLT_MAX (truncation only, see above)
template <class P> LN_INLINE VF ovf_fix(VF r, VF a, VF b) {
  if constexpr (P::rne) {
    return r;
  } else {
    const VI rb = (VI)r;
    const VI fin = (((VI)a & kAbsMask) < kInfBits) & (((VI)b & kAbsMask) < kInfBits);
    return ((rb & kAbsMask) == kInfBits) & fin ? (VF)((rb & kSignBit) | vi(0x7F7FFFFF)) : r;
  }
}
template <class P> LN_INLINE VF add_x(VF a, VF b, const QC& c) {
  const VF s = a + b;
  const VF bb = s - a;
  const VF e = (a - (s - bb)) + (b - bb);  // TwoSum: a + b = s + e
  const VF sn = (VF)((VI)s + odd_step(s, e));
  return vq<P, 0>(ovf_fix<P>(sn, a, b), c);
}
template <class P> LN_INLINE VF mul_x(VF a, VF b, const QC& c) {
  return vq<P, 0>(ovf_fix<P>(a * b, a, b), c);
}

// one operator: K = 0 / 2 one float32 operation and quantize; K = 3 as above
template <class P, int K> LN_INLINE VF vadd(VF a, VF b, const QC& c) {
  if constexpr (K == 3) return add_x<P>(a, b, c);
  else return vq<P, K>(a + b, c);
}
template <class P, int K> LN_INLINE VF vsub(VF a, VF b, const QC& c) {
  if constexpr (K == 3) return add_x<P>(a, -b, c);
  else return vq<P, K>(a - b, c);
}
template <class P, int K> LN_INLINE VF vmul(VF a, VF b, const QC& c) {
  if constexpr (K == 3) return mul_x<P>(a, b, c);
  else return vq<P, K>(a * b, c);
}

// Packs of U vectors: the loops below run U independent operator chains side by side, so that
// the out-of-order core overlaps their latencies (one chain of roundings is latency-bound).
constexpr int kU = 4;
template <int U> struct Pk {
  VF v[U];
};
#define LN_FOR_U _Pragma("GCC unroll 8") for (int u = 0; u < U; ++u)
template <int U> LN_INLINE Pk<U> ldp(const VF* p) {
  Pk<U> r;
  LN_FOR_U r.v[u] = p[u];
  return r;
}
template <int U> LN_INLINE void stp(VF* p, const Pk<U>& x) { LN_FOR_U p[u] = x.v[u]; }
template <class P, int K, int U> LN_INLINE Pk<U> pq(Pk<U> x, const QC& c) {
  LN_FOR_U x.v[u] = vq<P, K>(x.v[u], c);
  return x;
}
template <class P, int K, int U> LN_INLINE Pk<U> padd(Pk<U> a, VF b, const QC& c) {
  LN_FOR_U a.v[u] = vadd<P, K>(a.v[u], b, c);
  return a;
}
template <class P, int K, int U> LN_INLINE Pk<U> psub(Pk<U> a, VF b, const QC& c) {
  LN_FOR_U a.v[u] = vsub<P, K>(a.v[u], b, c);
  return a;
}
template <class P, int K, int U> LN_INLINE Pk<U> pmul(Pk<U> a, VF b, const QC& c) {
  LN_FOR_U a.v[u] = vmul<P, K>(a.v[u], b, c);
  return a;
}
template <class P, int K, int U> LN_INLINE Pk<U> psub(Pk<U> a, const Pk<U>& b, const QC& c) {
  LN_FOR_U a.v[u] = vsub<P, K>(a.v[u], b.v[u], c);
  return a;
}
template <class P, int K, int U> LN_INLINE Pk<U> pmul(Pk<U> a, const Pk<U>& b, const QC& c) {
  LN_FOR_U a.v[u] = vmul<P, K>(a.v[u], b.v[u], c);
  return a;
}

// f(v, U) over vectors [0, nv): packs of kU, then single vectors
template <class F> LN_INLINE void for_packs(int nv, F f) {
  int v = 0;
  for (; v + kU <= nv; v += kU) f(v, std::integral_constant<int, kU>{});
  for (; v < nv; ++v) f(v, std::integral_constant<int, 1>{});
}

// ---- vector BFP of one block (modes 0, 2, 3; spec section 5) ----------------------------------
// Lanes are positions s; the group's rows are gathered first (rule max: the largest magnitude
// as bits, NaN > Inf > finite; second_max: the two largest element exponents), then each
// position's shared exponent gives its grid 2^sh, and every element is rounded to the grid.
// Narrow element formats (W = false; modes 0 and 3, ops.py _bfp_f32: every grid and constant
// is a normal float32 value): C = 1.5 * 2^(sh + 23) and the largest mantissa (2^mb - 1) * 2^sh
// as float32, rounding like vq.
// FP32 element formats (W = true; mode 2): the grid can sit anywhere in float32's range (and
// beyond: 2^sh below 2^-149, or (2^mb - 1) * 2^sh above FLT_MAX), so the rounding is integer
// work on the bit pattern of |x|: x = m * 2^(max(E, 1) - 150) with m the 24-bit significand
// (E the exponent field), and the grid 2^sh lies r = sh + 150 - max(E, 1) bits up. r <= 0: x
// is on the grid. 1 <= r <= 23: rounding the pattern's integer at bit r (add 2^(r-1) - 1 plus
// the quotient's parity, the parity of m >> r, then clear the low r bits; toward zero: just
// clear them) is the rounding of m at bit r; a carry out of the significand runs into the
// exponent field, which is the value's next binade (subnormal -> 2^-126 too; beyond FLT_MAX
// the pattern of +Inf). r = 24 (normal x in [2^(sh-1), 2^sh)): 2^sh unless x is the tie 2^(sh-1)
// or truncated (0); r > 24 (x < 2^(sh-1)): 0. The mantissa cap 2^mb - 1 applies when the
// rounded value reaches 2^(shared + 1) (unsigned pattern compare; a pattern 2^128 and beyond
// never caps: the cap is then above every float32 value); the capped value is then a float32
// value (its exponent is the shared one, in float32's range: rule max caps only at e_hi <= 127,
// second_max only elements of the shared exponent that carry, so with sh >= -148). Element
// exponents of subnormals (second_max) come from the significand converted to float32.
// The shared exponent of rule max: clamp(t + carry, e_lo, e_hi), t = floor(log2 x_max), carry =
// R(x_max) to mb significant bits reaching 2^(t + 1) (the significand's top bits), which equals
// the spec's clamp(top + carry(top)) with top = clamp(t): below e_lo no carry reaches e_lo + 1,
// above e_hi either is e_hi.

// floor(log2 x) of a finite nonzero float32 pattern ab (|x|), subnormals included
LN_INLINE VI exp_true(VI ab) {
  const VI sub = (VI)__builtin_convertvector(ab & 0x7FFFFF, VF);  // the subnormal significand
  return ab >= 0x800000 ? (ab >> 23) - 127 : (sub >> 23) - (127 + 149);
}
// the pattern of 2^k for k in [-149, 128] (128: the pattern of +Inf, 129: 0x80000000)
LN_INLINE VI pow2_bits(VI k) {
  const VI ks = k + 149;
  return k >= -126 ? (k + 127) << 23 : vi(1) << (ks > 0 ? ks : VI{});
}

struct BfpVec {
  int mb, e_lo, e_hi, second, rne, keeps;
  int32_t thr_mant, maxv_mant;
  VI acc1[kNV], acc2[kNV], shared[kNV], special[kNV];
  VF csh[kNV], maxv[kNV], p2[kNV];
  VI shw[kNV], capb[kNV], maxb[kNV];  // W: sh, the pattern of 2^(shared + 1), the capped value
  bool any_special;

  void init(const Bfp& b) {
    mb = b.mb, e_lo = b.e_lo, e_hi = b.e_hi, second = b.second_max, rne = b.rne, keeps = b.keeps;
    thr_mant = rne ? (0x7FFFFF & ~((1 << (23 - mb)) - 1)) : 0;
    maxv_mant = 0x7FFFFF & ~((1 << (24 - mb)) - 1);
  }
  static constexpr int32_t kNoExp = -(1 << 20);

  void reset(int nv) {
    for (int v = 0; v < nv; ++v) acc1[v] = acc2[v] = second ? vi(kNoExp) : VI{};
  }
  template <bool W> LN_INLINE VI elem_exp(VI ab) const {  // exponent, kNoExp: 0 / Inf / NaN
    const VI e = W ? exp_true(ab) : (ab >> 23) - 127;
    return ((ab != 0) & (ab < kInfBits)) ? e : vi(kNoExp);
  }
  template <bool W> LN_INLINE void gather(VF q, int v) {
    const VI ab = (VI)q & kAbsMask;
    if (!second) {
      acc1[v] = ab > acc1[v] ? ab : acc1[v];
    } else {
      const VI e = elem_exp<W>(ab);
      const VI hi = e > acc1[v] ? e : acc1[v], lo = e > acc1[v] ? acc1[v] : e;
      acc1[v] = hi;
      acc2[v] = lo > acc2[v] ? lo : acc2[v];
    }
  }
  template <bool W> void finish(int nv, int gs) {
    const VI lo = vi(e_lo), hi = vi(e_hi), no = vi(kNoExp);
    VI anys = {};
    for (int v = 0; v < nv; ++v) {
      VI shd, sp = {};
      if (!second) {
        const VI gm = acc1[v];
        sp = gm >= kInfBits;
        if constexpr (W) {
          // t and the significand bits of x_max (a subnormal one normalized through float32)
          const VI nb = gm >= 0x800000 ? gm : (VI)__builtin_convertvector(gm, VF);
          const VI t = gm >= 0x800000 ? (gm >> 23) - 127 : (nb >> 23) - (127 + 149);
          VI up = rne ? t - ((nb & 0x7FFFFF) >= thr_mant) : t;  // + carry
          up = gm == 0 ? lo : up;
          up = up < lo ? lo : up;
          shd = sp ? lo : (up < hi ? up : hi);
        } else {
          VI top = (gm >> 23) - 127;
          top = top < lo ? lo : top;
          top = top > hi ? hi : top;
          // R(gm * 2^(mb - 1 - top)) >= 2^mb  <=>  gm >= (2^mb - 1/2) * 2^(top - mb + 1) (rne),
          // gm >= 2^(top + 1) (rtz)
          const VF thr = rne ? (VF)(((top + 127) << 23) | thr_mant) : (VF)((top + 128) << 23);
          const VI up = top - ((VF)gm >= thr);
          shd = sp ? lo : (up < hi ? up : hi);
        }
      } else {
        shd = gs == 1 ? acc1[v] : (acc2[v] == no ? acc1[v] : acc2[v]);
        const VI cl = shd < lo ? lo : (shd > hi ? hi : shd);
        shd = shd == no ? lo : cl;
      }
      const VI sh = shd - (mb - 1);
      shared[v] = shd;
      special[v] = sp;
      anys |= sp;
      if constexpr (W) {
        shw[v] = sh;
        capb[v] = pow2_bits(shd + 1);
        const VI sub = sh + 149;  // the capped value below 2^-126: (2^mb - 1) * 2^sh, sh >= -148
        maxb[v] = shd >= -126 ? ((shd + 127) << 23) | maxv_mant
                              : vi((1 << mb) - 1) << (sub > 0 ? sub : VI{});
      } else {
        csh[v] = (VF)(((sh + 150) << 23) | 0x400000);
        maxv[v] = (VF)(((sh + mb + 126) << 23) | maxv_mant);
        p2[v] = (VF)((sh + 127) << 23);
      }
    }
    any_special = false;
    for (int i = 0; i < kL; ++i) any_special |= anys[i] != 0;
  }
  template <class P, bool W, int U> LN_INLINE Pk<U> apply(Pk<U> x, int v) const {
    LN_FOR_U x.v[u] = apply<P, W>(x.v[u], v + u);
    return x;
  }
  // |x| (pattern ab, finite) rounded to the grid 2^sh and capped, W = true (see above)
  template <class P> LN_INLINE VI round_wide(VI ab, int v) const {
    const VI ex = ab >> 23;
    const VI r = shw[v] + 150 - (ex > 1 ? ex : vi(1));
    const VI rc = r < 0 ? VI{} : (r > 23 ? vi(23) : r);
    VI rb;
    if constexpr (P::rne) {
      const VI m = (ab & 0x7FFFFF) | ((ex != 0) & 0x800000);
      const VI inc = ((vi(1) << rc) >> 1) - 1 + ((m >> rc) & 1);
      rb = (ab + inc) & (vi(-1) << rc);
      const VI r24 = ((ex != 0) & ((ab & 0x7FFFFF) != 0)) ? (ex + 1) << 23 : VI{};
      rb = r > 23 ? (r == 24 ? r24 : VI{}) : rb;
    } else {
      rb = r > 23 ? VI{} : ab & (vi(-1) << rc);
    }
    rb = r <= 0 ? ab : rb;
    return (VU)rb >= (VU)capb[v] ? maxb[v] : rb;
  }
  template <class P, bool W> LN_INLINE VF apply(VF x, int v) const {
    const VI xb = (VI)x;
    const VI s = xb & kSignBit;
    const VI ab = xb ^ s;
    VF val;
    if constexpr (W) {
      val = (VF)(round_wide<P>(ab, v) | s);
    } else {
      const VF a = (VF)ab;
      VF m = (a + csh[v]) - csh[v];
      if constexpr (!P::rne) m = m > a ? m - p2[v] : m;
      m = m < maxv[v] ? m : maxv[v];
      val = (VF)((VI)m | s);
    }
    if (!second) {
      if (__builtin_expect(any_special, 0))
        return special[v] ? ((ab == kInfBits) ? x : (VF)vi(kNanBits)) : val;
      return val;
    }
    const VI e = elem_exp<W>(ab);
    return ((e > shared[v]) | (ab >= kInfBits)) ? x : val;
  }
};

// ---- exact row sums ---------------------------------------------------------------------------

// Add the signed integer t * 2^o (o >= 0 in units of 2^lsb) to 32-bit limbs.
LN_INLINE void limb_add(int64_t* limb, int64_t t, int o) {
  const __int128 val = static_cast<__int128>(t) << (o & 31);
  const int i = o >> 5;
  limb[i] += static_cast<int64_t>(static_cast<uint32_t>(val));
  limb[i + 1] += static_cast<int64_t>(static_cast<uint32_t>(val >> 32));
  limb[i + 2] += static_cast<int64_t>(val >> 64);  // arithmetic: val = lo + mid 2^32 + hi 2^64
}

// Scalar: add values of f (as double) to a limb accumulator: value = sum(limb[i] * 2^(32 i + lsb));
// non-finite values go to `special` (float64 sum).
template <class T> void add_limbs_scalar(const T* v, int len, int lsb, int64_t* limb, double* special) {
  for (int i = 0; i < len; ++i) {
    const double x = static_cast<double>(v[i]);
    if (!std::isfinite(x)) {
      *special += x;
      continue;
    }
    if (x == 0.0) continue;
    const int k = ilogb_bits(x) - 52;  // x = m * 2^k, |m| < 2^53 (x a float32 value: normal double)
    const int64_t m = static_cast<int64_t>(x * pow2<double>(-k));
    int o = k - lsb;
    int64_t t = m;
    if (o < 0) {  // bits below 2^lsb are zero (x is a multiple of 2^lsb)
      t >>= -o;
      o = 0;
    }
    limb_add(limb, t, o);
  }
}

struct SumRow {  // one row's exact sum within a block: float64 lanes, or values for the limbs
  VD a0, a1;
  LN_INLINE void reset() { a0 = a1 = VD{}; }
  LN_INLINE void add(VF x) {
    a0 += lo_d(x, Half{});
    a1 += hi_d(x, Half{});
  }
  LN_INLINE double total() const {
    const VD t = a0 + a1;
    double s = 0.0;
    for (int i = 0; i < kL / 2; ++i) s += t[i];
    return s;
  }
};

using SumRowD = SumRow;

// Add an exact float64 value t (a multiple of 2^lsb) to the limbs.
LN_INLINE void limb_add_f64(int64_t* limb, double t, int lsb) {
  if (t == 0.0) return;
  int e = 0;
  const double fr = std::frexp(t, &e);
  int64_t m = static_cast<int64_t>(std::ldexp(fr, 53));  // t = m * 2^(e - 53), exact
  int o = e - 53 - lsb;
  if (o < 0) {  // the bits below 2^lsb are zero
    m >>= -o;
    o = 0;
  }
  limb_add(limb, m, o);
}

// Exact sum of float32 values (multiples of 2^lsb) into the limbs, vectorized, in float64
// accumulators whose every partial sum is exact. B: the block's largest biased exponent, E: its
// smallest (nonzero values; subnormals count as 1); a value is a multiple of 2^(e - 150) below
// 2^(e - 126), at most 512 values per block.
//   B - E <= 20: every value is a multiple of 2^(E - 150) below 2^(B - 126): one accumulator
//     (52 bits).
//   B - E <= 63: x = hi + lo, hi = x rounded to a multiple of 2^G, G = B - 169 ((x + C) - C,
//     C = 1.5 * 2^(G + 52), float64), lo = x - hi (exact, |lo| <= 2^(G - 1)): the hi sum is
//     below 2^(G + 53) in units of 2^G, the lo sum below 2^(B - 161) in units of 2^(E - 150).
//   wider: windows of 20 exponents (masks), one accumulator each.
// Each total goes to the limbs. A block with NaN/Inf takes the scalar path.
constexpr int kWin = 20;
constexpr int kSumChunk = 512;  // the bounds above assume at most 2^9 values per sum

void add_limbs_chunk(const float* v, int len, int lsb, int64_t* limb, double* special) {
  const int nv = (len + kL - 1) / kL;
  VI emax = {}, emin = vi(255);
  for (int i = 0; i < nv; ++i) {
    const VI ab = (VI)ld_f32(v + i * kL, len - i * kL) & kAbsMask;
    const VI e = ab >> 23;
    emax = e > emax ? e : emax;
    const VI en = ab != 0 ? e : vi(255);
    emin = en < emin ? en : emin;
  }
  int bmax = 0, bmin = 255;
  for (int i = 0; i < kL; ++i) bmax = std::max(bmax, int(emax[i])), bmin = std::min(bmin, int(emin[i]));
  if (bmax == 255) {  // Inf / NaN (also where they are the only nonzero values)
    add_limbs_scalar(v, len, lsb, limb, special);
    return;
  }
  if (bmin == 255) return;  // all zeros
  const int B = std::max(bmax, 1), lo = std::max(bmin, 1);  // subnormals: exponent field 0 ~ 1
  if (B - lo <= kWin) {
    SumRowD acc;
    acc.reset();
    for (int i = 0; i < nv; ++i) acc.add(ld_f32(v + i * kL, len - i * kL));
    limb_add_f64(limb, acc.total(), lsb);
    return;
  }
  if (B - lo <= 63) {
    VD c;
    for (int i = 0; i < kL / 2; ++i) c[i] = std::ldexp(1.5, B - 117);  // 1.5 * 2^(G + 52)
    VD h0 = {}, h1 = {}, l0 = {}, l1 = {};
    for (int i = 0; i < nv; ++i) {
      const VF x = ld_f32(v + i * kL, len - i * kL);
      const VD d0 = lo_d(x, Half{}), d1 = hi_d(x, Half{});
      const VD u0 = (d0 + c) - c, u1 = (d1 + c) - c;
      h0 += u0;
      h1 += u1;
      l0 += d0 - u0;
      l1 += d1 - u1;
    }
    const VD h = h0 + h1, l = l0 + l1;
    double th = 0.0, tl = 0.0;
    for (int i = 0; i < kL / 2; ++i) th += h[i], tl += l[i];
    limb_add_f64(limb, th, lsb);
    limb_add_f64(limb, tl, lsb);
    return;
  }
  const int nw = (B - lo) / kWin + 1;
  for (int w = 0; w < nw; ++w) {
    const VI top = vi(B - kWin * w), bot = vi(B - kWin * (w + 1));
    SumRowD acc;
    acc.reset();
    for (int i = 0; i < nv; ++i) {
      const VF x = ld_f32(v + i * kL, len - i * kL);
      const VI e = ((VI)x & kAbsMask) >> 23;
      const VI e1 = e > 1 ? e : vi(1);
      acc.add((VF)((VI)x & ((e1 <= top) & (e1 > bot))));
    }
    limb_add_f64(limb, acc.total(), lsb);
  }
}

void add_limbs_f32(const float* v, int len, int lsb, int64_t* limb, double* special) {
  for (int i = 0; i < len; i += kSumChunk)
    add_limbs_chunk(v + i, std::min(kSumChunk, len - i), lsb, limb, special);
}

// Row max / min of a block (lanes < rem only); a NaN anywhere makes both NaN (as torch.amax /
// amin). Folded into the (N, C) float64 extrema.
struct ExtRow {
  VF hi, lo;
  VI nan;
  LN_INLINE void reset() {
    hi = vf(-std::numeric_limits<float>::infinity());
    lo = vf(std::numeric_limits<float>::infinity());
    nan = VI{};
  }
  LN_INLINE void add(VF x, int rem) {
    VF xh = x, xl = x;
    if (__builtin_expect(rem < kL, 0)) {
      const VI ok = iota() < rem;
      xh = ok ? x : vf(-std::numeric_limits<float>::infinity());
      xl = ok ? x : vf(std::numeric_limits<float>::infinity());
    }
    hi = xh > hi ? xh : hi;
    lo = xl < lo ? xl : lo;
    nan |= x != x;
  }
  void fold(double* mx, double* mn) const {
    double h = *mx, m = *mn;
    bool isnan = (h != h) | (m != m);
    for (int l = 0; l < kL; ++l) {
      h = static_cast<double>(hi[l]) > h ? static_cast<double>(hi[l]) : h;
      m = static_cast<double>(lo[l]) < m ? static_cast<double>(lo[l]) : m;
      isnan |= nan[l] != 0;
    }
    *mx = isnan ? std::numeric_limits<double>::quiet_NaN() : h;
    *mn = isnan ? std::numeric_limits<double>::quiet_NaN() : m;
  }
};

// Chunk arg-max / arg-min (range_exact; docs/spec.md sections 6-7). Chunk k of a channel's stream
// holds the stream indices [k m, (k + 1) m), the last one up to n (the remainder). The order:
// -0 == +0, a NaN is above every number for the max and below every number for the min (so the
// first NaN of a chunk is both), ties go to the smallest stream index. As int32 keys of the float32
// values: -0 -> +0, then the sign-magnitude bits in two's complement order; NaN -> INT32_MAX (max
// key) / INT32_MIN (min key). Every other key lies strictly between (|key| <= 0x7F800000, +-Inf),
// so INT32_MIN / INT32_MAX also mark lanes and slots that hold no element yet.
// Stream indices fit int32: the native passes take fewer than 2^31 values per channel.
// The store pass keeps one partial (ArgSlot) per (n, c) row and chunk segment of the row (a row of
// S values meets at most arg_nseg chunks), merged over the row's blocks; ChunkArgs::combine then
// merges the rows of each chunk into the (C, K_n) outputs.
struct ArgSlot {
  int32_t kmax, imax, kmin, imin;  // keys and stream indices of the max and the min so far
  static LN_INLINE ArgSlot none() { return {INT32_MIN, INT32_MAX, INT32_MAX, INT32_MAX}; }
  LN_INLINE void merge(int32_t kx, int32_t ix, int32_t kn, int32_t in) {
    if (kx > kmax || (kx == kmax && ix < imax)) kmax = kx, imax = ix;
    if (kn < kmin || (kn == kmin && in < imin)) kmin = kn, imin = in;
  }
};

LN_INLINE int32_t arg_key(float x) {  // the order key of a value that is not NaN
  int32_t b = __builtin_bit_cast(int32_t, x);
  b = b == kSignBit ? 0 : b;  // -0 -> +0
  return b ^ ((b >> 31) & kAbsMask);
}

struct ChunkArgs {
  int64_t k_n, m, s, c, nseg;
  ArgSlot* slots;
  explicit ChunkArgs(const LnArgs& a)
      : k_n(a.chunks), m(a.chunk_len), s(a.s), c(a.c), nseg(a.arg_nseg),
        slots(static_cast<ArgSlot*>(a.arg_slots)) {}
  LN_INLINE int64_t chunk(int64_t i) const { return std::min(i / m, k_n - 1); }
  LN_INLINE int64_t seg_end(int64_t k, int64_t i1) const {  // end of chunk k's part of [., i1)
    return k == k_n - 1 ? i1 : std::min(i1, (k + 1) * m);
  }
  // the partials of row (n, c), one per chunk the row meets (first: chunk(n * S))
  LN_INLINE ArgSlot* row_slots(int64_t n, int64_t ch) const { return slots + (n * c + ch) * nseg; }
  void reset_row(int64_t n, int64_t ch) const {
    ArgSlot* r = row_slots(n, ch);
    for (int64_t j = 0; j < nseg; ++j) r[j] = ArgSlot::none();
  }
  // The partials of the rows of each chunk, in stream order, into arg_max / arg_min (C, K_n).
  void combine(int64_t rows, int64_t* arg_max, int64_t* arg_min) const {
    const int64_t count = rows * s;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < k_n; ++k) {
        const int64_t i0 = k * m, i1 = seg_end(k, count);
        ArgSlot best = ArgSlot::none();
        for (int64_t n = i0 / s; n <= (i1 - 1) / s; ++n) {
          const ArgSlot& p = row_slots(n, ch)[k - chunk(n * s)];
          best.merge(p.kmax, p.imax, p.kmin, p.imin);
        }
        arg_max[ch * k_n + k] = best.imax;
        arg_min[ch * k_n + k] = best.imin;
      }
  }
};

// Per-lane max / min keys and their stream indices over a segment (lanes hold increasing
// indices: the strict comparisons keep each lane's first occurrence).
struct ArgVec {
  VI kmax, imax, kmin, imin;
  LN_INLINE void reset() {
    kmax = vi(INT32_MIN);
    kmin = vi(INT32_MAX);
    imax = imin = vi(INT32_MAX);
  }
  template <bool Masked> LN_INLINE void add(VF x, VI idx, VI ok) {  // ok: lanes to take
    VI b = (VI)x;
    b = b == kSignBit ? VI{} : b;
    const VI key = b ^ ((b >> 31) & kAbsMask);
    const VI nan = (b & kAbsMask) > kInfBits;
    VI kx = nan ? vi(INT32_MAX) : key, kn = nan ? vi(INT32_MIN) : key;
    if constexpr (Masked) {
      kx = ok ? kx : vi(INT32_MIN);
      kn = ok ? kn : vi(INT32_MAX);
    }
    const VI gt = kx > kmax;
    kmax = gt ? kx : kmax;
    imax = gt ? idx : imax;
    const VI lt = kn < kmin;
    kmin = lt ? kn : kmin;
    imin = lt ? idx : imin;
  }
  void fold(ArgSlot& p) const {
    for (int l = 0; l < kL; ++l) p.merge(kmax[l], imax[l], kmin[l], imin[l]);
  }
};

// A staged row r of stored values: positions [s0, s0 + len) of row (n, ch) into its partials.
void chunk_args_vec(const ChunkArgs& ca, const VF* r, int64_t n, int64_t ch, int64_t s0, int len) {
  const int64_t base = n * ca.s + s0;  // stream index of r[0] lane 0
  const int64_t k0 = ca.chunk(n * ca.s);
  ArgSlot* slot = ca.row_slots(n, ch);
  for (int64_t i0 = base, k = ca.chunk(base); i0 < base + len; ++k) {
    const int64_t i1 = ca.seg_end(k, base + len);
    const int q0 = static_cast<int>(i0 - base), q1 = static_cast<int>(i1 - base);
    ArgVec acc;
    acc.reset();
    const VI pos = iota();
    const VI idx0 = vi(static_cast<int32_t>(base)) + pos;
    // in stream order (each lane keeps its first occurrence): a partial vector at the start,
    // the whole vectors [ceil(q0 / kL), floor(q1 / kL)), a partial vector at the end
    const int vm0 = (q0 + kL - 1) / kL, vm1 = q1 / kL;
    const int ve0 = q0 / kL, ve1 = (q1 - 1) / kL;
    auto edge = [&](int v) {
      const VI p = pos + v * kL;
      acc.add<true>(r[v], idx0 + v * kL, (p >= q0) & (p < q1));
    };
    if (ve0 < vm0) edge(ve0);
    for (int v = vm0; v < vm1; ++v) acc.add<false>(r[v], idx0 + v * kL, VI{});
    if (ve1 >= vm1 && ve1 >= vm0) edge(ve1);  // (ve1 < vm0: the same vector as the start's)
    acc.fold(slot[k - k0]);
    i0 = i1;
  }
}

// The same for a float64 row of stored values (mode 1).
void chunk_args_f64(const ChunkArgs& ca, const double* r, int64_t n, int64_t ch, int64_t s0, int len) {
  const int64_t base = n * ca.s + s0;
  const int64_t k0 = ca.chunk(n * ca.s);
  ArgSlot* slot = ca.row_slots(n, ch);
  for (int64_t i0 = base, k = ca.chunk(base); i0 < base + len; ++k) {
    const int64_t i1 = ca.seg_end(k, base + len);
    ArgSlot p = ArgSlot::none();
    for (int64_t i = i0; i < i1; ++i) {
      const float x = static_cast<float>(r[i - base]);  // stored values are float32 values
      const bool nan = x != x;
      const int32_t key = nan ? 0 : arg_key(x);
      const int32_t kx = nan ? INT32_MAX : key, kn = nan ? INT32_MIN : key;
      if (kx > p.kmax) p.kmax = kx, p.imax = static_cast<int32_t>(i);
      if (kn < p.kmin) p.kmin = kn, p.imin = static_cast<int32_t>(i);
    }
    slot[k - k0].merge(p.kmax, p.imax, p.kmin, p.imin);
    i0 = i1;
  }
}

// bwd2 range_exact: fix(q, sign) at each position q of [s0, s0 + len) of row (n, ch) that is a
// chunk's arg-max (sign -1: t - corr) or arg-min (+1: t + corr), where the two differ.
template <class Fix>
LN_INLINE void at_chunk_args(const LnArgs& a, int64_t n, int64_t ch, int64_t s0, int len, Fix fix) {
  const ChunkArgs ca(a);
  const int64_t i0 = n * a.s + s0, i1 = i0 + len;
  const int64_t* amax = a.arg_max + ch * a.chunks;
  const int64_t* amin = a.arg_min + ch * a.chunks;
  for (int64_t k = ca.chunk(i0), k1 = ca.chunk(i1 - 1); k <= k1; ++k) {
    const int64_t ix = amax[k], in = amin[k];
    if (ix == in) continue;
    if (ix >= i0 && ix < i1) fix(static_cast<int>(ix - i0), -1);
    if (in >= i0 && in < i1) fix(static_cast<int>(in - i0), 1);
  }
}

// ---- the vector passes (modes 0, 2 and 3) ---------------------------------------------------------

// Rows of a block are staged in vector buffers (kNV vectors each, lanes past len zero), so the
// arithmetic loops run over whole vectors without branches; loads and stores of the tensors
// (float16 or float32, partial last vector) are separate tight loops.

LN_INLINE void stage(VF* dst, const void* src, bool half, int64_t off, int len) {
  const int nf = len / kL, rem = len - nf * kL;
  if (half) {
    const uint16_t* p = static_cast<const uint16_t*>(src) + off;
    for (int v = 0; v < nf; ++v) dst[v] = cvt_h(p + v * kL);
    if (rem) dst[nf] = ld_h(p + nf * kL, rem);
  } else {
    const float* p = static_cast<const float*>(src) + off;
    for (int v = 0; v < nf; ++v) dst[v] = *reinterpret_cast<const VFu*>(p + v * kL);
    if (rem) dst[nf] = ld_f32(p + nf * kL, rem);
  }
}

LN_INLINE void unstage(void* dst, bool half, int64_t off, const VF* src, int len) {
  const int nf = len / kL, rem = len - nf * kL;
  if (half) {
    uint16_t* p = static_cast<uint16_t*>(dst) + off;
    for (int v = 0; v < nf; ++v) cvt_store_h(p + v * kL, src[v]);
    if (rem) st_h(p + nf * kL, src[nf], rem);
  } else {
    float* p = static_cast<float*>(dst) + off;
    for (int v = 0; v < nf; ++v) *reinterpret_cast<VFu*>(p + v * kL) = src[v];
    if (rem) st_f32(p + nf * kL, src[nf], rem);
  }
}

// exact float64 row sum of a staged row (lanes past len excluded)
LN_INLINE double row_sum_f64(const VF* r, int len) {
  const int nf = len / kL, rem = len - nf * kL;
  SumRow acc;
  acc.reset();
  for (int v = 0; v < nf; ++v) acc.add(r[v]);
  if (rem) acc.add(masked(r[nf], rem));
  return acc.total();
}

// The next work item of this thread: the next one of its chunk, else the first of a new chunk
// from grab (false when none is left). Start with item = -1, end = 0.
template <class Grab> LN_INLINE bool next_item(Grab& grab, int64_t& item, int64_t& end) {
  if (++item < end) return true;
  int64_t i0 = 0, i1 = 0;
  if (!grab(i0, i1)) return false;
  item = i0;
  end = i1;
  return true;
}

// Store pass, before the rows (n, c0 .. c0 + gs - 1) of a work item: their row extrema and
// chunk arguments start empty.
LN_INLINE void reset_row_state(const LnArgs& a, int64_t n, int64_t c0, int gs) {
  if (a.pass != 0) return;
  if (a.extrema)
    for (int j = 0; j < gs; ++j) {
      a.ext_max[n * a.c + c0 + j] = -std::numeric_limits<double>::infinity();
      a.ext_min[n * a.c + c0 + j] = std::numeric_limits<double>::infinity();
    }
  if (a.chunks)
    for (int j = 0; j < gs; ++j) ChunkArgs(a).reset_row(n, c0 + j);
}

struct VBuf {  // per-thread buffers
  std::vector<VF> rows;  // g rows of kNV vectors
  std::vector<VF> t1;    // one row
  std::unique_ptr<BfpVec> bfp;
};

template <class P, int K> struct VPass {
  const LnArgs& a;
  QC qc, qg;
  int g;
  bool bfp_on;
  VBuf& b;

  VPass(const LnArgs& args, VBuf& buf) : a(args), b(buf) {
    qc = make_qc(a.fc, P::rne, a.fc.sat != 0);
    qg = make_qc(a.fg, P::rne, a.fg.sat != 0);
    bfp_on = a.bfp.enabled != 0;
    g = bfp_on ? a.bfp.g : 1;
    b.rows.resize(size_t(g) * kNV);
    b.t1.resize(kNV);
    if (bfp_on) {
      b.bfp.reset(new BfpVec);
      b.bfp->init(a.bfp);
    }
  }
  VF* row(int j) { return b.rows.data() + size_t(j) * kNV; }

  // rows [0, gs) hold values of f: gather them for BFP (if on)
  void gather_rows(int gs, int nv) {
    if (!bfp_on) return;
    BfpVec& bv = *b.bfp;
    bv.reset(nv);
    for (int j = 0; j < gs; ++j) {
      const VF* r = row(j);
      for (int v = 0; v < nv; ++v) bv.template gather<K == 2>(r[v], v);
    }
  }

  // BFP store/load of the gathered rows (values of f), then quantize unless the identity: the
  // rows hold the stored values.
  void bfp_rows(int gs, int nv, const QC& q) {
    if (!bfp_on) return;
    BfpVec& bv = *b.bfp;
    bv.template finish<K == 2>(nv, gs);
    for (int j = 0; j < gs; ++j) {
      VF* r = row(j);
      if (bv.keeps)
        for_packs(nv, [&](int v, auto uc) {
          constexpr int U = decltype(uc)::value;
          stp(r + v, bv.template apply<P, K == 2, U>(ldp<U>(r + v), v));
        });
      else
        for_packs(nv, [&](int v, auto uc) {
          constexpr int U = decltype(uc)::value;
          stp(r + v, pq<P, K>(bv.template apply<P, K == 2, U>(ldp<U>(r + v), v), q));
        });
    }
  }

  // rows [0, gs) = quantize(raw float32 input in0), then BFP (stored(v, f))
  void stage_stored(int64_t n, int64_t c0, int gs, int64_t s0, int len, const QC& q) {
    const int nv = (len + kL - 1) / kL;
    for (int j = 0; j < gs; ++j) {
      VF* r = row(j);
      stage(r, a.in0, false, ((n * a.c + c0 + j) * a.s) + s0, len);
      for_packs(nv, [&](int v, auto uc) {
        constexpr int U = decltype(uc)::value;
        stp(r + v, pq<P, K>(ldp<U>(r + v), q));
      });
    }
    gather_rows(gs, nv);
    bfp_rows(gs, nv, q);
  }

  void sum_row(const VF* vals, int len, int64_t row, double* sums, int64_t* limbs) {
    if (a.sum_kind == 1)
      sums[row] += row_sum_f64(vals, len);
    else if (a.sum_kind == 2)
      add_limbs_f32(reinterpret_cast<const float*>(vals), len, a.fs.emin - a.fs.man,
                    limbs + row * a.nlimbs, sums + row);
  }

  // Software prefetch of a block's rows (inputs, and the output lines to be written): the rows
  // of a channel group are short strided segments, which the hardware prefetchers do not
  // follow; without this the passes wait on DRAM latency (measured: about half their time).
  static LN_INLINE void prefetch_rows(const void* base, int esize, int64_t off, int64_t stride, int rows,
                                      int len, bool write) {
    const char* p0 = static_cast<const char*>(base) + off * esize;
    const int64_t bytes = int64_t{len} * esize;
    for (int j = 0; j < rows; ++j) {
      const char* p = p0 + j * stride * esize;
      for (int64_t o = 0; o < bytes; o += 64) {
        if (write)
          __builtin_prefetch(p + o, 1, 3);
        else
          __builtin_prefetch(p + o, 0, 3);
      }
    }
  }
  void prefetch_block(int64_t n, int64_t c0, int gs, int64_t s0) {
    const int len = static_cast<int>(std::min<int64_t>(kVBlock, a.s - s0));
    const int64_t off = (n * a.c + c0) * a.s + s0;
    const int e0 = (a.pass == 0 || a.pass == 3 || (a.pass == 2 && a.mode == 1)) ? 4 : (a.in0_half ? 2 : 4);
    prefetch_rows(a.in0, e0, off, a.s, gs, len, false);
    if (a.pass == 3 || (a.pass == 4 && a.mode == 0))
      prefetch_rows(a.in1, a.in1_half ? 2 : 4, off, a.s, gs, len, false);
    if (a.pass != 1)
      prefetch_rows(a.out0, ((a.pass == 0 || a.pass == 3) && a.out_half) ? 2 : 4, off, a.s, gs, len, true);
  }

  template <class Grab> void items(int64_t groups, Grab& grab) {
    for (int64_t item = -1, end = 0; next_item(grab, item, end);) {
      const int64_t n = item / groups;
      const int64_t c0 = (item % groups) * g;
      const int gs = static_cast<int>(std::min<int64_t>(g, a.c - c0));
      reset_row_state(a, n, c0, gs);
      for (int64_t s0 = 0; s0 < a.s; s0 += kVBlock) {
        const int len = static_cast<int>(std::min<int64_t>(kVBlock, a.s - s0));
        // the next block of this chunk: its rows are fetched while this one is computed
        if (s0 + kVBlock < a.s) {
          prefetch_block(n, c0, gs, s0 + kVBlock);
        } else if (item + 1 < end) {
          const int64_t c1 = ((item + 1) % groups) * g;
          prefetch_block((item + 1) / groups, c1, static_cast<int>(std::min<int64_t>(g, a.c - c1)), 0);
        }
        switch (a.pass) {
          case 0: store(n, c0, gs, s0, len); break;
          case 1: var(n, c0, gs, s0, len); break;
          case 2: norm(n, c0, gs, s0, len); break;
          case 3: bwd1(n, c0, gs, s0, len); break;
          default: bwd2(n, c0, gs, s0, len); break;
        }
      }
    }
  }

  // F1 / B1-forward: stored(v, fc) (+ row sums, row extrema, chunk arg-max / arg-min partials)
  void store(int64_t n, int64_t c0, int gs, int64_t s0, int len) {
    stage_stored(n, c0, gs, s0, len, qc);
    const int nf = len / kL, rem = len - nf * kL;
    for (int j = 0; j < gs; ++j) {
      const int64_t rw = n * a.c + c0 + j;
      const VF* r = row(j);
      unstage(a.out0, a.out_half, rw * a.s + s0, r, len);
      sum_row(r, len, rw, a.sum0, a.limb0);
      if (a.extrema) {
        ExtRow ext;
        ext.reset();
        for (int v = 0; v < nf; ++v) ext.add(r[v], kL);
        if (rem) ext.add(r[nf], rem);
        ext.fold(a.ext_max + rw, a.ext_min + rw);
      }
      if (a.chunks) chunk_args_vec(ChunkArgs(a), r, n, c0 + j, s0, len);
    }
  }

  // F2 variance: q = mul(sub(x, mu), same) -> row sums
  void var(int64_t n, int64_t c0, int gs, int64_t s0, int len) {
    const int nv = (len + kL - 1) / kL;
    VF* r = b.t1.data();
    for (int j = 0; j < gs; ++j) {
      const int64_t c = c0 + j, rw = n * a.c + c;
      const VF mu = vf(static_cast<float>(a.v0[c]));
      stage(r, a.in0, a.in0_half, rw * a.s + s0, len);
      for_packs(nv, [&](int v, auto uc) {
        constexpr int U = decltype(uc)::value;
        const Pk<U> d = psub<P, K>(ldp<U>(r + v), mu, qc);
        stp(r + v, pmul<P, K>(d, d, qc));
      });
      sum_row(r, len, rw, a.sum0, a.limb0);
    }
  }

  // F5 / I3: y = stored(add(mul(sub(x, mu), a), beta)) (raw input: x = stored(x) first)
  void norm(int64_t n, int64_t c0, int gs, int64_t s0, int len) {
    const int nv = (len + kL - 1) / kL;
    if (a.mode == 1) stage_stored(n, c0, gs, s0, len, qc);
    for (int j = 0; j < gs; ++j) {
      const int64_t c = c0 + j;
      const VF mu = vf(static_cast<float>(a.v0[c])), co = vf(static_cast<float>(a.v1[c]));
      const VF be = vf(static_cast<float>(a.v2[c]));
      VF* r = row(j);
      if (a.mode != 1) stage(r, a.in0, a.in0_half, ((n * a.c + c) * a.s) + s0, len);
      for_packs(nv, [&](int v, auto uc) {
        constexpr int U = decltype(uc)::value;
        stp(r + v, padd<P, K>(pmul<P, K>(psub<P, K>(ldp<U>(r + v), mu, qc), co, qc), be, qc));
      });
    }
    gather_rows(gs, nv);
    bfp_rows(gs, nv, qc);
    for (int j = 0; j < gs; ++j) unstage(a.out0, false, ((n * a.c + c0 + j) * a.s) + s0, row(j), len);
  }

  // B1: dy_c = stored(dy, fg); x_hat = mul(sub(x_c, mu), s); p = mul(dy_c, x_hat) -> sums
  void bwd1(int64_t n, int64_t c0, int gs, int64_t s0, int len) {
    const int nv = (len + kL - 1) / kL;
    stage_stored(n, c0, gs, s0, len, qg);
    VF* t = b.t1.data();
    for (int j = 0; j < gs; ++j) {
      const int64_t c = c0 + j, rw = n * a.c + c;
      const int64_t off = rw * a.s + s0;
      const VF mu = vf(static_cast<float>(a.v0[c])), sc = vf(static_cast<float>(a.v1[c]));
      const VF* r = row(j);
      stage(t, a.in1, a.in1_half, off, len);
      for_packs(nv, [&](int v, auto uc) {
        constexpr int U = decltype(uc)::value;
        const Pk<U> xh = pmul<P, K>(psub<P, K>(ldp<U>(t + v), mu, qc), sc, qc);
        stp(t + v, pmul<P, K>(ldp<U>(r + v), xh, qg));
      });
      unstage(a.out0, a.out_half, off, r, len);
      sum_row(r, len, rw, a.sum0, a.limb0);
      sum_row(t, len, rw, a.sum1, a.limb1);
    }
  }

  // B4: dx = stored(...) per mode (bn, range_exact, eval)
  void bwd2(int64_t n, int64_t c0, int gs, int64_t s0, int len) {
    const int nv = (len + kL - 1) / kL;
    VF* t = b.t1.data();
    for (int j = 0; j < gs; ++j) {
      const int64_t c = c0 + j;
      const int64_t off = ((n * a.c + c) * a.s) + s0;
      const VF kb = vf(static_cast<float>(a.v3[c])), co = vf(static_cast<float>(a.v5[c]));
      VF* r = row(j);
      stage(r, a.in0, a.in0_half, off, len);  // dy_c
      if (a.mode == 2) {  // eval: dx = mul(dy, a)
        for_packs(nv, [&](int v, auto uc) {
          constexpr int U = decltype(uc)::value;
          stp(r + v, pmul<P, K>(ldp<U>(r + v), co, qg));
        });
      } else if (a.mode == 0) {  // bn
        const VF mu = vf(static_cast<float>(a.v0[c])), sc = vf(static_cast<float>(a.v1[c]));
        const VF kg = vf(static_cast<float>(a.v4[c]));
        stage(t, a.in1, a.in1_half, off, len);  // x_c
        for_packs(nv, [&](int v, auto uc) {
          constexpr int U = decltype(uc)::value;
          const Pk<U> xh = pmul<P, K>(psub<P, K>(ldp<U>(t + v), mu, qc), sc, qc);
          const Pk<U> centered = psub<P, K>(ldp<U>(r + v), kb, qg);
          const Pk<U> inner = psub<P, K>(centered, pmul<P, K>(xh, kg, qg), qg);
          stp(r + v, pmul<P, K>(inner, co, qg));
        });
      } else {  // range_exact: t, and t -+ corr at the chunk arg-max / arg-min
        const VF corr = vf(static_cast<float>(a.v2[c]));
        for_packs(nv, [&](int v, auto uc) {
          constexpr int U = decltype(uc)::value;
          stp(r + v, pmul<P, K>(psub<P, K>(ldp<U>(r + v), kb, qg), co, qg));
        });
        // sub(t, corr) = add(t, -corr): the one lane of the vector holding that element
        at_chunk_args(a, n, c, s0, len, [&](int q, int sign) {
          VF& x = r[q / kL];
          x = iota() == q % kL ? vadd<P, K>(x, sign < 0 ? -corr : corr, qg) : x;
        });
      }
    }
    gather_rows(gs, nv);
    bfp_rows(gs, nv, qg);
    for (int j = 0; j < gs; ++j) unstage(a.out0, false, ((n * a.c + c0 + j) * a.s) + s0, row(j), len);
  }
};

// ---- the float64 passes (mode 1) ---------------------------------------------------------------

// dst[0, len) = the stored row at element offset off (float16 if half, else float32)
void load_row(double* dst, const void* src, int64_t off, int len, bool half) {
  if (half) {
    const uint16_t* h = static_cast<const uint16_t*>(src) + off;
    for (int i = 0; i < len; ++i) dst[i] = static_cast<double>(__builtin_bit_cast(_Float16, h[i]));
  } else {
    const float* f = static_cast<const float*>(src) + off;
    for (int i = 0; i < len; ++i) dst[i] = static_cast<double>(f[i]);
  }
}

// out[i] = op(i) rounded to f, one operator over a row (out must not be an operand).
template <class Full> LN_INLINE void row_op(double* out, int len, Full full) {
  for (int i = 0; i < len; ++i) out[i] = full(i);
}
template <class P> void quant_arr(const double* in, double* out, int len, const Fmt& f) {
  row_op(out, len, [&](int i) { return quant<P>(in[i], f); });
}
template <class P> LN_INLINE void add_rc(const double* a, double b, double* out, int len, const Fmt& f) {
  row_op(out, len, [&](int i) { return add<P>(a[i], b, f); });
}
template <class P> LN_INLINE void sub_rc(const double* a, double b, double* out, int len, const Fmt& f) {
  add_rc<P>(a, -b, out, len, f);
}
template <class P> LN_INLINE void mul_rc(const double* a, double b, double* out, int len, const Fmt& f) {
  row_op(out, len, [&](int i) { return mul<P>(a[i], b, f); });
}
template <class P> LN_INLINE void sub_rr(const double* a, const double* b, double* out, int len, const Fmt& f) {
  row_op(out, len, [&](int i) { return sub<P>(a[i], b[i], f); });
}
template <class P> LN_INLINE void mul_rr(const double* a, const double* b, double* out, int len, const Fmt& f) {
  row_op(out, len, [&](int i) { return mul<P>(a[i], b[i], f); });
}

// BFP on a block buffer (spec section 5; lightnorm/torch/ops.py _bfp_grouped), float64.
// buf[j * kBlock + i]: channel j of the group (gs channels), position i of the block (len).
// rounded: the values are already values of f. Applies quantize (unless rounded), the BFP
// store/load, and the last quantize unless it is the identity (keeps).
template <class P>
void storage_block(double* buf, int gs, int len, const Fmt& f, const Bfp& b, bool rounded, double* tmp) {
  using T = double;
  if (!rounded)
    for (int j = 0; j < gs; ++j) {
      T* r = buf + j * kBlock;
      std::memcpy(tmp, r, sizeof(T) * len);
      quant_arr<P>(tmp, r, len, f);
    }
  if (!b.enabled) return;
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T mant_max = static_cast<T>((1 << b.mb) - 1);
  alignas(64) int sh[kBlock];
  if (b.second_max) {
    constexpr int kNoExp = -(1 << 20);
    alignas(64) int first[kBlock], second[kBlock];
    for (int i = 0; i < len; ++i) first[i] = second[i] = kNoExp;
    for (int j = 0; j < gs; ++j) {
      const T* r = buf + j * kBlock;
      for (int i = 0; i < len; ++i) {
        const T a = std::fabs(r[i]);
        const int e = ((a != 0) & std::isfinite(a)) ? ilogb_bits(a) : kNoExp;
        const int hi = std::max(first[i], e), lo = std::min(first[i], e);
        first[i] = hi;
        second[i] = std::max(second[i], lo);
      }
    }
    for (int i = 0; i < len; ++i) {
      int shared = gs == 1 ? first[i] : (second[i] == kNoExp ? first[i] : second[i]);
      shared = shared == kNoExp ? b.e_lo : clampi(shared, b.e_lo, b.e_hi);
      sh[i] = shared - (b.mb - 1);
    }
    for (int j = 0; j < gs; ++j) {
      T* r = buf + j * kBlock;
      for (int i = 0; i < len; ++i) {
        const T v = r[i];
        const T a = std::fabs(v);
        const int e = ((a != 0) & std::isfinite(a)) ? ilogb_bits(a) : kNoExp;
        const T sc = a * pow2<T>(-sh[i]);
        const T m = std::min(rnd<P>(sc), mant_max);
        const T val = std::copysign(m * pow2<T>(sh[i]), v);
        r[i] = ((e > sh[i] + (b.mb - 1)) | !std::isfinite(v)) ? v : val;
      }
    }
  } else {
    alignas(64) T gmax[kBlock];
    for (int i = 0; i < len; ++i) gmax[i] = 0;
    for (int j = 0; j < gs; ++j) {
      const T* r = buf + j * kBlock;
      for (int i = 0; i < len; ++i) {
        const T a = std::fabs(r[i]);
        gmax[i] = ((a > gmax[i]) | (a != a)) ? a : gmax[i];  // NaN sticks
      }
    }
    alignas(64) int special[kBlock];
    for (int i = 0; i < len; ++i) {
      const T gm = gmax[i];
      special[i] = !std::isfinite(gm);
      const int top = clampi(ilogb_bits(gm), b.e_lo, b.e_hi);
      const T l = gm * pow2<T>((b.mb - 1) - top);
      const T lead = rnd<P>(l);
      const int up = top + (lead >= static_cast<T>(1 << b.mb) ? 1 : 0);
      const int shared = special[i] ? b.e_lo : std::min(up, b.e_hi);  // up >= top >= e_lo
      sh[i] = shared - (b.mb - 1);
    }
    for (int j = 0; j < gs; ++j) {
      T* r = buf + j * kBlock;
      for (int i = 0; i < len; ++i) {
        const T v = r[i];
        const T sc = std::fabs(v) * pow2<T>(-sh[i]);
        const T m = std::min(rnd<P>(sc), mant_max);
        const T val = std::copysign(m * pow2<T>(sh[i]), v);
        r[i] = special[i] ? (std::fabs(v) == inf ? v : nan) : val;
      }
    }
  }
  if (!b.keeps)
    for (int j = 0; j < gs; ++j) {
      T* r = buf + j * kBlock;
      std::memcpy(tmp, r, sizeof(T) * len);
      quant_arr<P>(tmp, r, len, f);
    }
}

void sum_out(const LnArgs& a, const Fmt& fs, const double* v, int len, int64_t row, double* sums,
             int64_t* limbs) {
  if (a.sum_kind == 1) {
    VD acc = {};
    int i = 0;
    for (; i + kL / 2 <= len; i += kL / 2) {
      VD x;
      std::memcpy(&x, v + i, sizeof x);
      acc += x;
    }
    double s = 0.0;
    for (int l = 0; l < kL / 2; ++l) s += acc[l];
    for (; i < len; ++i) s += v[i];
    sums[row] += s;
  } else if (a.sum_kind == 2) {
    alignas(64) float f[kBlock];  // values of formats up to FP32: exact float32 values
    for (int i = 0; i < len; ++i) f[i] = static_cast<float>(v[i]);
    add_limbs_f32(f, len, fs.emin - fs.man, limbs + row * a.nlimbs, sums + row);
  }
}

void row_extrema(const double* v, int len, double* mx, double* mn) {
  double h = *mx, m = *mn;
  bool nan = (h != h) | (m != m);
  for (int i = 0; i < len; ++i) {
    const double x = v[i];
    h = x > h ? x : h;
    m = x < m ? x : m;
    nan |= x != x;
  }
  *mx = nan ? std::numeric_limits<double>::quiet_NaN() : h;
  *mn = nan ? std::numeric_limits<double>::quiet_NaN() : m;
}

void store_out(void* out, int64_t off, const double* v, int len, bool half) {
  if (half) {
    uint16_t* o = static_cast<uint16_t*>(out) + off;
    for (int i = 0; i < len; ++i) o[i] = __builtin_bit_cast(uint16_t, static_cast<_Float16>(v[i]));
  } else {
    float* o = static_cast<float*>(out) + off;
    for (int i = 0; i < len; ++i) o[i] = static_cast<float>(v[i]);
  }
}

template <class P, class Grab> void run_items_f64(const LnArgs& a, int64_t groups, Grab& grab) {
  using T = double;
  // Local copies: stores to the buffers cannot alias them.
  const Fmt fc = a.fc, fg = a.fg, fs = a.fs;
  const Bfp bfp = a.bfp;
  const bool h0 = a.in0_half != 0, h1 = a.in1_half != 0;
  const int g = bfp.enabled ? bfp.g : 1;
  // b0: the group's rows (the pass's main values), b2: a second row per channel, t0..t2: scratch
  std::vector<T> buf0(size_t(g) * kBlock), buf2(size_t(g) * kBlock), scratch(3 * kBlock);
  T* b0 = buf0.data();
  T* b2 = buf2.data();
  T* t0 = scratch.data();
  T* t1 = t0 + kBlock;
  T* t2 = t1 + kBlock;
  for (int64_t item = -1, end = 0; next_item(grab, item, end);) {
    const int64_t n = item / groups;
    const int64_t c0 = (item % groups) * g;
    const int gs = static_cast<int>(std::min<int64_t>(g, a.c - c0));
    reset_row_state(a, n, c0, gs);
    for (int64_t s0 = 0; s0 < a.s; s0 += kBlock) {
      const int len = static_cast<int>(std::min<int64_t>(kBlock, a.s - s0));
      for (int j = 0; j < gs; ++j) {
        const int64_t c = c0 + j;
        const int64_t row = n * a.c + c;
        const int64_t off = row * a.s + s0;
        T* r0 = b0 + j * kBlock;
        T* r2 = b2 + j * kBlock;
        switch (a.pass) {
          case 0:  // store: v (rounded and stored below)
          case 3:  // bwd1: dy (rounded and stored below)
            load_row(r0, a.in0, off, len, false);
            break;
          case 1: {  // var: d = sub(x, mu); q = mul(d, d) -> sums
            load_row(t1, a.in0, off, len, h0);
            sub_rc<P>(t1, a.v0[c], t2, len, fc);
            mul_rr<P>(t2, t2, r0, len, fc);
            sum_out(a, fs, r0, len, row, a.sum0, a.limb0);
            break;
          }
          case 2:  // norm: the input (raw: stored below first)
            load_row(r0, a.in0, off, len, a.mode == 1 ? false : h0);
            break;
          default: {  // bwd2: dx_c per mode (stored below, rounded)
            const T kb = a.v3[c], coeff = a.v5[c];
            load_row(t1, a.in0, off, len, h0);  // dy_c
            if (a.mode == 2) {  // eval: dx = mul(dy, a)
              mul_rc<P>(t1, coeff, r0, len, fg);
            } else if (a.mode == 0) {  // bn
              load_row(t2, a.in1, off, len, h1);  // x_c
              sub_rc<P>(t2, a.v0[c], r2, len, fc);
              mul_rc<P>(r2, a.v1[c], t2, len, fc);  // x_hat
              sub_rc<P>(t1, kb, r2, len, fg);        // centered
              mul_rc<P>(t2, a.v4[c], t1, len, fg);  // x_hat * k_gamma
              sub_rr<P>(r2, t1, t2, len, fg);        // inner
              mul_rc<P>(t2, coeff, r0, len, fg);
            } else {  // range_exact: t, and t -+ corr at the chunk arg-max / arg-min
              const T corr = a.v2[c];
              sub_rc<P>(t1, kb, t2, len, fg);
              mul_rc<P>(t2, coeff, r0, len, fg);  // t
              at_chunk_args(a, n, c, s0, len, [&](int q, int sign) {
                r0[q] = add<P>(r0[q], sign < 0 ? -corr : corr, fg);  // sub(t, corr) = add(t, -corr)
              });
            }
            break;
          }
        }
      }
      if (a.pass == 1) continue;
      // the block's group operation(s) and outputs
      if (a.pass == 0) {
        storage_block<P>(b0, gs, len, fc, bfp, false, t0);
        for (int j = 0; j < gs; ++j) {
          const int64_t row = n * a.c + c0 + j;
          const T* r0 = b0 + j * kBlock;
          store_out(a.out0, row * a.s + s0, r0, len, a.out_half);
          sum_out(a, fs, r0, len, row, a.sum0, a.limb0);
          if (a.extrema) row_extrema(r0, len, a.ext_max + row, a.ext_min + row);
          if (a.chunks) chunk_args_f64(ChunkArgs(a), r0, n, c0 + j, s0, len);
        }
      } else if (a.pass == 2) {
        if (a.mode == 1) storage_block<P>(b0, gs, len, fc, bfp, false, t0);
        for (int j = 0; j < gs; ++j) {
          const int64_t c = c0 + j;
          T* r0 = b0 + j * kBlock;
          sub_rc<P>(r0, a.v0[c], t1, len, fc);
          mul_rc<P>(t1, a.v1[c], t2, len, fc);
          add_rc<P>(t2, a.v2[c], r0, len, fc);
        }
        storage_block<P>(b0, gs, len, fc, bfp, true, t0);
        for (int j = 0; j < gs; ++j)
          store_out(a.out0, (n * a.c + c0 + j) * a.s + s0, b0 + j * kBlock, len, false);
      } else if (a.pass == 3) {
        storage_block<P>(b0, gs, len, fg, bfp, false, t0);
        for (int j = 0; j < gs; ++j) {
          const int64_t c = c0 + j;
          const int64_t row = n * a.c + c;
          const int64_t off = row * a.s + s0;
          const T* r0 = b0 + j * kBlock;
          T* r2 = b2 + j * kBlock;
          load_row(t1, a.in1, off, len, h1);
          sub_rc<P>(t1, a.v0[c], t2, len, fc);
          mul_rc<P>(t2, a.v1[c], t1, len, fc);  // x_hat
          mul_rr<P>(r0, t1, r2, len, fg);        // dy_c * x_hat
          store_out(a.out0, off, r0, len, a.out_half);
          sum_out(a, fs, r0, len, row, a.sum0, a.limb0);
          sum_out(a, fs, r2, len, row, a.sum1, a.limb1);
        }
      } else {
        storage_block<P>(b0, gs, len, fg, bfp, true, t0);
        for (int j = 0; j < gs; ++j)
          store_out(a.out0, (n * a.c + c0 + j) * a.s + s0, b0 + j * kBlock, len, false);
      }
    }
  }
}

// ---- dispatch -----------------------------------------------------------------------------------

// The passes need the default floating-point environment: round to nearest, and no
// flush-to-zero / denormals-are-zero (subnormal FP32 values in mode 2, Veltkamp-free rounding).
struct FpEnv {
#if defined(__SSE__)
  unsigned saved;
  FpEnv() : saved(_mm_getcsr()) { _mm_setcsr((saved & ~0xE040u) | 0x1F80u); }
  ~FpEnv() { _mm_setcsr(saved); }
#endif
};

// Work items (n, channel group) are handed out in chunks, first come first served: a thread
// that is slowed down (a shared machine) does less, instead of holding up the pass.
template <class F> int run(const LnArgs& a, F body) {
  const int g = a.bfp.enabled ? a.bfp.g : 1;
  const int64_t groups = (a.c + g - 1) / g;
  const int64_t items = a.n * groups;
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(a.nthreads, items)));
  const int64_t chunk = std::max<int64_t>(1, items / (int64_t{nt} * 16));
  std::atomic<int64_t> next{0};
  auto grab = [&](int64_t& i0, int64_t& i1) {
    i0 = next.fetch_add(chunk, std::memory_order_relaxed);
    i1 = std::min(i0 + chunk, items);
    return i0 < items;
  };
  // OpenMP: the library links libgomp.so.1, which resolves to the copy torch already loaded, so
  // these are torch's own worker threads (a second thread pool would compete with torch's
  // spinning workers for the cores).
#pragma omp parallel num_threads(nt)
  {
    FpEnv env;
    body(groups, grab);
  }
  return 0;
}

template <class P, int K> int run_vec(const LnArgs& a) {
  return run(a, [&](int64_t groups, auto& grab) {
    VBuf buf;
    VPass<P, K> pass(a, buf);
    pass.items(groups, grab);
  });
}

template <class P> int run_f64(const LnArgs& a) {
  return run(a, [&](int64_t groups, auto& grab) { run_items_f64<P>(a, groups, grab); });
}

template <class P> int run_arith(const LnArgs& a) {
  using PV = Pol<P::rne, false>;  // the vector passes take the overflow policy from constants
  if (a.arith == 1) return run_f64<P>(a);
  if constexpr (P::sat) {
    return -4;  // not reached: lightnorm_native_pass dispatches the vector passes here
  } else {
    if (a.arith == 0) return run_vec<PV, 0>(a);
    if (a.arith == 3) return run_vec<PV, 3>(a);
    // binary32 under truncation: the store pass only (no add / mul; native.py _binary32)
    if (a.arith == 2 && (P::rne || a.pass == 0)) return run_vec<PV, 2>(a);
    return -4;
  }
}

}  // namespace

// ---- per-channel primitives (float64 arrays of C values) ------------------------------------

constexpr double kSplit = 134217729.0;  // 2^27 + 1, Dekker's splitter

LN_INLINE double two_prod_err(double a, double b, double p) {  // a*b - p exactly (finite)
  const double ca = a * kSplit, cb = b * kSplit;
  const double ah = ca - (ca - a), al = a - ah;
  const double bh = cb - (cb - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

// round(c * s) once of an exact float64 sum s (lightnorm/torch/channel.py _round_sum)
template <class P> LN_INLINE double round_sum(double s, double c, const Fmt& f) {
  const double prod = s * c;
  const bool fin = std::isfinite(prod);
  const double err = fin ? two_prod_err(s, c, prod) : 0.0;
  double out = round_with_error<P>(prod, err, f);
  out = std::isfinite(s) ? out : quant<P>(prod, f);
  return (std::isfinite(s) && c == 0.0) ? 0.0 : out;
}

// rsqrt(v, f): round(1 / sqrt(v)) once (lightnorm/torch/channel.py _rsqrt: the side of a nearby
// breakpoint B is decided by the exact sign of B^2 v - 1)
template <class P> LN_INLINE double rsqrt(double v, const Fmt& f) {
  double r = 1.0 / std::sqrt(v);
  const bool ok = std::isfinite(r) && r > 0.0;
  const double rs = ok ? r : 1.0;
  const int k = clampi(ilogb_bits(rs), f.emin, f.emax + 1) - (f.man + 1);
  const double bp = std::rint(rs * pow2<double>(-k)) * pow2<double>(k);
  const double b2 = bp * bp;
  const double vs = ok ? v : 1.0;
  const double prod = b2 * vs;
  const double t = (prod - 1.0) + two_prod_err(b2, vs, prod);
  const bool near = ok && std::fabs(rs - bp) <= rs * 0x1p-50;
  const int64_t step = t < 0.0 ? 1 : -1;
  const double nudged = t == 0.0 ? bp : __builtin_bit_cast(double, __builtin_bit_cast(int64_t, bp) + step);
  r = near ? nudged : r;
  return quant<P>(v == 0.0 ? std::numeric_limits<double>::infinity() : r, f);
}

template <class P> int prim(int op, int64_t n, const double* a, const double* b, double* out,
                            const Fmt& f) {
  switch (op) {
    case 0:
      for (int64_t i = 0; i < n; ++i) out[i] = quant<P>(a[i], f);
      return 0;
    case 1:
      for (int64_t i = 0; i < n; ++i) out[i] = add<P>(a[i], b[i], f);
      return 0;
    case 2:
      for (int64_t i = 0; i < n; ++i) out[i] = mul<P>(a[i], b[i], f);
      return 0;
    case 3:
      for (int64_t i = 0; i < n; ++i) out[i] = round_sum<P>(a[i], b[i], f);
      return 0;
    case 4:
      for (int64_t i = 0; i < n; ++i) out[i] = quant<P>(1.0 / a[i], f);
      return 0;
    case 5:
      for (int64_t i = 0; i < n; ++i) out[i] = rsqrt<P>(a[i], f);
      return 0;
    default:
      return -1;
  }
}

// ---- exact wide accumulators: combine limb rows and round once per channel -----------------------

namespace {

constexpr int kMaxWords = 64;

// the bit at position pos of the magnitude w (little-endian 32-bit words)
LN_INLINE int bit_at(const uint32_t* w, int nw, int pos) {
  return (pos >= 0 && (pos >> 5) < nw) ? int((w[pos >> 5] >> (pos & 31)) & 1u) : 0;
}

// bits [pos, pos + count) of w, count <= 64, as an integer (positions < 0 are zero)
uint64_t bits_at(const uint32_t* w, int nw, int pos, int count) {
  uint64_t r = 0;
  for (int i = 0; i < count; ++i) r |= static_cast<uint64_t>(bit_at(w, nw, pos + i)) << i;
  return r;
}

bool any_below(const uint32_t* w, int nw, int pos) {  // any bit set at positions < pos
  for (int i = 0; i < nw && 32 * i < pos; ++i) {
    const int top = pos - 32 * i;  // bits [0, top) of word i
    const uint32_t m = top >= 32 ? 0xFFFFFFFFu : ((1u << top) - 1u);
    if (w[i] & m) return true;
  }
  return false;
}

// arith.round_scaled_int(mag * 2^exp2 with sign neg) to f, rounding/overflow of f.
double round_scaled_words(const uint32_t* mag, int nw, bool neg, int exp2, const Fmt& f) {
  int top = -1;
  for (int i = nw - 1; i >= 0 && top < 0; --i)
    if (mag[i]) top = 32 * i + 31 - __builtin_clz(mag[i]);
  if (top < 0) return 0.0;
  const int e = top + exp2;
  const int e_res = std::max(e, f.emin) - f.man;
  const int shift = e_res - exp2;
  uint64_t q;
  if (shift <= 0) {
    q = bits_at(mag, nw, 0, 64) << -shift;  // mag < 2^(M + 1) here
  } else {
    q = bits_at(mag, nw, shift, 60);
    if (f.rne && bit_at(mag, nw, shift - 1) && (any_below(mag, nw, shift - 1) || (q & 1u))) q += 1;
  }
  double value = std::ldexp(static_cast<double>(q), e_res);
  if (value > f.maxn) value = (f.sat || !f.rne) ? f.maxn : std::numeric_limits<double>::infinity();
  return neg ? -value : value;
}

double quant_any(double x, const Fmt& f) {
  if (f.rne) return f.sat ? quant<Pol<true, true>>(x, f) : quant<Pol<true, false>>(x, f);
  return f.sat ? quant<Pol<false, true>>(x, f) : quant<Pol<false, false>>(x, f);
}

}  // namespace

// ---- entry points --------------------------------------------------------------------------------

namespace {

// Mode 3 takes the per-channel scalars as float32: true when every one the pass uses is a
// float32 value (values of a format up to FP32 are; NaN too), else the pass runs in float64.
bool scalars_f32(const LnArgs& a) {
  const double* used[6] = {};
  int nu = 0;
  switch (a.pass) {
    case 1: used[nu++] = a.v0; break;
    case 2: used[nu++] = a.v0, used[nu++] = a.v1, used[nu++] = a.v2; break;
    case 3: used[nu++] = a.v0, used[nu++] = a.v1; break;
    case 4:
      if (a.mode == 0) used[nu++] = a.v0, used[nu++] = a.v1, used[nu++] = a.v3, used[nu++] = a.v4;
      if (a.mode == 1) used[nu++] = a.v2, used[nu++] = a.v3;
      used[nu++] = a.v5;
      break;
    default: break;
  }
  for (int k = 0; k < nu; ++k) {
    if (used[k] == nullptr) return false;
    for (int64_t c = 0; c < a.c; ++c) {
      const double v = used[k][c];
      if (static_cast<double>(static_cast<float>(v)) != v && v == v) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int lightnorm_native_pass(const LnArgs* a) {
  if (a->pass < 0 || a->pass > 4) return -1;
  if (a->bfp.enabled && (a->bfp.g < 1 || a->bfp.g > 4096)) return -2;
  // one rounding and one overflow policy per pass (the configuration's)
  if (a->fg.rne != a->fc.rne || a->fg.sat != a->fc.sat || a->fs.rne != a->fc.rne ||
      (a->bfp.enabled && a->bfp.rne != a->fc.rne))
    return -3;
  if (a->sum_kind == 2 && a->nlimbs < 3) return -5;
  LnArgs args = *a;
  // chunk arg-max / arg-min: outputs of the store pass (chunks > 0), inputs of bwd2 range_exact
  const bool args_out = args.pass == 0 && args.chunks > 0;
  const bool args_in = args.pass == 4 && args.mode == 1;
  if (!args_out && !args_in) args.chunks = 0;
  if (args_out || args_in) {
    const int64_t count = args.n * args.s;
    if (args.chunks < 1 || args.chunk_len < 1 || args.chunks * args.chunk_len > count ||
        count >= (int64_t{1} << 31) || args.arg_max == nullptr || args.arg_min == nullptr)
      return -6;
  }
  std::unique_ptr<ArgSlot[]> slots;
  if (args_out) {
    // partials per (n, c) row: as many as the chunks one row meets at most
    const ChunkArgs ca(args);
    int64_t nseg = 1;
    for (int64_t n = 0; n < args.n; ++n)
      nseg = std::max(nseg, ca.chunk((n + 1) * args.s - 1) - ca.chunk(n * args.s) + 1);
    slots.reset(new ArgSlot[static_cast<size_t>(args.n * args.c * nseg)]);
    args.arg_slots = slots.get();
    args.arg_nseg = nseg;
  }
  if (args.arith == 3 && !scalars_f32(args)) args.arith = 1;
  const bool sat = args.fc.sat && args.arith == 1;  // vector passes: the policy is in the constants
  int rc;
  if (args.fc.rne)
    rc = sat ? run_arith<Pol<true, true>>(args) : run_arith<Pol<true, false>>(args);
  else
    rc = sat ? run_arith<Pol<false, true>>(args) : run_arith<Pol<false, false>>(args);
  if (rc == 0 && args_out) ChunkArgs(args).combine(args.n, args.arg_max, args.arg_min);
  return rc;
}

// out[i] = op(a[i], b[i]) rounded to f, float64 arrays: 0 quantize(a), 1 add, 2 mul (exact
// product: formats up to FP32), 3 round(b * a) of an exact sum a, 4 recip(a), 5 rsqrt(a).
extern "C" int lightnorm_native_prim(int op, int64_t n, const double* a, const double* b,
                                     double* out, const Fmt* f) {
  if (f->rne) return f->sat ? prim<Pol<true, true>>(op, n, a, b, out, *f)
                            : prim<Pol<true, false>>(op, n, a, b, out, *f);
  return f->sat ? prim<Pol<false, true>>(op, n, a, b, out, *f)
                : prim<Pol<false, false>>(op, n, a, b, out, *f);
}

// Exact per-channel sums from limb rows and their roundings (lightnorm/torch/channel.py
// _round_acc): limbs (rows, chans, nlimbs), value of a row = sum_i limb_i * 2^(32 i + lsb);
// special (rows, chans) the float64 sums of the NaN/Inf values. For each scale k:
// out[k * chans + c] = round(scales[k] * sum_c) to fmts[k] once (arith.round_scaled_int), or
// quantize(special * scale) where the channel had NaN/Inf. An exact zero sum gives +0.
extern "C" int lightnorm_native_round_limbs(int64_t rows, int64_t chans, int32_t nlimbs,
                                            const int64_t* limbs, const double* special,
                                            int32_t lsb, int32_t nscales, const double* scales,
                                            const Fmt* fmts, double* out) {
  if (nlimbs < 1 || nlimbs + 8 > kMaxWords) return -1;
  for (int64_t c = 0; c < chans; ++c) {
    __int128 acc[kMaxWords] = {};
    double sp = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t* l = limbs + (r * chans + c) * nlimbs;
      for (int i = 0; i < nlimbs; ++i) acc[i] += l[i];
      sp += special[r * chans + c];
    }
    // two's complement words, then sign and magnitude
    const int nw = nlimbs + 4;
    uint32_t w[kMaxWords];
    __int128 carry = 0;
    for (int i = 0; i < nw; ++i) {
      const __int128 t = acc[i] + carry;
      w[i] = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
    const bool neg = carry < 0;
    if (neg) {
      uint64_t cy = 1;
      for (int i = 0; i < nw; ++i) {
        const uint64_t t = static_cast<uint64_t>(static_cast<uint32_t>(~w[i])) + cy;
        w[i] = static_cast<uint32_t>(t);
        cy = t >> 32;
      }
    }
    for (int k = 0; k < nscales; ++k) {
      const Fmt& f = fmts[k];
      const double sc = scales[k];
      if (sp != 0.0 || sp != sp) {
        out[k * chans + c] = quant_any(sp * sc, f);
        continue;
      }
      // scale = c_int * 2^ce, c_int < 2^53 (frexp); product mag * c_int in words
      int ce = 0;
      const double fr = std::frexp(std::fabs(sc), &ce);
      const uint64_t cint = static_cast<uint64_t>(std::ldexp(fr, 53));
      ce -= 53;
      uint32_t p[kMaxWords] = {};
      const uint64_t clo = cint & 0xFFFFFFFFu, chi = cint >> 32;
      for (int i = 0; i < nw; ++i) {
        unsigned __int128 t = static_cast<unsigned __int128>(w[i]) * clo;
        int j = i;
        while (t) {
          t += p[j];
          p[j] = static_cast<uint32_t>(t);
          t >>= 32;
          ++j;
        }
        t = static_cast<unsigned __int128>(w[i]) * chi;
        j = i + 1;
        while (t) {
          t += p[j];
          p[j] = static_cast<uint32_t>(t);
          t >>= 32;
          ++j;
        }
      }
      const bool sneg = neg != (sc < 0.0);
      out[k * chans + c] = round_scaled_words(p, nw + 3, sneg, lsb + ce, f);
    }
  }
  return 0;
}

// What the library was built for: SIMD width and the instruction sets it uses.
extern "C" const char* lightnorm_native_isa(void) {
  return "vector_bytes=" LN_ISA_STR(LN_VB)
#if defined(__AVX512F__)
         " avx512f"
#endif
#if defined(__AVX2__)
         " avx2"
#endif
#if defined(__AVX__)
         " avx"
#endif
#if defined(__FMA__)
         " fma(unused: -ffp-contract=off)"
#endif
#if defined(__F16C__)
         " f16c"
#endif
#if defined(__SSE4_1__)
         " sse4.1"
#endif
      ;
}
