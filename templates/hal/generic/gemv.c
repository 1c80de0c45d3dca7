/* Matrix-vector products with a packed matrix, portable C; see gemv.h. The MR-wide inner loops
 * have a constant trip count, so the compiler vectorises them for the target. */
#include "gemv.h"

#include "gemm.h"
#include "nn_pool.h"

#define MR NN_GEMM_MR
#define KC NN_GEMM_KC

typedef struct {
    int m, k, n, tasks;
    const float *a, *x;
    ptrdiff_t ldx, ldy;
    float *y;
} gemv_job;

/* Rows [i0, i1) (multiples of MR but the last) of every column. */
static void gemv_rows(const gemv_job *g, int i0, int i1)
{
    const int mp = (g->m + MR - 1) / MR * MR;
    for (int j = 0; j < g->n; ++j) {
        const float *x = g->x + j * g->ldx;
        float *y = g->y + j * g->ldy;
        for (int i = i0; i < i1; i += MR) {
            float acc[MR];
            for (int r = 0; r < MR; ++r)
                acc[r] = 0.0f;
            for (int p0 = 0; p0 < g->k; p0 += KC) {
                const int kc = g->k - p0 < KC ? g->k - p0 : KC;
                const float *panel = g->a + (size_t)p0 * mp + (size_t)i * kc;
                for (int p = 0; p < kc; ++p) {
                    const float xp = x[p0 + p];
                    for (int r = 0; r < MR; ++r)
                        acc[r] += panel[p * MR + r] * xp;
                }
            }
            const int rows = i1 - i < MR ? i1 - i : MR;
            for (int r = 0; r < rows; ++r)
                y[i + r] = acc[r];
        }
    }
}

static void gemv_task(const void *ctx, int t, void *scratch)
{
    const gemv_job *g = ctx;
    int i0, i1;
    (void)scratch;
    nn_tile_range(g->m, g->tasks, MR, t, &i0, &i1);
    gemv_rows(g, i0, i1);
}

void NN_FN(sgemv_packed)(int m, int k, int n, const float *a_packed, const float *x,
                         ptrdiff_t ldx, float *y, ptrdiff_t ldy)
{
    const int tasks = nn_task_count(2.0 * m * (double)k * n);
    const gemv_job g = {m, k, n, tasks, a_packed, x, ldx, ldy, y};
    if (tasks <= 1)
        gemv_rows(&g, 0, m);
    else
        NN_FN(parallel_for)(tasks, gemv_task, &g, NULL, 0);
}
