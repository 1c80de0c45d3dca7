/* Branch-free float math for the network's elementwise loops.
 *
 * libm's expf / erff / tanhf / logf / log1pf are calls GCC and clang cannot vectorise; these
 * are static inline, made of float and int32 arithmetic and selects only (no branches, no
 * calls, no tables), so a loop over them auto-vectorises at -O3 (the generated project's Release build) with
 * the target's flags.
 * Range reduction works on the bits (2^n built in the exponent field, the exponent of logf read
 * from it); the polynomials are least-squares fits on Chebyshev nodes of the reduced range.
 *
 * Maximum error against float64, in float32 ULP at the exact result (tests/ops/test_vmath.py:
 * every 2003rd float over the range, every float of the sub-ranges around the reduction and
 * branch points, and the specials; compiled -O3 with and without AVX2 + FMA contraction).
 * Measured worst / stated bound:
 *   nn_expf      0.97 / 1    [-104, 89]; subnormal results in ULP of 2^-149
 *   nn_logf      0.89 / 1    (0, FLT_MAX], subnormal inputs included
 *   nn_log1pf    2.35 / 3    (-1, 1e6]
 *   nn_tanhf     1.33 / 2    [-10, 10] (+-1 beyond)
 *   nn_erff      2.33 / 3    [-4, 4] (+-1 beyond)
 *   nn_sigmoidf  1.99 / 3    [-88, 88] where the result is >= 2^-126
 *   nn_softplusf 2.46 / 3    [-1e4, 1e4]
 * Subnormal results (expf below -87.3) are computed, not flushed: 2^n is applied as two
 * normal factors, so they round once. Specials: NaN in,
 * NaN out; expf(+inf) = +inf, expf(-inf) = 0, overflow to +inf from 88.7228394; logf(0) = -inf,
 * logf(x < 0) = NaN; tanhf, erff, sigmoidf of +-inf are their limits; signed zeros kept by the
 * odd functions. Assumes float arithmetic in float (FLT_EVAL_METHOD 0: SSE, AVX, NEON).
 */
#ifndef NN_VMATH_H
#define NN_VMATH_H

#include <math.h>      /* INFINITY, NAN only: nothing here calls libm */
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define NN_VM_INLINE static inline __attribute__((always_inline))
#else
#define NN_VM_INLINE static inline
#endif

