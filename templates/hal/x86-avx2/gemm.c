/* Matrix products for the x86 targets; see gemm.h for the packed layouts.
 *
 * One source for x86-avx2 (ymm, 8 floats) and x86-avx512 (zmm, 16 floats): the vector width
 * follows the target's compile flags (__AVX512F__), the blocking follows its gemm.h. The
 * register tile is two vectors of A rows times NR broadcast B columns, accumulated with FMA in
 * a fixed order (k ascending within a KC block, blocks in order), so results depend on the
 * operands only. */
#include "gemm.h"

#include "nn_pool.h"

#include <immintrin.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define VL 16
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vfma _mm512_fmadd_ps
#define vadd _mm512_add_ps
#define vmul _mm512_mul_ps
#define vzero _mm512_setzero_ps
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec;
#define VL 8
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vfma _mm256_fmadd_ps
#define vadd _mm256_add_ps
#define vmul _mm256_mul_ps
#define vzero _mm256_setzero_ps
#else
#error "the x86 gemm kernels need -mavx2 -mfma (x86-avx2) or -mavx512f (x86-avx512)"
#endif

#define MR NN_GEMM_MR
#define NR NN_GEMM_NR
#define KC NN_GEMM_KC
#define MC NN_GEMM_MC
#define NC NN_GEMM_NC

#if MR != 2 * VL
#error "NN_GEMM_MR must be two vectors"
#endif

#define INLINE static inline __attribute__((always_inline))

enum init { INIT_ZERO, INIT_BIAS, INIT_ADD };

static int min_int(int a, int b) { return a < b ? a : b; }

/* --- packing ---------------------------------------------------------------------------------- */
void NN_FN(sgemm_pack_a)(int m, int k, const float *a, ptrdiff_t rs, ptrdiff_t cs, float *packed)
{
    const int mp = (m + MR - 1) / MR * MR;
    for (int pc = 0; pc < k; pc += KC) {
        const int kc = min_int(KC, k - pc);
        for (int ir = 0; ir < mp; ir += MR) {
            float *dst = packed + (size_t)pc * mp + (size_t)ir * kc;
            const int mr = min_int(MR, m - ir);
            for (int p = 0; p < kc; ++p) {
                const float *col = a + (pc + p) * cs + ir * rs;
                for (int i = 0; i < MR; ++i)
                    dst[p * MR + i] = i < mr ? col[i * rs] : 0.0f;
            }
        }
    }
}

/* B from a strided matrix: element (p, j) at data[p * row_stride + j * col_stride]. */
static void pack_dense(const nn_gemm_source *src, int k0, int kc, int n0, int nc, float *panels)
{
    const ptrdiff_t rs = src->row_stride, cs = src->col_stride;
    const ptrdiff_t panel_step = (ptrdiff_t)kc * NR;
    const int full = nc / NR * NR;
    if (cs == 1) {                         /* rows in reading order */
        for (int p = 0; p < kc; ++p) {
            const float *row = src->data + (k0 + p) * rs + n0;
            float *dst = panels + p * NR;
            for (int jr = 0; jr < full; jr += NR, dst += panel_step)
                for (int j = 0; j < NR; ++j)
                    dst[j] = row[jr + j];
            for (int j = 0; j < NR && full < nc; ++j)
                dst[j] = full + j < nc ? row[full + j] : 0.0f;
        }
        return;
    }
    for (int jr = 0; jr < nc; jr += NR) {  /* columns in reading order (B^T row-major) */
        const int nr = min_int(NR, nc - jr);
        const float *b = src->data + k0 * rs + (n0 + jr) * cs;
        float *dst = panels + (size_t)jr * kc;
        for (int j = 0; j < NR; ++j) {
            if (j < nr) {
                for (int p = 0; p < kc; ++p)
                    dst[p * NR + j] = b[p * rs + j * cs];
            } else {
                for (int p = 0; p < kc; ++p)
                    dst[p * NR + j] = 0.0f;
            }
        }
    }
}

/* --- micro-kernels ---------------------------------------------------------------------------- */
/* acc[j][v] = sum over p of A rows [v * VL, v * VL + VL) times B column j, for the nv vectors
 * of rows that hold data (nv = 1 when the tile has at most VL rows). */
INLINE void kernel_tile(int kc, int nv, const float *restrict a, const float *restrict b,
                        vec acc[NR][2])
{
    for (int j = 0; j < NR; ++j)
        acc[j][0] = acc[j][1] = vzero();
    for (int p = 0; p < kc; ++p) {
        const vec a0 = vload(a);
        const vec a1 = nv > 1 ? vload(a + VL) : vzero();
        for (int j = 0; j < NR; ++j) {
            const vec bj = vset1(b[j]);
            acc[j][0] = vfma(a0, bj, acc[j][0]);
            if (nv > 1)
                acc[j][1] = vfma(a1, bj, acc[j][1]);
        }
        a += MR;
        b += NR;
    }
}

/* One column of B (a matrix-vector product): four partial sums over k mod 4 hide the FMA
 * latency; they are added in a fixed order. */
