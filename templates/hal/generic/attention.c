/* Scaled dot-product attention: a row of scores at a time, never the whole score matrix. Every
 * sum runs over its index in increasing order whatever the strides, so the result does not
 * depend on the layout. */
#include "attention.h"

/* scores[j] = scale * sum over k of qi[k] * kt[k][j] */
static void row_scores(const float *qi, size_t q_col, const float *kt, size_t kt_row,
                       size_t kt_col, float *scores, size_t skv, size_t d, float scale) {
    if (kt_col == 1) {                     /* kt's rows are contiguous: along them, k outermost */
        for (size_t j = 0; j < skv; ++j)
            scores[j] = 0;
        for (size_t k = 0; k < d; ++k) {
            const float a = qi[k * q_col];
            const float *row = kt + k * kt_row;
            for (size_t j = 0; j < skv; ++j)
                scores[j] += a * row[j];
        }
    } else {                               /* one dot product per column */
        for (size_t j = 0; j < skv; ++j) {
            const float *col = kt + j * kt_col;
            float acc = 0;
            for (size_t k = 0; k < d; ++k)
                acc += qi[k * q_col] * col[k * kt_row];
            scores[j] = acc;
        }
    }
    for (size_t j = 0; j < skv; ++j)
        scores[j] *= scale;
}

/* scores <- softmax(scores) */
static void row_softmax(float *scores, size_t skv) {
    float top = scores[0];
    for (size_t j = 1; j < skv; ++j)
        top = scores[j] > top ? scores[j] : top;
    double sum = 0;
    for (size_t j = 0; j < skv; ++j) {
        scores[j] = expf(scores[j] - top);
        sum += scores[j];
    }
    const float inv = (float)(1.0 / sum);
    for (size_t j = 0; j < skv; ++j)
        scores[j] *= inv;
}

/* yi[c] = sum over j of p[j] * v[j][c] */
static void row_output(const float *p, const float *v, size_t v_row, size_t v_col, float *yi,
                       size_t y_col, size_t skv, size_t dv) {
    for (size_t c = 0; c < dv; ++c)
        yi[c * y_col] = 0;
    for (size_t j = 0; j < skv; ++j) {
        const float pj = p[j];
        const float *vj = v + j * v_row;
        if (v_col == 1 && y_col == 1) {
            for (size_t c = 0; c < dv; ++c)
                yi[c] += pj * vj[c];
        } else {
            for (size_t c = 0; c < dv; ++c)
                yi[c * y_col] += pj * vj[c * v_col];
        }
    }
}

void NN_FN(attention_f32)(const float *q, const float *kt, const float *v, const float *mask,
                          float *y, float *scores, const size_t *layout, float scale) {
    const size_t *L = layout;
    const size_t sq = L[NN_ATT_SQ], skv = L[NN_ATT_SKV], d = L[NN_ATT_D], dv = L[NN_ATT_DV];
    for (size_t o = 0; o < L[NN_ATT_OUTER]; ++o) {
        for (size_t h = 0; h < L[NN_ATT_HEADS]; ++h) {
#define NN_ATT_AT(base, which) ((base) + o * L[(which)] + h * L[(which) + 1])
            const float *qh = NN_ATT_AT(q, NN_ATT_Q), *kth = NN_ATT_AT(kt, NN_ATT_KT);
            const float *vh = NN_ATT_AT(v, NN_ATT_V);
            const float *mh = mask ? NN_ATT_AT(mask, NN_ATT_MASK) : NULL;
            float *yh = NN_ATT_AT(y, NN_ATT_Y);
#undef NN_ATT_AT
            for (size_t i = 0; i < sq; ++i) {
                row_scores(qh + i * L[NN_ATT_Q + 2], L[NN_ATT_Q + 3], kth, L[NN_ATT_KT + 2],
                           L[NN_ATT_KT + 3], scores, skv, d, scale);
                if (mh) {
                    const float *mi = mh + i * L[NN_ATT_MASK + 2];
                    for (size_t j = 0; j < skv; ++j)
                        scores[j] += mi[j * L[NN_ATT_MASK + 3]];
                }
                row_softmax(scores, skv);
                row_output(scores, vh, L[NN_ATT_V + 2], L[NN_ATT_V + 3], yh + i * L[NN_ATT_Y + 2],
                           L[NN_ATT_Y + 3], skv, dv);
            }
        }
    }
}
