/* Winograd convolution for the x86 targets (see winograd.h; x86-avx512 uses this file too, at
 * the zmm width of nn_x86_vec.h): F(2x2)'s input transform across a row's tiles and its output
 * transform (bias and fused epilogue included) with intrinsics, VL tiles per vector. Everything
 * else, F(4x4) included, is nn_winograd_driver.h. */
#include "winograd.h"

#include "nn_winograd_driver.h"
#include "nn_x86_vec.h"
#include "nn_conv_vclamp.h"

#define INLINE static inline __attribute__((always_inline))

#if VL == 16
#define vsub _mm512_sub_ps
#else
#define vsub _mm256_sub_ps
#endif

/* even(lo, hi) / odd(lo, hi): the even / odd floats of the 2 VL at lo then hi; interleave: a0 b0
 * a1 b1 ... as two vectors; load_n / store_n: the first n (0 <= n <= VL) lanes only. */
#if VL == 16
INLINE vec even(vec lo, vec hi)
{
    return _mm512_permutex2var_ps(lo, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
                                                        22, 24, 26, 28, 30), hi);
}
INLINE vec odd(vec lo, vec hi)
{
    return _mm512_permutex2var_ps(lo, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21,
                                                        23, 25, 27, 29, 31), hi);
}
INLINE void interleave(vec a, vec b, vec *lo, vec *hi)
{
    *lo = _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21,
                                                      6, 22, 7, 23), b);
    *hi = _mm512_permutex2var_ps(a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13,
                                                      29, 14, 30, 15, 31), b);
}
INLINE vec load_n(const float *s, int n)
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), s);
}
INLINE void store_n(float *d, int n, vec v)
{
    _mm512_mask_storeu_ps(d, (__mmask16)((1u << n) - 1u), v);
}
#else
INLINE vec even(vec lo, vec hi)     /* shuffle: lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6, then 64-bit */
{
    const __m256 t = _mm256_shuffle_ps(lo, hi, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}
INLINE vec odd(vec lo, vec hi)
{
    const __m256 t = _mm256_shuffle_ps(lo, hi, 0xDD);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}
INLINE void interleave(vec a, vec b, vec *lo, vec *hi)
{
    const __m256 l = _mm256_unpacklo_ps(a, b), h = _mm256_unpackhi_ps(a, b);
    *lo = _mm256_permute2f128_ps(l, h, 0x20);
    *hi = _mm256_permute2f128_ps(l, h, 0x31);
}
INLINE __m256i lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
INLINE vec load_n(const float *s, int n)
{
    return _mm256_maskload_ps(s, lanes(n));
}
INLINE void store_n(float *d, int n, vec v)
{
    _mm256_maskstore_ps(d, lanes(n), v);
}
#endif

INLINE vec load_upto(const float *s, int n)
{
    return n >= VL ? vload(s) : load_n(s, n);
}

INLINE void store_upto(float *d, int n, vec v)
{
    if (n >= VL)
        vstore(d, v);
    else if (n > 0)
        store_n(d, n, v);
}

/* B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] across VL tiles at a time: x0 x2 are the even
 * columns from 2 t and 2 t + 2, x1 x3 the odd ones. */
static void input_across2(int n, const float *s, float *d, ptrdiff_t ds)
{
    for (int t = 0; t < n; t += VL) {
        const float *x = s + 2 * t;
        const vec a = vload(x), b = vload(x + VL), c = vload(x + 2), e = vload(x + 2 + VL);
        const vec x0 = even(a, b), x1 = odd(a, b), x2 = even(c, e), x3 = odd(c, e);
        store_upto(d + t, n - t, vsub(x0, x2));
        store_upto(d + ds + t, n - t, vadd(x1, x2));
        store_upto(d + 2 * ds + t, n - t, vsub(x2, x1));
        store_upto(d + 3 * ds + t, n - t, vsub(x1, x3));
    }
}

/* The fused epilogue on a vector of n values (conv.h): the residual added, then the clamps
 * (nn_conv_vclamp: maxps / minps are the scalar selects, NaN and signed zeros included). */
INLINE vec epilogue_vec(const nn_conv_epilogue *e, vec v, const float *r, int n)
{
    if (r)
        v = vadd(v, load_upto(r, n));
    return nn_conv_vclamp(e, v);
}

/* A^T = [1 1 1 0; 0 1 -1 -1] down the columns, then across, VL tiles at a time; the two outputs
 * of a tile row interleaved into 2 VL columns of each output row. */
static void output_row2(const float *mo, ptrdiff_t plane, int tiles, int cols, float bias,
                        float *const y[2], const float *const res[2],
                        const nn_conv_epilogue *e, float *scratch)
{
    (void)scratch;
    const vec vb = vset1(bias);
    for (int t = 0; t < tiles; t += VL) {
        const int n = tiles - t;
        vec s[2][4];
        for (int b = 0; b < 4; ++b) {
            const vec m0 = load_upto(mo + b * plane + t, n);
            const vec m1 = load_upto(mo + (4 + b) * plane + t, n);
            const vec m2 = load_upto(mo + (8 + b) * plane + t, n);
            const vec m3 = load_upto(mo + (12 + b) * plane + t, n);
            s[0][b] = vadd(vadd(m0, m1), m2);
            s[1][b] = vsub(vsub(m1, m2), m3);
        }
        const int left = cols - 2 * t;         /* columns of the row from 2 t on */
        for (int i = 0; i < 2 && y[i]; ++i) {
            const vec y0 = vadd(vb, vadd(vadd(s[i][0], s[i][1]), s[i][2]));
            const vec y1 = vadd(vb, vsub(vsub(s[i][1], s[i][2]), s[i][3]));
            vec lo, hi;
            interleave(y0, y1, &lo, &hi);
            float *d = y[i] + 2 * t;
            const float *r = e && res[i] ? res[i] + 2 * t : NULL;
            store_upto(d, left, e ? epilogue_vec(e, lo, r, left) : lo);
            if (left > VL)
                store_upto(d + VL, left - VL, e ? epilogue_vec(e, hi, r ? r + VL : NULL, left - VL)
                                                : hi);
        }
    }
}
