/* Scaled dot-product attention for the arm64-neon target; see attention.h.
 *
 * A row of scores at a time, as the generic kernel, with the common layouts vectorised:
 * - scores: kt contiguous along its columns (16 keys per pass in 4 vectors, k outer), or along
 *   its rows (4 dot products at once along k, reduced together with pairwise adds); q's row is
 *   read in place when contiguous, else copied to a small stack buffer;
 * - softmax: nn_vexp.h's vector exp, the sum in double;
 * - output: v and y contiguous along their columns, 16 columns in registers at a time.
 * Any other stride takes the scalar loops. The walk over the (outer, head, row) query rows and
 * their split over the thread pool: nn_attention_driver.h. */
#include "attention.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>
#include <math.h>

#include "nn_pool.h"
#include "nn_vexp.h"

typedef float32x4_t vec;

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
        const vec e = nn_exp4(vsubq_f32(vld1q_f32(scores + j), vtop));
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
        vst1q_f32(out, nn_exp4(vld1q_f32(in)));
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

#include "nn_attention_driver.h"
