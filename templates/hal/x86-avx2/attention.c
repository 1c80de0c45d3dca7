/* Scaled dot-product attention for the x86 targets (AVX2 + FMA); see attention.h.
 *
 * A row of scores at a time, as the generic kernel, with the common layouts vectorised:
 * - scores: kt contiguous along its columns (8 keys per vector, k outer), or along its rows
 *   (8 dot products at once along k, reduced together); q's row is read in place when
 *   contiguous, else copied to a small stack buffer;
 * - softmax: nn_vexp.h's vector exp, the sum in double;
 * - output: v and y contiguous along their columns, up to 32 columns in registers at a time.
 * Any other stride takes the scalar loops. The walk over the (outer, head, row) query rows and
 * their split over the thread pool: nn_attention_driver.h. */
#include "attention.h"

#include <math.h>

#include "nn_pool.h"
#include "nn_vexp.h"

/* The eight sums of a[0..7]'s lanes, in order. */
static inline __m256 reduce8(const __m256 a[8])
{
    const __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20),
                         _mm256_permute2f128_ps(s0, s1, 0x31));
}

/* --- one row -------------------------------------------------------------------------------- */
/* scores[j] = scale * sum over k of qi[k] * kt[k][j]; qi contiguous. */
static void row_scores(const float *qi, const float *kt, size_t kt_row, size_t kt_col,
                       float *scores, size_t skv, size_t d, float scale)
{
    const __m256 vscale = _mm256_set1_ps(scale);
    size_t j = 0;
    if (kt_col == 1) {                       /* keys along kt's rows: 32 keys per pass */
        for (; j + 32 <= skv; j += 32) {
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                             _mm256_setzero_ps()};
            for (size_t k = 0; k < d; ++k) {
                const __m256 a = _mm256_broadcast_ss(qi + k);
                const float *row = kt + k * kt_row + j;
                for (int u = 0; u < 4; ++u)
                    acc[u] = _mm256_fmadd_ps(a, _mm256_loadu_ps(row + 8 * u), acc[u]);
            }
            for (int u = 0; u < 4; ++u)
                _mm256_storeu_ps(scores + j + 8 * u, _mm256_mul_ps(acc[u], vscale));
        }
        for (; j + 8 <= skv; j += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (size_t k = 0; k < d; ++k)
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(qi + k),
                                      _mm256_loadu_ps(kt + k * kt_row + j), acc);
            _mm256_storeu_ps(scores + j, _mm256_mul_ps(acc, vscale));
        }
    } else if (kt_row == 1) {                /* each key contiguous along k: 8 dot products */
        const size_t d8 = d / 8 * 8;
        for (; j + 8 <= skv; j += 8) {
            __m256 acc[8];
            for (int u = 0; u < 8; ++u)
                acc[u] = _mm256_setzero_ps();
            for (size_t k = 0; k < d8; k += 8) {
                const __m256 a = _mm256_loadu_ps(qi + k);
                for (int u = 0; u < 8; ++u)
                    acc[u] = _mm256_fmadd_ps(a, _mm256_loadu_ps(kt + (j + u) * kt_col + k), acc[u]);
            }
            __m256 sum = reduce8(acc);
            if (d8 < d) {
                float tail[8];
                for (int u = 0; u < 8; ++u) {
                    const float *col = kt + (j + u) * kt_col;
                    float t = 0;
                    for (size_t k = d8; k < d; ++k)
                        t += qi[k] * col[k];
                    tail[u] = t;
                }
                sum = _mm256_add_ps(sum, _mm256_loadu_ps(tail));
            }
            _mm256_storeu_ps(scores + j, _mm256_mul_ps(sum, vscale));
        }
    }
    for (; j < skv; ++j) {                   /* what is left, any strides */
        const float *col = kt + j * kt_col;
        float acc = 0;
        for (size_t k = 0; k < d; ++k)
            acc += qi[k] * col[k * kt_row];
        scores[j] = acc * scale;
    }
}

/* scores <- softmax(scores) */
static void row_softmax(float *scores, size_t skv)
{
    float top = scores[0];
    size_t j = 0;
    if (skv >= 8) {
        __m256 m = _mm256_loadu_ps(scores);
        for (j = 8; j + 8 <= skv; j += 8)
            m = _mm256_max_ps(_mm256_loadu_ps(scores + j), m);
        float lanes[8];
        _mm256_storeu_ps(lanes, m);
        top = lanes[0];
        for (int u = 1; u < 8; ++u)
            top = lanes[u] > top ? lanes[u] : top;
    }
    for (; j < skv; ++j)
        top = scores[j] > top ? scores[j] : top;
    const __m256 vtop = _mm256_set1_ps(top);
    __m256d sum4 = _mm256_setzero_pd();
    for (j = 0; j + 8 <= skv; j += 8) {
        const __m256 e = nn_exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + j), vtop));
        _mm256_storeu_ps(scores + j, e);
        sum4 = _mm256_add_pd(sum4, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        sum4 = _mm256_add_pd(sum4, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, sum4);
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    if (j < skv) {
        float in[8] = {0}, out[8];
        for (size_t u = 0; j + u < skv; ++u)
            in[u] = scores[j + u] - top;
        _mm256_storeu_ps(out, nn_exp8(_mm256_loadu_ps(in)));
        for (size_t u = 0; j + u < skv; ++u) {
            scores[j + u] = out[u];
            sum += out[u];
        }
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    for (j = 0; j + 8 <= skv; j += 8)
        _mm256_storeu_ps(scores + j, _mm256_mul_ps(_mm256_loadu_ps(scores + j), inv));
    for (; j < skv; ++j)
        scores[j] *= (float)(1.0 / sum);
}

/* yi[c] = sum over j of p[j] * v[j][c] */
static void row_output(const float *p, const float *v, size_t v_row, size_t v_col, float *yi,
                       size_t y_col, size_t skv, size_t dv)
{
    size_t c = 0;
    if (v_col == 1 && y_col == 1) {
        for (; c + 32 <= dv; c += 32) {
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                             _mm256_setzero_ps()};
            for (size_t j = 0; j < skv; ++j) {
                const __m256 pj = _mm256_broadcast_ss(p + j);
                const float *vj = v + j * v_row + c;
                for (int u = 0; u < 4; ++u)
                    acc[u] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * u), acc[u]);
            }
            for (int u = 0; u < 4; ++u)
                _mm256_storeu_ps(yi + c + 8 * u, acc[u]);
        }
        for (; c + 8 <= dv; c += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (size_t j = 0; j < skv; ++j)
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j),
                                      _mm256_loadu_ps(v + j * v_row + c), acc);
            _mm256_storeu_ps(yi + c, acc);
        }
    }
    for (; c < dv; ++c) {                    /* what is left, any strides */
        float acc = 0;
        for (size_t j = 0; j < skv; ++j)
            acc += p[j] * v[j * v_row + c * v_col];
        yi[c * y_col] = acc;
    }
}

#include "nn_attention_driver.h"
