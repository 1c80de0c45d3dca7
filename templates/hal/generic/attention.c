/* Scaled dot-product attention: a row of scores at a time, never the whole score matrix. */
#include "attention.h"

/* scores[j] = scale * (qi . kt[:, j]), k outermost so the inner loop runs along kt's rows. */
static void row_scores(const float *qi, const float *kt, float *scores, size_t skv, size_t d,
                       float scale) {
    for (size_t j = 0; j < skv; ++j)
        scores[j] = 0;
    for (size_t k = 0; k < d; ++k) {
        const float a = qi[k];
        const float *row = kt + k * skv;
        for (size_t j = 0; j < skv; ++j)
            scores[j] += a * row[j];
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

void NN_FN(attention_f32)(const float *q, const float *kt, const float *v, const float *mask,
                          float *y, float *scores, size_t outer, size_t heads, size_t sq,
                          size_t skv, size_t d, size_t dv, float scale, size_t ms_o,
                          size_t ms_h, size_t ms_i, size_t ms_j) {
    for (size_t o = 0; o < outer; ++o) {
        for (size_t h = 0; h < heads; ++h) {
            for (size_t i = 0; i < sq; ++i) {
                row_scores(q + i * d, kt, scores, skv, d, scale);
                if (mask) {
                    const float *m = mask + o * ms_o + h * ms_h + i * ms_i;
                    for (size_t j = 0; j < skv; ++j)
                        scores[j] += m[j * ms_j];
                }
                row_softmax(scores, skv);
                float *yi = y + i * dv;
                for (size_t c = 0; c < dv; ++c)
                    yi[c] = 0;
                for (size_t j = 0; j < skv; ++j) {
                    const float p = scores[j];
                    const float *vj = v + j * dv;
                    for (size_t c = 0; c < dv; ++c)
                        yi[c] += p * vj[c];
                }
            }
            q += sq * d;
            kt += d * skv;
            v += skv * dv;
            y += sq * dv;
        }
    }
}
