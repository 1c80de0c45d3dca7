/* Matrix-vector products with a packed matrix for the arm64-neon target; see gemv.h.
 * A panel's MR = 8 rows are 2 vectors: per k, 2 multiply-adds by one element of x. Four
 * partial sums per vector (k mod 4, each k-ascending) hide the multiply-add latency and are
 * added in a fixed order at the end of each KC block, so a row's sum depends on the operands
 * only. Rows are split between threads in whole panels. */
#include "gemv.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>

#include "gemm.h"
#include "nn_pool.h"

#define MR NN_GEMM_MR
#define KC NN_GEMM_KC

#if MR != 8
#error "the arm64-neon GEMV reads panels of 2 vectors: NN_GEMM_MR 8"
#endif

typedef struct {
    int m, k, n, tasks;
    const float *a, *x;
    ptrdiff_t ldx, ldy;
    float *y;
} gemv_job;

/* acc[v] += rows [4v, 4v + 4) of one KC block of a panel times x[0 .. kc). */
static inline void panel_block(int kc, const float *restrict panel, const float *restrict x,
                               float32x4_t acc[2])
{
    float32x4_t s[4][2];
    for (int u = 0; u < 4; ++u)
        s[u][0] = s[u][1] = vdupq_n_f32(0.0f);
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        const float32x4_t xv = vld1q_f32(x + p);
        const float *a = panel + p * MR;
        s[0][0] = vfmaq_laneq_f32(s[0][0], vld1q_f32(a), xv, 0);
        s[0][1] = vfmaq_laneq_f32(s[0][1], vld1q_f32(a + 4), xv, 0);
        s[1][0] = vfmaq_laneq_f32(s[1][0], vld1q_f32(a + MR), xv, 1);
        s[1][1] = vfmaq_laneq_f32(s[1][1], vld1q_f32(a + MR + 4), xv, 1);
        s[2][0] = vfmaq_laneq_f32(s[2][0], vld1q_f32(a + 2 * MR), xv, 2);
        s[2][1] = vfmaq_laneq_f32(s[2][1], vld1q_f32(a + 2 * MR + 4), xv, 2);
        s[3][0] = vfmaq_laneq_f32(s[3][0], vld1q_f32(a + 3 * MR), xv, 3);
        s[3][1] = vfmaq_laneq_f32(s[3][1], vld1q_f32(a + 3 * MR + 4), xv, 3);
    }
    for (; p < kc; ++p) {
        s[0][0] = vfmaq_n_f32(s[0][0], vld1q_f32(panel + p * MR), x[p]);
        s[0][1] = vfmaq_n_f32(s[0][1], vld1q_f32(panel + p * MR + 4), x[p]);
    }
    for (int v = 0; v < 2; ++v)
        acc[v] = vaddq_f32(acc[v], vaddq_f32(vaddq_f32(s[0][v], s[1][v]),
                                             vaddq_f32(s[2][v], s[3][v])));
}

/* Rows [i0, i1) (multiples of MR but the last) of every column. */
static void gemv_rows(const gemv_job *g, int i0, int i1)
{
    const int mp = (g->m + MR - 1) / MR * MR;
    for (int j = 0; j < g->n; ++j) {
        const float *x = g->x + j * g->ldx;
        float *y = g->y + j * g->ldy;
        for (int i = i0; i < i1; i += MR) {
            float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
            for (int p0 = 0; p0 < g->k; p0 += KC) {
                const int kc = g->k - p0 < KC ? g->k - p0 : KC;
                panel_block(kc, g->a + (size_t)p0 * mp + (size_t)i * kc, x + p0, acc);
            }
            const int rows = i1 - i < MR ? i1 - i : MR;
            if (rows == MR) {
                vst1q_f32(y + i, acc[0]);
                vst1q_f32(y + i + 4, acc[1]);
            } else {
                float out[MR];
                vst1q_f32(out, acc[0]);
                vst1q_f32(out + 4, acc[1]);
                for (int r = 0; r < rows; ++r)
                    y[i + r] = out[r];
            }
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
