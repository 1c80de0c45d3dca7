/* Scaled dot-product attention for the arm64-neon target; see attention.h.
 *
 * A row of scores at a time, as the generic kernel, with the common layouts vectorised:
 * - scores: kt contiguous along its columns (16 keys per pass in 4 vectors, k outer), or along
 *   its rows (4 dot products at once along k, reduced together with pairwise adds); q's row is
 *   read in place when contiguous, else copied to a small stack buffer;
 * - softmax: a vector exp (Cephes-style: n ln2 split in two constants, degree-6 polynomial on
 *   |r| <= ln2 / 2, about 1 ulp; inputs below -87.3 give 0, NaN stays NaN), the sum in double;
 * - output: v and y contiguous along their columns, 16 columns in registers at a time.
 * Any other stride takes the scalar loops. Rows are independent, so the work is split over
 * (outer, head, row) with nothing shared: results are the same at every thread count. */
#include "attention.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>
#include <math.h>

#include "nn_pool.h"

#define NN_ATT_QBUF 512                 /* q rows up to this long are gathered when strided */

typedef float32x4_t vec;

/* --- vector exp ----------------------------------------------------------------------------- */
static inline vec exp4(vec x)
{
    const uint32x4_t under = vcltq_f32(x, vdupq_n_f32(-87.33654f));
    x = vminq_f32(vdupq_n_f32(88.3762626647949f), vmaxq_f32(vdupq_n_f32(-88.3762626647949f), x));
    const vec n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));     /* NaN stays NaN */
    vec r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    vec p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const vec y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
}

/* --- one row -------------------------------------------------------------------------------- */
/* scores[j] = scale * sum over k of qi[k] * kt[k][j]; qi contiguous. */
static void row_scores(const float *qi, const float *kt, size_t kt_row, size_t kt_col,
                       float *scores, size_t skv, size_t d, float scale)
{
    size_t j = 0;
    if (kt_col == 1) {                       /* keys along kt's rows: 16 keys per pass */
        for (; j + 16 <= skv; j += 16) {
            vec acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                          vdupq_n_f32(0.0f)};
            for (size_t k = 0; k < d; ++k) {
                const float a = qi[k];
                const float *row = kt + k * kt_row + j;
                for (int u = 0; u < 4; ++u)
                    acc[u] = vfmaq_n_f32(acc[u], vld1q_f32(row + 4 * u), a);
            }
            for (int u = 0; u < 4; ++u)
                vst1q_f32(scores + j + 4 * u, vmulq_n_f32(acc[u], scale));
        }
        for (; j + 4 <= skv; j += 4) {
            vec acc = vdupq_n_f32(0.0f);
            for (size_t k = 0; k < d; ++k)
                acc = vfmaq_n_f32(acc, vld1q_f32(kt + k * kt_row + j), qi[k]);
            vst1q_f32(scores + j, vmulq_n_f32(acc, scale));
        }
    } else if (kt_row == 1) {                /* each key contiguous along k: 4 dot products */
        const size_t d4 = d / 4 * 4;
        for (; j + 4 <= skv; j += 4) {
            vec acc[4];
            for (int u = 0; u < 4; ++u)
                acc[u] = vdupq_n_f32(0.0f);
            for (size_t k = 0; k < d4; k += 4) {
                const vec a = vld1q_f32(qi + k);
                for (int u = 0; u < 4; ++u)
                    acc[u] = vfmaq_f32(acc[u], a, vld1q_f32(kt + (j + u) * kt_col + k));
            }
            vec sum = vpaddq_f32(vpaddq_f32(acc[0], acc[1]), vpaddq_f32(acc[2], acc[3]));
            if (d4 < d) {
                float tail[4];
                for (int u = 0; u < 4; ++u) {
                    const float *col = kt + (j + u) * kt_col;
                    float t = 0;
                    for (size_t k = d4; k < d; ++k)
                        t += qi[k] * col[k];
                    tail[u] = t;
                }
                sum = vaddq_f32(sum, vld1q_f32(tail));
            }
            vst1q_f32(scores + j, vmulq_n_f32(sum, scale));
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
    if (skv >= 4) {
        vec m = vld1q_f32(scores);
        for (j = 4; j + 4 <= skv; j += 4)
            m = vmaxnmq_f32(vld1q_f32(scores + j), m);
        top = vmaxnmvq_f32(m);
    }
    for (; j < skv; ++j)
        top = scores[j] > top ? scores[j] : top;
    const vec vtop = vdupq_n_f32(top);
    float64x2_t sum_lo = vdupq_n_f64(0.0), sum_hi = vdupq_n_f64(0.0);
    for (j = 0; j + 4 <= skv; j += 4) {
        const vec e = exp4(vsubq_f32(vld1q_f32(scores + j), vtop));
        vst1q_f32(scores + j, e);
        sum_lo = vaddq_f64(sum_lo, vcvt_f64_f32(vget_low_f32(e)));
        sum_hi = vaddq_f64(sum_hi, vcvt_high_f64_f32(e));
    }
    double sum = (vgetq_lane_f64(sum_lo, 0) + vgetq_lane_f64(sum_lo, 1)) +
                 (vgetq_lane_f64(sum_hi, 0) + vgetq_lane_f64(sum_hi, 1));
    if (j < skv) {
        float in[4] = {0}, out[4];
        for (size_t u = 0; j + u < skv; ++u)
            in[u] = scores[j + u] - top;
        vst1q_f32(out, exp4(vld1q_f32(in)));
        for (size_t u = 0; j + u < skv; ++u) {
            scores[j + u] = out[u];
            sum += out[u];
        }
    }
    const float inv = (float)(1.0 / sum);
    for (j = 0; j + 4 <= skv; j += 4)
        vst1q_f32(scores + j, vmulq_n_f32(vld1q_f32(scores + j), inv));
    for (; j < skv; ++j)
        scores[j] *= inv;
}

/* yi[c] = sum over j of p[j] * v[j][c] */
static void row_output(const float *p, const float *v, size_t v_row, size_t v_col, float *yi,
                       size_t y_col, size_t skv, size_t dv)
{
    size_t c = 0;
    if (v_col == 1 && y_col == 1) {
        for (; c + 16 <= dv; c += 16) {
            vec acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                          vdupq_n_f32(0.0f)};
            for (size_t j = 0; j < skv; ++j) {
                const float pj = p[j];
                const float *vj = v + j * v_row + c;
                for (int u = 0; u < 4; ++u)
                    acc[u] = vfmaq_n_f32(acc[u], vld1q_f32(vj + 4 * u), pj);
            }
            for (int u = 0; u < 4; ++u)
                vst1q_f32(yi + c + 4 * u, acc[u]);
        }
        for (; c + 4 <= dv; c += 4) {
            vec acc = vdupq_n_f32(0.0f);
            for (size_t j = 0; j < skv; ++j)
                acc = vfmaq_n_f32(acc, vld1q_f32(v + j * v_row + c), p[j]);
            vst1q_f32(yi + c, acc);
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
