/* The target-independent part of SGEMV (see gemv.h), included once by a target's gemv.c right
 * after gemm.h: the walk over columns and MR-row panels, and the split of rows over the thread
 * pool (nn_pool.h) in whole panels, so a row's sum is the same at any thread count.
 *
 * The including file defines gemv_panel, declared below: its micro-kernel. */
#ifndef NN_GEMV_DRIVER_H
#define NN_GEMV_DRIVER_H

#include "gemv.h"
#include "nn_pool.h"

#define MR NN_GEMM_MR
#define KC NN_GEMM_KC
/* A GEMV flop in GEMM flops when sizing tasks: each weight is read once, so the product runs
 * at about a third of the GEMM's rate (1024 x 256 from L2: 7.8 us on x86-avx512, 67 GFLOP/s).
 * An LSTM step's 1024 x 256 product then splits over 2 threads instead of running on one. */
#define GEMV_FLOP_COST 3.0

/* y[r] = sum over p < k of A(i + r, p) x[p] for r < rows (at most MR): one panel of the packed
 * A (m rounded up to mp rows), k ascending within a KC block, blocks in order. */
static void gemv_panel(int k, int mp, int i, const float *a_packed, const float *x, int rows,
                       float *y);

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
        for (int i = i0; i < i1; i += MR)
            gemv_panel(g->k, mp, i, g->a, x, i1 - i < MR ? i1 - i : MR, y + i);
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
    const int tasks = nn_balanced_tasks((m + MR - 1) / MR,
                                        nn_task_count(GEMV_FLOP_COST * 2.0 * m * (double)k * n));
    const gemv_job g = {m, k, n, tasks, a_packed, x, ldx, ldy, y};
    if (tasks <= 1)
        gemv_rows(&g, 0, m);
    else
        NN_FN(parallel_for)(tasks, gemv_task, &g, NULL, 0);
}

#endif /* NN_GEMV_DRIVER_H */
