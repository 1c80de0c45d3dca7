/* Scaled dot-product attention for the x86 targets (AVX2 + FMA); see attention.h.
 *
 * A row of scores at a time, as the generic kernel, with the common layouts vectorised:
 * - scores: kt contiguous along its columns (8 keys per vector, k outer), or along its rows
 *   (8 dot products at once along k, reduced together); q's row is read in place when
 *   contiguous, else copied to a small stack buffer;
 * - softmax: a vector exp (Cephes-style: n ln2 split in two constants, degree-6 polynomial on
 *   |r| <= ln2 / 2, about 1 ulp; inputs below -87.3 give 0, NaN stays NaN), the sum in double;
 * - output: v and y contiguous along their columns, up to 32 columns in registers at a time.
 * Any other stride takes the scalar loops. Rows are independent, so the work is split over
 * (outer, head, row) with nothing shared: results are the same at every thread count. */
#include "attention.h"

#include <immintrin.h>
#include <math.h>

#include "nn_pool.h"

#define NN_ATT_QBUF 512                 /* q rows up to this long are gathered when strided */

/* --- vector exp ----------------------------------------------------------------------------- */
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
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + j), vtop));
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
        _mm256_storeu_ps(out, exp8(_mm256_loadu_ps(in)));
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

/* --- the split ------------------------------------------------------------------------------ */
typedef struct {
    const float *q, *kt, *v, *mask;
    float *y;
    const size_t *L;
    float scale;
    int tasks;
} att_job;

/* Rows [begin, end) of all outer x heads x sq rows. */
static void att_rows(const att_job *job, size_t begin, size_t end, float *scores)
{
    const size_t *L = job->L;
    const size_t sq = L[NN_ATT_SQ], skv = L[NN_ATT_SKV], d = L[NN_ATT_D], dv = L[NN_ATT_DV];
    const size_t heads = L[NN_ATT_HEADS];
    float qbuf[NN_ATT_QBUF];
    for (size_t row = begin; row < end; ++row) {
        const size_t i = row % sq, h = row / sq % heads, o = row / sq / heads;
#define NN_ATT_AT(base, which) \
    ((base) + o * L[(which)] + h * L[(which) + 1] + i * L[(which) + 2])
        const float *qi = NN_ATT_AT(job->q, NN_ATT_Q);
        const float *kth = job->kt + o * L[NN_ATT_KT] + h * L[NN_ATT_KT + 1];
        const float *vh = job->v + o * L[NN_ATT_V] + h * L[NN_ATT_V + 1];
        float *yi = NN_ATT_AT(job->y, NN_ATT_Y);
        const float *mi = job->mask ? NN_ATT_AT(job->mask, NN_ATT_MASK) : NULL;
#undef NN_ATT_AT
        const size_t q_col = L[NN_ATT_Q + 3];
        if (q_col != 1 && d <= NN_ATT_QBUF) {
            for (size_t k = 0; k < d; ++k)
                qbuf[k] = qi[k * q_col];
            qi = qbuf;
        }
        if (q_col == 1 || d <= NN_ATT_QBUF) {
            row_scores(qi, kth, L[NN_ATT_KT + 2], L[NN_ATT_KT + 3], scores, skv, d, job->scale);
        } else {                             /* a long strided q row: scalar */
            for (size_t j = 0; j < skv; ++j) {
                float acc = 0;
                for (size_t k = 0; k < d; ++k)
                    acc += qi[k * q_col] * kth[k * L[NN_ATT_KT + 2] + j * L[NN_ATT_KT + 3]];
                scores[j] = acc * job->scale;
            }
        }
        if (mi) {
            const size_t m_col = L[NN_ATT_MASK + 3];
            for (size_t j = 0; j < skv; ++j)
                scores[j] += mi[j * m_col];
        }
        row_softmax(scores, skv);
        row_output(scores, vh, L[NN_ATT_V + 2], L[NN_ATT_V + 3], yi, L[NN_ATT_Y + 3], skv, dv);
    }
}

static void att_task(const void *ctx, int t, void *scratch)
{
    const att_job *job = ctx;
    const size_t *L = job->L;
    int begin, end;
    nn_tile_range((int)(L[NN_ATT_OUTER] * L[NN_ATT_HEADS] * L[NN_ATT_SQ]), job->tasks, 1, t,
                  &begin, &end);
    att_rows(job, (size_t)begin, (size_t)end, scratch);
}

void NN_FN(attention_f32)(const float *q, const float *kt, const float *v, const float *mask,
                          float *y, float *scores, const size_t *layout, float scale)
{
    const size_t rows = layout[NN_ATT_OUTER] * layout[NN_ATT_HEADS] * layout[NN_ATT_SQ];
    const int tasks = nn_task_count(2.0 * (double)rows * (double)layout[NN_ATT_SKV] *
                                    (double)(layout[NN_ATT_D] + layout[NN_ATT_DV]));
    const att_job job = {q, kt, v, mask, y, layout, scale, tasks};
    if (tasks <= 1 || rows > (size_t)1 << 30 ||
        layout[NN_ATT_SKV] * sizeof(float) > NN_POOL_SCRATCH_BYTES) {
        att_rows(&job, 0, rows, scores);
        return;
    }
    NN_FN(parallel_for)(tasks, att_task, &job, scores, layout[NN_ATT_SKV] * sizeof(float));
}
