/* Matrix products for the arm64-neon target; see gemm.h for the packed layouts.
 *
 * The register tile is two vectors of A rows (8) times three vectors of B columns (12): each
 * k step loads 2 + 3 vectors and does 24 lane FMAs (vfmaq_laneq_f32), in a fixed order (k
 * ascending within a KC block, blocks in order), so results depend on the operands only. Tiles
 * with fewer rows or columns use only the vectors that hold data; a single column (a
 * matrix-vector product) has its own kernel. Threads (nn_pool.h) take ranges of columns (each
 * packing its own B) or, B packed once per block, ranges of rows; bounds are multiples of the
 * register tile, so every element's sum is the same at any thread count. */
#include "gemm.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>

#include "nn_pool.h"

typedef float32x4_t vec;
#define VL 4

#define MR NN_GEMM_MR
#define NR NN_GEMM_NR
#define KC NN_GEMM_KC
#define MC NN_GEMM_MC
#define NC NN_GEMM_NC

#if MR != 2 * VL || NR != 3 * VL
#error "the arm64-neon micro-kernel is 2 x 3 vectors: NN_GEMM_MR 8, NN_GEMM_NR 12"
#endif

#define INLINE static inline __attribute__((always_inline))

enum init { INIT_ZERO, INIT_BIAS, INIT_ADD };

static int min_int(int a, int b) { return a < b ? a : b; }

/* --- packing ---------------------------------------------------------------------------------- */
/* r[t] = row t of the 4 x 4 block whose columns are c[0..3]. */
INLINE void transpose4(const vec c[4], vec r[4])
{
    const vec t0 = vtrn1q_f32(c[0], c[1]), t1 = vtrn2q_f32(c[0], c[1]);
    const vec t2 = vtrn1q_f32(c[2], c[3]), t3 = vtrn2q_f32(c[2], c[3]);
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

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
    if (cs == 1) {                         /* rows in reading order: 3 vectors per panel row */
        for (int p = 0; p < kc; ++p) {
            const float *row = src->data + (k0 + p) * rs + n0;
            float *dst = panels + p * NR;
            for (int jr = 0; jr < full; jr += NR, dst += panel_step) {
                vst1q_f32(dst, vld1q_f32(row + jr));
                vst1q_f32(dst + VL, vld1q_f32(row + jr + VL));
                vst1q_f32(dst + 2 * VL, vld1q_f32(row + jr + 2 * VL));
            }
            for (int j = 0; j < NR && full < nc; ++j)
                dst[j] = full + j < nc ? row[full + j] : 0.0f;
        }
        return;
    }
    for (int jr = 0; jr < nc; jr += NR) {  /* columns in reading order (B^T row-major) */
        const int nr = min_int(NR, nc - jr);
        const float *b = src->data + k0 * rs + (n0 + jr) * cs;
        float *dst = panels + (size_t)jr * kc;
        int j_done = 0, p_done = 0;        /* 4 x 4 blocks of contiguous columns: transposed */
        if (rs == 1) {
            j_done = nr / VL * VL;
            p_done = kc / VL * VL;
            for (int j = 0; j < j_done; j += VL) {
                for (int p = 0; p < p_done; p += VL) {
                    const vec cols[4] = {vld1q_f32(b + j * cs + p), vld1q_f32(b + (j + 1) * cs + p),
                                         vld1q_f32(b + (j + 2) * cs + p),
                                         vld1q_f32(b + (j + 3) * cs + p)};
                    vec r[4];
                    transpose4(cols, r);
                    for (int u = 0; u < VL; ++u)
                        vst1q_f32(dst + (p + u) * NR + j, r[u]);
                }
            }
        }
        for (int j = 0; j < NR; ++j) {
            const int p0 = j < j_done ? p_done : 0;      /* what the blocks left */
            if (j < nr) {
                for (int p = p0; p < kc; ++p)
                    dst[p * NR + j] = b[p * rs + j * cs];
            } else {
                for (int p = p0; p < kc; ++p)
                    dst[p * NR + j] = 0.0f;
            }
        }
    }
}

