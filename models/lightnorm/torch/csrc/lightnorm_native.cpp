// SPDX-License-Identifier: Apache-2.0
// LightNorm element-wise passes on the CPU: the native backend of lightnorm.torch.
//
// The four element-wise passes of docs/spec.md (store + statistics, variance sums, normalize,
// backward pass 1 and 2) as fused loops, bit-identical to the torch-op passes of
// lightnorm/torch.py (which document the arithmetic) and so to the numpy reference model.
// Every operator is one correct rounding; two arithmetic types implement it:
//   - float (ARITH_F32): only for passes whose every operator passes the float32 checks of
//     lightnorm/torch.py (_f32_fmt, _add_f32, _mul_f32): a + b and a * b in float32 are then
//     exact or innocuously double-rounded, and quantize is the scaling below;
//   - double: products of two format values are exact; a + b is TwoSum with the breakpoint
//     nudge (lightnorm.arith), then quantize.
// quantize(x, f): k = clamp(floor(log2|x|), emin, emax + 1) - M; 2^k * R(x * 2^-k), both
// scalings exact; R = round half even (rint in the default rounding mode) or trunc; then the
// overflow policy. Build flags must keep IEEE semantics: no -ffast-math, -ffp-contract=off
// (a fused multiply-add would change TwoSum and the products).
//
// Layout: (N, C, S) contiguous; BFP groups are `g` consecutive channels at one (n, s). Work
// items are (n, group) pairs, split over OpenMP threads (torch's runtime, see run()). Row
// sums per (n, c): float64 (exact for 'f64' kinds) or 32-bit limbs in int64 (exact for any
// format up to FP32; lightnorm/_native.py combines them into Python ints).

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

// Small arithmetic helpers are always inlined: a call in a loop body stops vectorization.
#define LN_INLINE inline __attribute__((always_inline))

namespace {

constexpr int kBlock = 512;  // s-block length of the per-group buffers

struct Fmt {  // a float format and the policies of the operators rounding to it
  int32_t man, emin, emax, rne, sat, pad;
  double maxn;
};

struct Bfp {  // BFP storage (enabled = 0: none)
  int32_t enabled, mb, g, e_lo, e_hi, second_max, rne, keeps;
};

}  // namespace

