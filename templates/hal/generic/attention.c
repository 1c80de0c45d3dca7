/* Scaled dot-product attention: a row of scores at a time, never the whole score matrix. Every
 * sum runs over its index in increasing order whatever the strides, so the result does not
 * depend on the layout. */
#include "attention.h"

#include "nn_pool.h"

/* scores[j] = scale * sum over k of qi[k] * kt[k][j]; kt's rows are contiguous, so the inner
 * loop runs along them (k outermost, each sum still in increasing k). */
static void row_scores(const float *qi, size_t q_col, const float *kt, size_t kt_row,
                       float *restrict scores, size_t skv, size_t d, float scale) {
    for (size_t j = 0; j < skv; ++j)
        scores[j] = 0;
    for (size_t k = 0; k < d; ++k) {
        const float a = qi[k * q_col];
        const float *restrict row = kt + k * kt_row;
        for (size_t j = 0; j < skv; ++j)
            scores[j] += a * row[j];
    }
    for (size_t j = 0; j < skv; ++j)
        scores[j] *= scale;
}

/* packed[k][j] = kt[k][j] for a kt whose columns are not contiguous (K read through the head
 * split's transpose): once per head, so row_scores always runs along contiguous rows. */
static void pack_kt(const float *kt, size_t kt_row, size_t kt_col, float *restrict packed,
                    size_t skv, size_t d) {
    for (size_t k = 0; k < d; ++k)
        for (size_t j = 0; j < skv; ++j)
            packed[k * skv + j] = kt[k * kt_row + j * kt_col];
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
static void row_output(const float *p, const float *v, size_t v_row, size_t v_col,
                       float *restrict yi, size_t y_col, size_t skv, size_t dv) {
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

/* One task's work: the query rows [r0, r1) of the outer x heads x sq rows, each whole. */
typedef struct {
    const float *q, *kt, *v, *mask;
    float *y;
    const size_t *layout;
    float scale;
    size_t rows;
    int tiles;
} attention_job;

/* Scratch floats per task: a row of scores, and a packed kt when its columns are strided. */
static size_t scratch_floats(const size_t *L) {
    const size_t skv = L[NN_ATT_SKV];
    return skv + (L[NN_ATT_KT + 3] != 1 ? L[NN_ATT_D] * skv : 0);
}

static void attention_rows(const attention_job *j, size_t r0, size_t r1, float *scores) {
    const size_t *L = j->layout;
    const size_t sq = L[NN_ATT_SQ], heads = L[NN_ATT_HEADS], skv = L[NN_ATT_SKV];
    const size_t d = L[NN_ATT_D], pack = L[NN_ATT_KT + 3] != 1;
    float *packed = scores + skv;
    size_t head = (size_t)-1;                          /* o * heads + h of the kt in use */
    for (size_t r = r0; r < r1; ++r) {
        const size_t i = r % sq, h = r / sq % heads, o = r / sq / heads;
        const float *kt = j->kt + o * L[NN_ATT_KT] + h * L[NN_ATT_KT + 1];
        size_t kt_row = L[NN_ATT_KT + 2];
        if (pack) {
            if (head != r / sq)
                pack_kt(kt, kt_row, L[NN_ATT_KT + 3], packed, skv, d);
            head = r / sq;
            kt = packed;
            kt_row = skv;
        }
#define NN_ATT_AT(base, which) \
    ((base) + o * L[(which)] + h * L[(which) + 1] + i * L[(which) + 2])
        row_scores(NN_ATT_AT(j->q, NN_ATT_Q), L[NN_ATT_Q + 3], kt, kt_row, scores, skv, d,
                   j->scale);
        if (j->mask) {
            const float *mi = NN_ATT_AT(j->mask, NN_ATT_MASK);
            for (size_t c = 0; c < skv; ++c)
                scores[c] += mi[c * L[NN_ATT_MASK + 3]];
        }
        row_softmax(scores, skv);
        row_output(scores, j->v + o * L[NN_ATT_V] + h * L[NN_ATT_V + 1], L[NN_ATT_V + 2],
                   L[NN_ATT_V + 3], NN_ATT_AT(j->y, NN_ATT_Y), L[NN_ATT_Y + 3], skv,
                   L[NN_ATT_DV]);
#undef NN_ATT_AT
    }
}

static void attention_task(const void *ctx, int t, void *scratch) {
    const attention_job *j = ctx;
    int r0, r1;
    nn_tile_range((int)j->rows, j->tiles, 1, t, &r0, &r1);
    attention_rows(j, (size_t)r0, (size_t)r1, scratch);
}

/* Split over whole query rows: each row is computed the same way whichever task holds it, so
 * results are bit-identical at every thread count. */
void NN_FN(attention_f32)(const float *q, const float *kt, const float *v, const float *mask,
                          float *y, float *scores, const size_t *layout, float scale) {
    const size_t *L = layout;
    const size_t rows = L[NN_ATT_OUTER] * L[NN_ATT_HEADS] * L[NN_ATT_SQ];
    const double work = (double)rows * (double)L[NN_ATT_SKV] *
                        (2.0 * (double)(L[NN_ATT_D] + L[NN_ATT_DV]) + 5.0);
    const int tasks = nn_task_count(work);
    attention_job j = {q, kt, v, mask, y, layout, scale, rows,
                       (size_t)tasks < rows ? tasks : (int)(rows > 0 ? rows : 1)};
    NN_FN(parallel_for)(j.tiles, attention_task, &j, scores, scratch_floats(L) * sizeof(float));
}
