/* The default LSTM cell for the x86 targets (AVX2 + FMA), 8 units per vector; see recurrent.h.
 * exp: n ln2 split in two constants and a degree-6 polynomial on |r| <= ln2 / 2 (about 1 ulp;
 * below -87.3 it gives 0). sigmoid(v) = 1 / (1 + exp(-v)). tanh: an odd polynomial for
 * |v| < 0.625, else 1 - 2 / (exp(2 |v|) + 1) with v's sign (a few ulp; absolute error below
 * 1e-7). The last hidden % 8 units go through the same vector code from a padded copy. */
#include "recurrent.h"

#include <immintrin.h>

static inline __m256 exp8(__m256 x)
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

static inline __m256 sigmoid8(__m256 v)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

static inline __m256 tanh8(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    const __m256 a = _mm256_andnot_ps(sign, v);
    const __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f),
                                     _mm256_add_ps(exp8(_mm256_add_ps(a, a)), one)));
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

/* Units [j, j + 8) of the rows (x, r, c, h start at unit j; gates H apart). */
static inline void cell8(const float *x, const float *r, float *c, float *h, size_t H)
{
#define NN_GATE(k) _mm256_add_ps(_mm256_loadu_ps(x + (k) * H), _mm256_loadu_ps(r + (k) * H))
    const __m256 gi = sigmoid8(NN_GATE(0)), go = sigmoid8(NN_GATE(1));
    const __m256 gf = sigmoid8(NN_GATE(2)), gc = tanh8(NN_GATE(3));
#undef NN_GATE
    const __m256 cn = _mm256_fmadd_ps(gf, _mm256_loadu_ps(c), _mm256_mul_ps(gi, gc));
    _mm256_storeu_ps(c, cn);
    _mm256_storeu_ps(h, _mm256_mul_ps(go, tanh8(cn)));
}

void NN_FN(lstm_cell_f32)(const float *x, const float *r, float *h, float *c, float *y,
                          size_t hidden)
{
    const size_t H = hidden;
    size_t j = 0;
    for (; j + 8 <= H; j += 8)
        cell8(x + j, r + j, c + j, h + j, H);
    if (j < H) {                             /* the tail, padded to one vector */
        float xs[32] = {0}, rs[32] = {0}, cs[8] = {0}, hs[8];
        const size_t n = H - j;
        for (size_t u = 0; u < n; ++u) {
            for (size_t k = 0; k < 4; ++k) {
                xs[8 * k + u] = x[k * H + j + u];
                rs[8 * k + u] = r[k * H + j + u];
            }
            cs[u] = c[j + u];
        }
        cell8(xs, rs, cs, hs, 8);
        for (size_t u = 0; u < n; ++u) {
            c[j + u] = cs[u];
            h[j + u] = hs[u];
        }
    }
    if (y)
        for (j = 0; j < H; ++j)
            y[j] = h[j];
}