NN_VM_INLINE uint32_t nn_vm_bits(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
NN_VM_INLINE float nn_vm_float(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }
/* |x| and x's sign on the magnitude m (m >= 0). */
NN_VM_INLINE float nn_vm_abs(float x) { return nn_vm_float(nn_vm_bits(x) & 0x7fffffffu); }
NN_VM_INLINE float nn_vm_signed(float m, float x) {
    return nn_vm_float(nn_vm_bits(m) | (nn_vm_bits(x) & 0x80000000u));
}
/* c ? a : b on the bits: GCC will not if-convert a float ?: whose arms feed more float
 * arithmetic (under its default -ftrapping-math), and a branch stops vectorisation. */
NN_VM_INLINE float nn_vm_select(int c, float a, float b) {
    const uint32_t m = (uint32_t)0 - (uint32_t)(c != 0);
    return nn_vm_float((nn_vm_bits(a) & m) | (nn_vm_bits(b) & ~m));
}
/* max(0, min(1, v)); NaN stays NaN. */
NN_VM_INLINE float nn_vm_clamp01(float v) {
    return nn_vm_select(v < 0.0f, 0.0f, nn_vm_select(v > 1.0f, 1.0f, v));
}
/* 2^n for an integer n in [-126, 127]. */
NN_VM_INLINE float nn_vm_pow2i(int32_t n) { return nn_vm_float((uint32_t)(n + 127) << 23); }

#define NN_VM_LN2_HI 0.693359375f          /* 9 bits: n * LN2_HI is exact for |n| <= 2^15 */
#define NN_VM_LN2_LO -2.12194440e-4f
#define NN_VM_ROUNDER 12582912.0f          /* 1.5 * 2^23: x + it rounds x to an integer */

/* e^x = 2^n e^r, n = round(x / ln2), |r| <= ln2 / 2; e^r = 1 + r + r^2 P(r). The scale 2^n is
 * applied as two halves so that overflow and subnormal results round once, at the end. */
NN_VM_INLINE float nn_expf(float x) {
    float xc = nn_vm_select(x > 89.0f, 89.0f, x);   /* NaN passes both clamps */
    xc = nn_vm_select(xc < -104.0f, -104.0f, xc);
    const float t = xc * 1.44269504088896341f + NN_VM_ROUNDER;
    const int32_t n = (int32_t)(nn_vm_bits(t) - nn_vm_bits(NN_VM_ROUNDER));
    const float fn = t - NN_VM_ROUNDER;
    float r = xc - fn * NN_VM_LN2_HI;
    r = r - fn * NN_VM_LN2_LO;
    float p = 1.98495195945724845e-4f;
    p = p * r + 1.39335880521684885e-3f;
    p = p * r + 8.33337288349866867e-3f;
    p = p * r + 4.16664667427539825e-2f;
    p = p * r + 1.66666671633720398e-1f;
    p = p * r + 0.5f;
    p = (p * r) * r + r + 1.0f;
    const int32_t n1 = n / 2;
    return p * nn_vm_pow2i(n1) * nn_vm_pow2i(n - n1);
}

/* ln x = e ln2 + ln(1 + f), x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2));
 * ln(1 + f) = f - f^2 / 2 + f^3 P(f). */
NN_VM_INLINE float nn_logf(float x) {
    const int sub = x < 1.17549435e-38f;            /* subnormal (or <= 0: replaced below) */
    const uint32_t u = nn_vm_bits(nn_vm_select(sub, x * 8388608.0f, x));
    float m = nn_vm_float((u & 0x007fffffu) | 0x3f800000u);     /* in [1, 2) */
    const int big = m > 1.41421356f;
    m = nn_vm_select(big, m * 0.5f, m);
    const float e = (float)((int32_t)(u >> 23) - 127 - 23 * sub + big);
    const float f = m - 1.0f;                       /* exact */
    const float z = f * f;
    float p = 6.86262324452400208e-2f;
    p = p * f - 1.14223845303058624e-1f;
    p = p * f + 1.16994224488735199e-1f;
    p = p * f - 1.24348036944866180e-1f;
    p = p * f + 1.42485961318016052e-1f;
    p = p * f - 1.66673824191093445e-1f;
    p = p * f + 2.00007185339927673e-1f;
    p = p * f - 2.50000029802322388e-1f;
    p = p * f + 3.33333313465118408e-1f;
    float y = f * z * p - 0.5f * z + e * NN_VM_LN2_LO;
    y = f + y + e * NN_VM_LN2_HI;
    y = nn_vm_select(x < 0.0f, NAN, y);
    y = nn_vm_select(x == 0.0f, -INFINITY, y);
    return nn_vm_select((x == INFINITY) | (x != x), x, y);
}

/* ln(1 + x): ln(u) * x / (u - 1) with u = 1 + x rounded, which cancels u's rounding error. */
NN_VM_INLINE float nn_log1pf(float x) {
    const float u = 1.0f + x;
    const float d = u - 1.0f;
    const float y = nn_logf(u) * (x / d);
    return nn_vm_select((d == 0.0f) | (x == INFINITY), x, y);
}

/* tanh x: x + x^3 P(x^2) below 0.625, else sign(x) (1 - 2 / (e^2|x| + 1)) (|x| clamped to 10,
 * where tanh rounds to 1). */
NN_VM_INLINE float nn_tanhf(float x) {
    const float a = nn_vm_abs(x);
    const float z = x * x;
    float p = 2.30797799304127693e-3f;
    p = p * z - 8.35991278290748596e-3f;
    p = p * z + 2.17749308794736862e-2f;
    p = p * z - 5.39602264761924744e-2f;
    p = p * z + 1.33333101868629456e-1f;
    p = p * z - 3.33333343267440796e-1f;
    const float small = x + x * z * p;
    const float ac = nn_vm_select(a > 10.0f, 10.0f, a);
    const float large = 1.0f - 2.0f / (nn_expf(2.0f * ac) + 1.0f);
    return nn_vm_signed(nn_vm_abs(nn_vm_select(a < 0.625f, small, large)), x);
}

/* erf x: x P(x^2) below 0.9375, else sign(x) (1 - e^(-x^2) G(1 / |x|)) with G(1 / a) fitting
 * erfc(a) e^(a^2) on [0.9375, 4] (|x| clamped to 4, where erf rounds to 1). */
NN_VM_INLINE float nn_erff(float x) {
    const float a = nn_vm_abs(x);
    const float z = x * x;
    float p = 8.30914068501442671e-5f;
    p = p * z - 8.12974700238555670e-4f;
    p = p * z + 5.20007684826850891e-3f;
    p = p * z - 2.68591269850730896e-2f;
    p = p * z + 1.12836942076683044e-1f;
    p = p * z - 3.76126348972320557e-1f;
    p = p * z + 1.12837922573089600e+0f;
    const float small = x * p;
    const float ac = nn_vm_select(a > 4.0f, 4.0f, nn_vm_select(a < 0.9375f, 0.9375f, a));
    const float v = 1.0f / ac;
    float g = 2.32017729431390762e-2f;
    g = g * v - 1.39340221881866455e-1f;
    g = g * v + 3.44239443540573120e-1f;
    g = g * v - 4.12676542997360229e-1f;
    g = g * v + 1.35666459798812866e-1f;
    g = g * v + 2.85299867391586304e-1f;
    g = g * v - 3.94853472709655762e-1f;
    g = g * v + 2.46303044259548187e-2f;
    g = g * v + 5.61268627643585205e-1f;
    g = g * v + 1.47326500155031681e-4f;
    const float large = nn_vm_signed(1.0f - nn_expf(-(ac * ac)) * g, x);
    return nn_vm_select((a < 0.9375f) | (x != x), small, large);
}

/* 1 / (1 + e^-x) */
NN_VM_INLINE float nn_sigmoidf(float x) { return 1.0f / (1.0f + nn_expf(-x)); }

/* ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|) */
NN_VM_INLINE float nn_softplusf(float x) {
    return nn_vm_select(x > 0.0f, x, 0.0f) + nn_log1pf(nn_expf(-nn_vm_abs(x)));
}

#endif /* NN_VMATH_H */