/* --- micro-kernels ---------------------------------------------------------------------------- */
/* Columns 4q .. 4q + 3 of the tile: lane l of B vector bq times the nv vectors of A rows. */
#define FMA_LANES(q, bq)                                                         \
    do {                                                                         \
        acc[4 * (q) + 0][0] = vfmaq_laneq_f32(acc[4 * (q) + 0][0], a0, bq, 0);   \
        acc[4 * (q) + 1][0] = vfmaq_laneq_f32(acc[4 * (q) + 1][0], a0, bq, 1);   \
        acc[4 * (q) + 2][0] = vfmaq_laneq_f32(acc[4 * (q) + 2][0], a0, bq, 2);   \
        acc[4 * (q) + 3][0] = vfmaq_laneq_f32(acc[4 * (q) + 3][0], a0, bq, 3);   \
        if (nv > 1) {                                                            \
            acc[4 * (q) + 0][1] = vfmaq_laneq_f32(acc[4 * (q) + 0][1], a1, bq, 0); \
            acc[4 * (q) + 1][1] = vfmaq_laneq_f32(acc[4 * (q) + 1][1], a1, bq, 1); \
            acc[4 * (q) + 2][1] = vfmaq_laneq_f32(acc[4 * (q) + 2][1], a1, bq, 2); \
            acc[4 * (q) + 3][1] = vfmaq_laneq_f32(acc[4 * (q) + 3][1], a1, bq, 3); \
        }                                                                        \
    } while (0)

/* acc[j][v] = sum over p of A rows [4v, 4v + 4) times B column j, for the nv vectors of rows
 * and nb vectors of columns that hold data (the others stay zero). */
INLINE void kernel_tile(int kc, int nv, int nb, const float *restrict a,
                        const float *restrict b, vec out[NR][2])
{
    vec acc[NR][2];                       /* a local array: the compiler keeps it in registers */
    for (int j = 0; j < NR; ++j)
        acc[j][0] = acc[j][1] = vdupq_n_f32(0.0f);
    for (int p = 0; p < kc; ++p) {
        const vec a0 = vld1q_f32(a);
        const vec a1 = nv > 1 ? vld1q_f32(a + VL) : vdupq_n_f32(0.0f);
        const vec b0 = vld1q_f32(b);
        FMA_LANES(0, b0);
        if (nb > 1) {
            const vec b1 = vld1q_f32(b + VL);
            FMA_LANES(1, b1);
        }
        if (nb > 2) {
            const vec b2 = vld1q_f32(b + 2 * VL);
            FMA_LANES(2, b2);
        }
        a += MR;
        b += NR;
    }
    for (int j = 0; j < NR; ++j) {
        out[j][0] = acc[j][0];
        out[j][1] = acc[j][1];
    }
}

/* One column of B (a matrix-vector product): four partial sums over k mod 4 hide the FMA
 * latency; they are added in a fixed order. */
INLINE void kernel_column(int kc, int nv, const float *restrict a, const float *restrict b,
                          vec acc[NR][2])
{
    vec s[4][2];
    for (int u = 0; u < 4; ++u)
        s[u][0] = s[u][1] = vdupq_n_f32(0.0f);
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        for (int u = 0; u < 4; ++u) {
            const float bp = b[(p + u) * NR];
            s[u][0] = vfmaq_n_f32(s[u][0], vld1q_f32(a + (p + u) * MR), bp);
            if (nv > 1)
                s[u][1] = vfmaq_n_f32(s[u][1], vld1q_f32(a + (p + u) * MR + VL), bp);
        }
    }
    for (; p < kc; ++p) {
        const float bp = b[p * NR];
        s[0][0] = vfmaq_n_f32(s[0][0], vld1q_f32(a + p * MR), bp);
        if (nv > 1)
            s[0][1] = vfmaq_n_f32(s[0][1], vld1q_f32(a + p * MR + VL), bp);
    }
    for (int v = 0; v < 2; ++v)
        acc[0][v] = vaddq_f32(vaddq_f32(s[0][v], s[1][v]), vaddq_f32(s[2][v], s[3][v]));
}

