/* Vector exp, sigmoid and tanh for the SIMD targets' kernels (attention's softmax, the LSTM
 * cell): one copy per instruction set, chosen by the compiler's target macros; a file of a
 * target without one does not include this header.
 * exp: n ln2 split in two constants and a degree-6 polynomial on |r| <= ln2 / 2 (Cephes-style,
 * about 1 ulp); inputs below -87.3 give 0, NaN stays NaN. sigmoid(v) = 1 / (1 + exp(-v)).
 * tanh: an odd polynomial for |v| < 0.625, else 1 - 2 / (exp(2 |v|) + 1) with v's sign (a few
 * ulp; absolute error below 1e-7). */
#ifndef NN_VEXP_H
#define NN_VEXP_H

#if defined(__AVX2__) && defined(__FMA__)
/* --- x86: AVX2 + FMA, 8 lanes ------------------------------------------------------------- */
#include <immintrin.h>

static inline __m256 nn_exp8(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-88.3762626647949f);
    const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));                 /* NaN passes through */
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
                                                         _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

static inline __m256 nn_sigmoid8(__m256 v)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, nn_exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

static inline __m256 nn_tanh8(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    const __m256 a = _mm256_andnot_ps(sign, v);
    const __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f),
                                     _mm256_add_ps(nn_exp8(_mm256_add_ps(a, a)), one)));
    const __m256 z = _mm256_mul_ps(v, v);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), v, v);
    const __m256 is_small = _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm256_blendv_ps(_mm256_or_ps(big, _mm256_and_ps(sign, v)), small, is_small);
}

#elif defined(__aarch64__) && defined(__ARM_NEON)
/* --- AArch64: NEON, 4 lanes --------------------------------------------------------------- */
#include <arm_neon.h>

static inline float32x4_t nn_exp4(float32x4_t x)
{
    const uint32x4_t under = vcltq_f32(x, vdupq_n_f32(-87.33654f));
    x = vminq_f32(vdupq_n_f32(88.3762626647949f), vmaxq_f32(vdupq_n_f32(-88.3762626647949f), x));
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f)); /* NaN stays NaN */
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
}

static inline float32x4_t nn_sigmoid4(float32x4_t v)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, nn_exp4(vnegq_f32(v))));
}

static inline float32x4_t nn_tanh4(float32x4_t v)
{
    const float32x4_t one = vdupq_n_f32(1.0f), a = vabsq_f32(v);
    const float32x4_t big = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f),
                                                     vaddq_f32(nn_exp4(vaddq_f32(a, a)), one)));
    const float32x4_t z = vmulq_f32(v, v);
    float32x4_t p = vdupq_n_f32(-5.70498872745e-3f);
    p = vfmaq_f32(vdupq_n_f32(2.06390887954e-2f), p, z);
    p = vfmaq_f32(vdupq_n_f32(-5.37397155531e-2f), p, z);
    p = vfmaq_f32(vdupq_n_f32(1.33314422036e-1f), p, z);
    p = vfmaq_f32(vdupq_n_f32(-3.33332819422e-1f), p, z);
    const float32x4_t small = vfmaq_f32(v, vmulq_f32(p, z), v);
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x80000000u));
    const float32x4_t signed_big = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(big),
                                                                   sign));
    return vbslq_f32(vcltq_f32(a, vdupq_n_f32(0.625f)), small, signed_big);
}

#endif
#endif /* NN_VEXP_H */