INLINE void kernel_column(int kc, int nv, const float *restrict a, const float *restrict b,
                          vec acc[NR][2])
{
    vec s[4][2];
    for (int u = 0; u < 4; ++u)
        s[u][0] = s[u][1] = vzero();
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        for (int u = 0; u < 4; ++u) {
            const vec bp = vset1(b[(p + u) * NR]);
            s[u][0] = vfma(vload(a + (p + u) * MR), bp, s[u][0]);
            if (nv > 1)
                s[u][1] = vfma(vload(a + (p + u) * MR + VL), bp, s[u][1]);
        }
    }
    for (; p < kc; ++p) {
        const vec bp = vset1(b[p * NR]);
        s[0][0] = vfma(vload(a + p * MR), bp, s[0][0]);
        if (nv > 1)
            s[0][1] = vfma(vload(a + p * MR + VL), bp, s[0][1]);
    }
    for (int v = 0; v < 2; ++v)
        acc[0][v] = vadd(vadd(s[0][v], s[1][v]), vadd(s[2][v], s[3][v]));
}

/* C tile (mr x nr) = init + alpha * acc. Columns of C are vector stores when C's rows are
 * contiguous (rsc == 1); otherwise the tile goes through a local buffer. */
static void store_tile(int mr, int nr, vec acc[NR][2], float alpha, enum init init,
                       const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    const vec va = vset1(alpha);
    if (rsc == 1 && mr == MR) {
        const vec b0 = init == INIT_BIAS ? vload(bias) : vzero();
        const vec b1 = init == INIT_BIAS ? vload(bias + VL) : vzero();
        for (int j = 0; j < nr; ++j) {
            float *col = c + j * csc;
            const vec r0 = vmul(va, acc[j][0]), r1 = vmul(va, acc[j][1]);
            if (init == INIT_ADD) {
                vstore(col, vadd(vload(col), r0));
                vstore(col + VL, vadd(vload(col + VL), r1));
            } else {
                vstore(col, vadd(b0, r0));
                vstore(col + VL, vadd(b1, r1));
            }
        }
        return;
    }
    float tile[NR][MR];
    for (int j = 0; j < nr; ++j) {
        vstore(tile[j], vmul(va, acc[j][0]));
        vstore(tile[j] + VL, vmul(va, acc[j][1]));
    }
    for (int i = 0; i < mr; ++i) {
        float *row = c + i * rsc;
        if (init == INIT_ADD) {
            for (int j = 0; j < nr; ++j)
                row[j * csc] += tile[j][i];
        } else {
            const float b0 = init == INIT_BIAS ? bias[i] : 0.0f;
            for (int j = 0; j < nr; ++j)
                row[j * csc] = b0 + tile[j][i];
        }
    }
}

/* One MR x NR tile of C from an A panel and a B panel. */
static void tile(int kc, int mr, int nr, const float *a, const float *b, float alpha,
                 enum init init, const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    vec acc[NR][2];
    if (nr == 1) {
        if (mr > VL)
            kernel_column(kc, 2, a, b, acc);
        else
            kernel_column(kc, 1, a, b, acc);
    } else if (mr > VL) {
        kernel_tile(kc, 2, a, b, acc);
    } else {
        kernel_tile(kc, 1, a, b, acc);
    }
    store_tile(mr, nr, acc, alpha, init, bias, c, rsc, csc);
}

/* --- drivers ---------------------------------------------------------------------------------- */
/* One product C = init + alpha * A B, and how it is split (see sgemm_source). */
typedef struct {
    int m, n, k, tiles;
    float alpha;
    const float *a_packed, *bias;
    const nn_gemm_source *b;
    bool accumulate;
    float *c;
    ptrdiff_t rsc, csc;
    int jc, nc, pc, kc;       /* shared mode: the current packed block of B */
    float *panels;
} gemm_job;

/* Rows [i0, i1) of C x columns [jc, jc + nc) for depth block [pc, pc + kc), B packed in
 * `panels`; i0 a multiple of MR and jc of NR, so every register tile (hence every element's
 * sum) is the one an unsplit product computes. */
static void gemm_rows(const gemm_job *g, int i0, int i1, int jc, int nc, int pc, int kc,
                      const float *panels)
{
    const int mp = (g->m + MR - 1) / MR * MR;
    const enum init init = pc > 0 || g->accumulate ? INIT_ADD : g->bias ? INIT_BIAS : INIT_ZERO;
    const float *a_block = g->a_packed + (size_t)pc * mp;
    for (int ic = i0; ic < i1; ic += MC) {
        const int i_end = min_int(ic + MC, i1);
        for (int jr = 0; jr < nc; jr += NR) {
            const int nr = min_int(NR, nc - jr);
            for (int ir = ic; ir < i_end; ir += MR)
                tile(kc, min_int(MR, g->m - ir), nr, a_block + (size_t)ir * kc,
                     panels + (size_t)jr * kc, g->alpha, init, g->bias ? g->bias + ir : NULL,
                     g->c + ir * g->rsc + (jc + jr) * g->csc, g->rsc, g->csc);
        }
    }
}

