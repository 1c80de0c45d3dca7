/* The target-independent part of a SIMD target's attention kernel (see attention.h): the walk
 * over the (outer, head, row) query rows, the strided-q gather, the mask, and the split over
 * the thread pool. Rows are independent, so the work is split over them with nothing shared:
 * results are the same at every thread count. A target's attention.c defines, before including
 * this header (after nn_pool.h):
 *   static void row_scores(const float *qi, const float *kt, size_t kt_row, size_t kt_col,
 *                          float *scores, size_t skv, size_t d, float scale)
 *       scores[j] = scale * sum over k of qi[k] * kt[k][j]; qi contiguous;
 *   static void row_softmax(float *scores, size_t skv)      scores <- softmax(scores);
 *   static void row_output(const float *p, const float *v, size_t v_row, size_t v_col,
 *                          float *yi, size_t y_col, size_t skv, size_t dv)
 *       yi[c] = sum over j of p[j] * v[j][c]. */
#ifndef NN_ATTENTION_DRIVER_H
#define NN_ATTENTION_DRIVER_H

#define NN_ATT_QBUF 512                 /* q rows up to this long are gathered when strided */

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

#endif /* NN_ATTENTION_DRIVER_H */