/* out = init + r along a row of C: init is `*out` (add), the row's bias, or 0. */
INLINE void store_row(float *out, vec r, enum init init, float bias)
{
    if (init == INIT_ADD)
        r = vaddq_f32(vld1q_f32(out), r);
    else if (init == INIT_BIAS)
        r = vaddq_f32(vdupq_n_f32(bias), r);
    vst1q_f32(out, r);
}

/* C tile (mr x nr) = init + alpha * acc. Vector stores down the columns when C's columns are
 * contiguous (rsc == 1), along the rows through 4 x 4 transposes when its rows are (csc == 1),
 * for the whole vectors of the tile; the rest goes through a local buffer. */
static void store_tile(int mr, int nr, vec acc[NR][2], float alpha, enum init init,
                       const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    for (int j = 0; j < nr; ++j) {
        acc[j][0] = vmulq_n_f32(acc[j][0], alpha);
        acc[j][1] = vmulq_n_f32(acc[j][1], alpha);
    }
    int rows_done = 0, cols_done = 0;     /* the part of the tile stored with vectors */
    if (rsc == 1 && mr >= VL) {
        rows_done = mr / VL * VL;
        cols_done = nr;
        for (int j = 0; j < nr; ++j) {
            for (int v = 0; v < rows_done / VL; ++v) {
                float *out = c + j * csc + v * VL;
                vec r = acc[j][v];
                if (init == INIT_ADD)
                    r = vaddq_f32(vld1q_f32(out), r);
                else if (init == INIT_BIAS)
                    r = vaddq_f32(vld1q_f32(bias + v * VL), r);
                vst1q_f32(out, r);
            }
        }
    } else if (csc == 1 && mr >= VL && nr >= VL) {
        rows_done = mr / VL * VL;
        cols_done = nr / VL * VL;
        for (int v = 0; v < rows_done / VL; ++v) {
            for (int q = 0; q < cols_done / VL; ++q) {
                const vec cols[4] = {acc[4 * q][v], acc[4 * q + 1][v], acc[4 * q + 2][v],
                                     acc[4 * q + 3][v]};
                vec r[4];
                transpose4(cols, r);
                for (int t = 0; t < VL; ++t) {
                    const int i = v * VL + t;
                    store_row(c + i * rsc + 4 * q, r[t], init, init == INIT_BIAS ? bias[i] : 0.0f);
                }
            }
        }
    }
    if (rows_done == mr && cols_done == nr)
        return;
    float tile[NR][MR];
    for (int j = 0; j < nr; ++j) {
        vst1q_f32(tile[j], acc[j][0]);
        vst1q_f32(tile[j] + VL, acc[j][1]);
    }
    for (int i = 0; i < mr; ++i) {
        float *row = c + i * rsc;
        const int j0 = i < rows_done ? cols_done : 0;      /* what the vectors left */
        if (init == INIT_ADD) {
            for (int j = j0; j < nr; ++j)
                row[j * csc] += tile[j][i];
        } else {
            const float b0 = init == INIT_BIAS ? bias[i] : 0.0f;
            for (int j = j0; j < nr; ++j)
                row[j * csc] = b0 + tile[j][i];
        }
    }
}

/* One MR x NR tile of C from an A panel and a B panel. */
static void tile(int kc, int mr, int nr, const float *a, const float *b, float alpha,
                 enum init init, const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    vec acc[NR][2];
    const int nv = mr > VL ? 2 : 1, nb = (nr + VL - 1) / VL;
    if (nr == 1) {
        if (nv == 2)
            kernel_column(kc, 2, a, b, acc);
        else
            kernel_column(kc, 1, a, b, acc);
    } else if (nv == 2) {
        if (nb == 3)
            kernel_tile(kc, 2, 3, a, b, acc);
        else if (nb == 2)
            kernel_tile(kc, 2, 2, a, b, acc);
        else
            kernel_tile(kc, 2, 1, a, b, acc);
    } else {
        if (nb == 3)
            kernel_tile(kc, 1, 3, a, b, acc);
        else if (nb == 2)
            kernel_tile(kc, 1, 2, a, b, acc);
        else
            kernel_tile(kc, 1, 1, a, b, acc);
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

/* Double precision: the generic target's plain loops (no packing, k ascending). */
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