/* All rows x columns [j0, j1), packing B into `work` block by block. */
static void gemm_columns(const gemm_job *g, int j0, int j1, float *work)
{
    for (int jc = j0; jc < j1; jc += NC) {
        const int nc = min_int(NC, j1 - jc);
        for (int pc = 0; pc < g->k; pc += KC) {
            const int kc = min_int(KC, g->k - pc);
            g->b->pack(g->b, pc, kc, jc, nc, work);
            gemm_rows(g, 0, g->m, jc, nc, pc, kc, work);
        }
    }
}

/* Column mode: task t is a range of columns with its own copy of B's blocks. */
static void column_task(const void *ctx, int t, void *work)
{
    const gemm_job *g = ctx;
    int j0, j1;
    nn_tile_range(g->n, g->tiles, NR, t, &j0, &j1);
    if (j0 < j1)
        gemm_columns(g, j0, j1, work);
}

/* Shared mode: the tasks first pack ranges of panels of one block of B, then compute ranges
 * of rows from it. */
static void pack_task(const void *ctx, int t, void *scratch)
{
    const gemm_job *g = ctx;
    int q0, q1;
    (void)scratch;
    nn_tile_range(g->nc, g->tiles, NR, t, &q0, &q1);
    if (q0 < q1)
        g->b->pack(g->b, g->pc, g->kc, g->jc + q0, q1 - q0, g->panels + (size_t)q0 * g->kc);
}

static void row_task(const void *ctx, int t, void *scratch)
{
    const gemm_job *g = ctx;
    int i0, i1;
    (void)scratch;
    nn_tile_range(g->m, g->tiles, MR, t, &i0, &i1);
    if (i0 < i1)
        gemm_rows(g, i0, i1, g->jc, g->nc, g->pc, g->kc, g->panels);
}

/* Split by the shape alone: column mode (no shared state, A read once per task) when A is
 * small or rows are too few to share; else shared mode (B packed once, A read once). */
void NN_FN(sgemm_source)(int m, int n, int k, float alpha, const float *a_packed,
                         const nn_gemm_source *b, const float *bias, bool accumulate,
                         float *c, ptrdiff_t rsc, ptrdiff_t csc, float *work)
{
    if (k == 0) {                          /* an empty sum: C = init */
        for (int i = 0; i < m && !accumulate; ++i)
            for (int j = 0; j < n; ++j)
                c[i * rsc + j * csc] = bias ? bias[i] : 0.0f;
        return;
    }
    gemm_job g = {m, n, k, 1, alpha, a_packed, bias, b, accumulate, c, rsc, csc,
                  0, 0, 0, 0, work};
    const int tasks = nn_task_count(2.0 * m * (double)n * k);
    const int by_n = min_int(tasks, (n + NR - 1) / NR), by_m = min_int(tasks, (m + MR - 1) / MR);
    const bool small_a = (size_t)m * (size_t)k <= ((size_t)1 << 17);
    if (tasks == 1 || (by_n < 2 && by_m < 2)) {
        gemm_columns(&g, 0, n, work);
    } else if (small_a ? by_n >= by_m : by_m < 2) {
        g.tiles = by_n;
        const int width = ((n + NR - 1) / NR + by_n - 1) / by_n * NR;   /* widest tile */
        NN_FN(parallel_for)(by_n, column_task, &g, work,
                            NN_GEMM_WORK_FLOATS(width) * sizeof(float));
    } else {
        for (g.jc = 0; g.jc < n; g.jc += NC) {
            g.nc = min_int(NC, n - g.jc);
            for (g.pc = 0; g.pc < k; g.pc += KC) {
                g.kc = min_int(KC, k - g.pc);
                g.tiles = min_int(by_m, (g.nc + NR - 1) / NR);
                NN_FN(parallel_for)(g.tiles, pack_task, &g, NULL, 0);
                g.tiles = by_m;
                NN_FN(parallel_for)(by_m, row_task, &g, NULL, 0);
            }
        }
    }
}

void NN_FN(sgemm)(int m, int n, int k, float alpha, const float *a_packed,
                  const float *b, ptrdiff_t rsb, ptrdiff_t csb,
                  const float *bias, bool accumulate, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                  float *work)
{
    const nn_gemm_source src = {pack_dense, b, rsb, csb, NULL};
    NN_FN(sgemm_source)(m, n, k, alpha, a_packed, &src, bias, accumulate, c, rsc, csc, work);
}

void NN_FN(dgemm)(int m, int n, int k, double alpha,
                  const double *a, ptrdiff_t rsa, ptrdiff_t csa,
                  const double *b, ptrdiff_t rsb, ptrdiff_t csb,
                  const double *bias, bool accumulate, double *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    for (int i = 0; i < m; ++i) {
        for (int j = 0; j < n; ++j) {
            double sum = 0.0;
            for (int p = 0; p < k; ++p)
                sum += a[i * rsa + p * csa] * b[p * rsb + j * csb];
            double *out = c + i * rsc + j * csc;
            *out = (accumulate ? *out : bias ? bias[i] : 0.0) + alpha * sum;
        }
    }
}