extern "C" {

// One call's arguments (mirrored by lightnorm/_native.py; keep the field order).
struct LnArgs {
  int32_t pass;       // 0 store, 1 var, 2 norm, 3 bwd1, 4 bwd2
  int32_t arith;      // 0 float, 1 double
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
  const int8_t* marker;  // bwd2 range_exact: (N, C, S) 1 = arg-max, 2 = arg-min
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
};

int lightnorm_native_abi(void) { return 4; }

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
// chains of operators below have no branches and vectorize.
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

template <class P, class T> LN_INLINE T add(T a, T b, const Fmt& f) {
  if constexpr (std::is_same_v<T, float>) {
    return quant<P>(a + b, f);
  } else {
    const double s = a + b;
    const double bb = s - a;
    const double err = (a - (s - bb)) + (b - bb);  // TwoSum
    return round_with_error<P>(s, err, f);
  }
}
template <class P, class T> LN_INLINE T sub(T a, T b, const Fmt& f) { return add<P, T>(a, -b, f); }
template <class P, class T> LN_INLINE T mul(T a, T b, const Fmt& f) { return quant<P>(a * b, f); }

// ---- element types --------------------------------------------------------------------------

// Rows of stored values (x_c, dy_c) are float16 or float32; converted in whole rows (F16C
// when the CPU has it: the conversions are exact, the values are float16 values).
inline void half_to_float(const uint16_t* src, float* dst, int len) {
  int i = 0;
#ifdef __F16C__
  for (; i + 8 <= len; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
  for (; i < len; ++i) dst[i] = static_cast<float>(__builtin_bit_cast(_Float16, src[i]));
}

inline void float_to_half(const float* src, uint16_t* dst, int len) {
  int i = 0;
#ifdef __F16C__
  for (; i + 8 <= len; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
  for (; i < len; ++i) dst[i] = __builtin_bit_cast(uint16_t, static_cast<_Float16>(src[i]));
}

// dst[0, len) = the stored row at element offset off (float16 if half, else float32)
template <class T> void load_row(T* dst, const void* src, int64_t off, int len, bool half) {
  if (half) {
    const uint16_t* h = static_cast<const uint16_t*>(src) + off;
    if constexpr (std::is_same_v<T, float>) {
      half_to_float(h, dst, len);
    } else {
      alignas(64) float tmp[kBlock];
      half_to_float(h, tmp, len);
      for (int i = 0; i < len; ++i) dst[i] = tmp[i];
    }
  } else {
    const float* f = static_cast<const float*>(src) + off;
    for (int i = 0; i < len; ++i) dst[i] = static_cast<T>(f[i]);
  }
}

// ---- operators on block rows --------------------------------------------------------------

// out[i] = op(i) rounded to f, one operator over a row. Float: pre(i) is the float32 result
// (exact, or innocuously double-rounded: the checks of lightnorm/torch.py), rounded in the
// same loop; double: full(i) is the whole operator (TwoSum and the nudge for additions). out
// must not be an operand: the fix-up and fallback loops read the operands again.
// Float and round-to-nearest (lightnorm/torch.py _quant_rne32): Veltkamp's split
// t = x * (2^(23 - M) + 1), x' = t - (t - x) rounds x to M + 1 significant bits, ties to even:
// quantize for 2^emin <= |x| <= 2^(emax + 2) and zeros, while |x'| <= max_normal; |x| < 2^emin:
// (x + c) - c with c = 1.5 * 2^(lsb + 23) rounds to the subnormal grid (a second, cheap loop,
// only for rows that have such values). A row with an overflow, NaN or Inf is done again by
// the general quantize.
template <class P, class T, class Pre, class Full>
LN_INLINE void row_op(T* out, int len, const Fmt& f, Pre pre, Full full) {
  if constexpr (std::is_same_v<T, float> && P::rne) {
    const float c1 = pow2<float>(23 - f.man) + 1.0f;
    const float lo_n = pow2<float>(f.emin), bound = pow2<float>(f.emax + 2);
    const float maxn = static_cast<float>(f.maxn);
    int bad = 0, sub = 0;
    for (int i = 0; i < len; ++i) {
      const float x = pre(i);
      const float t = x * c1;
      const float h = t - (t - x);
      const float ax = std::fabs(x);
      sub |= (ax < lo_n) & (x != 0.0f);
      bad |= !(ax <= bound) | (std::fabs(h) > maxn);
      out[i] = h;
    }
    if (!bad) {
      if (sub) {
        const float c = 1.5f * pow2<float>(f.emin - f.man + 23);
        for (int i = 0; i < len; ++i) {
          const float x = pre(i);
          out[i] = std::fabs(x) < lo_n ? std::copysign((x + c) - c, x) : out[i];
        }
      }
      return;
    }
    for (int i = 0; i < len; ++i) out[i] = quant<P>(pre(i), f);
  } else if constexpr (std::is_same_v<T, float>) {
    for (int i = 0; i < len; ++i) out[i] = quant<P>(pre(i), f);
  } else {
    for (int i = 0; i < len; ++i) out[i] = full(i);
  }
}

// out[i] = quantize(in[i], f) (in != out)
template <class P, class T> void quant_arr(const T* in, T* out, int len, const Fmt& f) {
  row_op<P, T>(out, len, f, [&](int i) { return in[i]; },
               [&](int i) { return quant<P>(in[i], f); });
}

// add / sub / mul of a row and a per-channel constant, or of two rows (out != operands)
template <class P, class T> LN_INLINE void add_rc(const T* a, T b, T* out, int len, const Fmt& f) {
  row_op<P, T>(out, len, f, [&](int i) { return a[i] + b; },
               [&](int i) { return add<P, T>(a[i], b, f); });
}
template <class P, class T> LN_INLINE void sub_rc(const T* a, T b, T* out, int len, const Fmt& f) {
  add_rc<P, T>(a, -b, out, len, f);
}
template <class P, class T> LN_INLINE void mul_rc(const T* a, T b, T* out, int len, const Fmt& f) {
  row_op<P, T>(out, len, f, [&](int i) { return a[i] * b; },
               [&](int i) { return mul<P, T>(a[i], b, f); });
}
template <class P, class T>
LN_INLINE void sub_rr(const T* a, const T* b, T* out, int len, const Fmt& f) {
  row_op<P, T>(out, len, f, [&](int i) { return a[i] - b[i]; },
               [&](int i) { return sub<P, T>(a[i], b[i], f); });
}
template <class P, class T>
LN_INLINE void mul_rr(const T* a, const T* b, T* out, int len, const Fmt& f) {
  row_op<P, T>(out, len, f, [&](int i) { return a[i] * b[i]; },
               [&](int i) { return mul<P, T>(a[i], b[i], f); });
}

// ---- BFP on a block buffer (spec section 5; lightnorm/torch.py _bfp_grouped) ---------------
// buf[j * kBlock + i]: channel j of the group (gs channels), position i of the block (len).
// rounded: the values are already values of f. Applies quantize (unless rounded), the BFP
// store/load, and the last quantize unless it is the identity (keeps).

template <class P, class T>
void storage_block(T* buf, int gs, int len, const Fmt& f, const Bfp& b, bool rounded, T* tmp) {
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

// ---- exact row sums ---------------------------------------------------------------------------

// Add values of f (as T) to a limb accumulator: value = sum(limb[i] * 2^(32 i + f.lsb));
// non-finite values go to `special` (float64 sum).
template <class T>
void add_limbs(const T* v, int len, const Fmt& f, int64_t* limb, double* special) {
  const int lsb = f.emin - f.man;
  for (int i = 0; i < len; ++i) {
    const double x = static_cast<double>(v[i]);
    if (!std::isfinite(x)) {
      *special += x;
      continue;
    }
    if (x == 0.0) continue;
    const int k = std::max(ilogb_bits(x), f.emin) - f.man;
    const int64_t m = static_cast<int64_t>(x * pow2<double>(-k));  // |m| < 2^(M + 1): exact
    const int o = k - lsb;
    const int64_t val = m * (int64_t{1} << (o & 31));
    limb[o >> 5] += val & 0xFFFFFFFF;
    limb[(o >> 5) + 1] += val >> 32;  // arithmetic shift: val = hi * 2^32 + lo
  }
}

// Sum in float64 (exact for the 'f64' kinds, so in any order: 8 independent lanes, which
// vectorize; an in-order float sum does not without -ffast-math).
template <class T> double sum_f64(const T* v, int len) {
  typedef double VD __attribute__((vector_size(64)));
  typedef T VT __attribute__((vector_size(8 * sizeof(T))));
  VD acc = {};
  int i = 0;
  for (; i + 8 <= len; i += 8) {
    VT x;
    std::memcpy(&x, v + i, sizeof x);
    acc += __builtin_convertvector(x, VD);
  }
  double s = 0.0;
  for (int l = 0; l < 8; ++l) s += acc[l];
  for (; i < len; ++i) s += static_cast<double>(v[i]);
  return s;
}

// ---- the passes -------------------------------------------------------------------------------

struct Ctx {
  const LnArgs* a;
  int64_t groups;  // channel groups per sample
};


template <class T>
void sum_out(const LnArgs& a, const Fmt& fs, const T* v, int len, int64_t row, double* sums,
             int64_t* limbs) {
  if (a.sum_kind == 1) {
    sums[row] += sum_f64(v, len);
  } else if (a.sum_kind == 2) {
    add_limbs(v, len, fs, limbs + row * a.nlimbs, sums + row);
  }
}

// *mx / *mn updated with the max / min of v[0, len); a NaN anywhere makes both NaN (as
// torch.amax / amin). GCC vector types: the compare-selects become vmaxps / vminps.
template <class T> void row_extrema(const T* v, int len, double* mx, double* mn) {
  constexpr int kLanes = 64 / sizeof(T);
  typedef T V __attribute__((vector_size(64)));
  V hi, lo, nanv = {};
  for (int l = 0; l < kLanes; ++l) {
    hi[l] = static_cast<T>(*mx);  // +-Inf or a value of T
    lo[l] = static_cast<T>(*mn);
  }
  int i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    V x;
    std::memcpy(&x, v + i, sizeof x);
    hi = x > hi ? x : hi;
    lo = x < lo ? x : lo;
    nanv = x != x ? x : nanv;
  }
  double h = *mx, m = *mn;
  bool nan = (h != h) | (m != m);
  for (int l = 0; l < kLanes; ++l) {
    h = static_cast<double>(hi[l]) > h ? static_cast<double>(hi[l]) : h;
    m = static_cast<double>(lo[l]) < m ? static_cast<double>(lo[l]) : m;
    nan |= nanv[l] != nanv[l];
  }
  for (; i < len; ++i) {
    const double x = static_cast<double>(v[i]);
    h = x > h ? x : h;
    m = x < m ? x : m;
    nan |= x != x;
  }
  *mx = nan ? std::numeric_limits<double>::quiet_NaN() : h;
  *mn = nan ? std::numeric_limits<double>::quiet_NaN() : m;
}

template <class T>
void store_out(void* out, int64_t off, const T* v, int len, bool half) {
  if (half) {
    uint16_t* o = static_cast<uint16_t*>(out) + off;
    if constexpr (std::is_same_v<T, float>) {
      float_to_half(v, o, len);
    } else {
      alignas(64) float tmp[kBlock];
      for (int i = 0; i < len; ++i) tmp[i] = static_cast<float>(v[i]);
      float_to_half(tmp, o, len);
    }
  } else {
    float* o = static_cast<float*>(out) + off;
    for (int i = 0; i < len; ++i) o[i] = static_cast<float>(v[i]);
  }
}

template <class P, class T> void run_items(const Ctx& ctx, int64_t item0, int64_t item1) {
  const LnArgs& a = *ctx.a;
  // Local copies: stores to the buffers cannot alias them (keeps the loops vectorizable).
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
  for (int64_t item = item0; item < item1; ++item) {
    const int64_t n = item / ctx.groups;
    const int64_t c0 = (item % ctx.groups) * g;
    const int gs = static_cast<int>(std::min<int64_t>(g, a.c - c0));
    if (a.pass == 0 && a.extrema)
      for (int j = 0; j < gs; ++j) {
        a.ext_max[n * a.c + c0 + j] = -std::numeric_limits<double>::infinity();
        a.ext_min[n * a.c + c0 + j] = std::numeric_limits<double>::infinity();
      }
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
            sub_rc<P, T>(t1, static_cast<T>(a.v0[c]), t2, len, fc);
            mul_rr<P, T>(t2, t2, r0, len, fc);
            sum_out(a, fs, r0, len, row, a.sum0, a.limb0);
            break;
          }
          case 2:  // norm: the input (raw: stored below first)
            load_row(r0, a.in0, off, len, a.mode == 1 ? false : h0);
            break;
          default: {  // bwd2: dx_c per mode (stored below, rounded)
            const T kb = static_cast<T>(a.v3[c]), coeff = static_cast<T>(a.v5[c]);
            load_row(t1, a.in0, off, len, h0);  // dy_c
            if (a.mode == 2) {  // eval: dx = mul(dy, a)
              mul_rc<P, T>(t1, coeff, r0, len, fg);
            } else if (a.mode == 0) {  // bn
              load_row(t2, a.in1, off, len, h1);                           // x_c
              sub_rc<P, T>(t2, static_cast<T>(a.v0[c]), r2, len, fc);
              mul_rc<P, T>(r2, static_cast<T>(a.v1[c]), t2, len, fc);     // x_hat
              sub_rc<P, T>(t1, kb, r2, len, fg);                           // centered
              mul_rc<P, T>(t2, static_cast<T>(a.v4[c]), t1, len, fg);     // x_hat * k_gamma
              sub_rr<P, T>(r2, t1, t2, len, fg);                           // inner
              mul_rc<P, T>(t2, coeff, r0, len, fg);
            } else {  // range_exact: t, and t -+ corr at the chunk arg-max / arg-min
              const T corr = static_cast<T>(a.v2[c]);
              sub_rc<P, T>(t1, kb, t2, len, fg);
              mul_rc<P, T>(t2, coeff, t1, len, fg);                        // t
              sub_rc<P, T>(t1, corr, t2, len, fg);
              add_rc<P, T>(t1, corr, r2, len, fg);
              const int8_t* mk = a.marker + off;
              for (int i = 0; i < len; ++i) r0[i] = mk[i] == 1 ? t2[i] : (mk[i] == 2 ? r2[i] : t1[i]);
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
        }
      } else if (a.pass == 2) {
        if (a.mode == 1) storage_block<P>(b0, gs, len, fc, bfp, false, t0);
        for (int j = 0; j < gs; ++j) {
          const int64_t c = c0 + j;
          T* r0 = b0 + j * kBlock;
          sub_rc<P, T>(r0, static_cast<T>(a.v0[c]), t1, len, fc);
          mul_rc<P, T>(t1, static_cast<T>(a.v1[c]), t2, len, fc);
          add_rc<P, T>(t2, static_cast<T>(a.v2[c]), r0, len, fc);
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
          sub_rc<P, T>(t1, static_cast<T>(a.v0[c]), t2, len, fc);
          mul_rc<P, T>(t2, static_cast<T>(a.v1[c]), t1, len, fc);  // x_hat
          mul_rr<P, T>(r0, t1, r2, len, fg);                         // dy_c * x_hat
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

template <class P, class T> int run(const LnArgs& a) {
  const int g = a.bfp.enabled ? a.bfp.g : 1;
  const Ctx ctx{&a, (a.c + g - 1) / g};
  const int64_t items = a.n * ctx.groups;
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(a.nthreads, items)));
  // OpenMP: the library links libgomp.so.1, which resolves to the copy torch already loaded, so
  // these are torch's own worker threads (a second thread pool would compete with torch's
  // spinning workers for the cores).
#pragma omp parallel for num_threads(nt) schedule(static, 1)
  for (int t = 0; t < nt; ++t) run_items<P, T>(ctx, items * t / nt, items * (t + 1) / nt);
  return 0;
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

// round(c * s) once of an exact float64 sum s (lightnorm/torch.py _round_sum)
template <class P> LN_INLINE double round_sum(double s, double c, const Fmt& f) {
  const double prod = s * c;
  const bool fin = std::isfinite(prod);
  const double err = fin ? two_prod_err(s, c, prod) : 0.0;
  double out = round_with_error<P>(prod, err, f);
  out = std::isfinite(s) ? out : quant<P>(prod, f);
  return (std::isfinite(s) && c == 0.0) ? 0.0 : out;
}

// rsqrt(v, f): round(1 / sqrt(v)) once (lightnorm/torch.py _rsqrt: the side of a nearby
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
      for (int64_t i = 0; i < n; ++i) out[i] = add<P, double>(a[i], b[i], f);
      return 0;
    case 2:
      for (int64_t i = 0; i < n; ++i) out[i] = mul<P, double>(a[i], b[i], f);
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

template <class P> int run_arith(const LnArgs& a) {
  return a.arith == 0 ? run<P, float>(a) : run<P, double>(a);
}

extern "C" int lightnorm_native_pass(const LnArgs* a) {
  if (a->pass < 0 || a->pass > 4) return -1;
  if (a->bfp.enabled && (a->bfp.g < 1 || a->bfp.g > 4096)) return -2;
  // one rounding and one overflow policy per pass (the configuration's)
  if (a->fg.rne != a->fc.rne || a->fg.sat != a->fc.sat || a->fs.rne != a->fc.rne ||
      (a->bfp.enabled && a->bfp.rne != a->fc.rne))
    return -3;
  if (a->fc.rne) return a->fc.sat ? run_arith<Pol<true, true>>(*a) : run_arith<Pol<true, false>>(*a);
  return a->fc.sat ? run_arith<Pol<false, true>>(*a) : run_arith<Pol<false, false>>(*a);
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
