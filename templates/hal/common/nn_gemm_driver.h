/* The target-independent part of SGEMM (see nn_gemm.h), included once by a target's gemm.c
 * right after gemm.h: packing A, blocking over NC columns, KC depth and MC rows, the split of C
 * into register tiles over the thread pool (nn_pool.h), sgemm, and the plain dgemm.
 *
 * The including file defines the two functions declared below, its micro-kernel and its
 * packing of a strided B; they see MR, NR, KC, MC, NC, enum init and min_int from here. Task
 * bounds are multiples of the register tile, so every element's sum is the one an unsplit
 * product computes, at any thread count. */
#ifndef NN_GEMM_DRIVER_H
#define NN_GEMM_DRIVER_H

#include "nn_pool.h"

#define MR NN_GEMM_MR
#define NR NN_GEMM_NR
#define KC NN_GEMM_KC
#define MC NN_GEMM_MC
#define NC NN_GEMM_NC

enum init { INIT_ZERO, INIT_BIAS, INIT_ADD };

static int min_int(int a, int b) { return a < b ? a : b; }

/* Columns of B's last panel that the target's tile folds into the full panel before it (its
 * TAIL_COLUMNS, defined before this header; 0: none): a panel of one column re-reads A from L2
 * for a handful of multiply-adds (n = 49: a layer's 7x7 output, 4 panels and 1 column). */
#ifndef TAIL_COLUMNS
#define TAIL_COLUMNS 0
#endif

/* The columns of n's last panel when they are folded into the panel before it, else 0. Every
 * split of the columns (blocks, tasks) keeps them with that panel, so that the register tiles,
 * hence every element's sum, are the same at any thread count. */
static int folded_tail(int n)
{
    return n > NR && n % NR <= TAIL_COLUMNS ? n % NR : 0;
}

/* Register tiles across n columns: panels of NR, a folded tail counted with the one before. */
static int column_tiles(int n)
{
    return (n - folded_tail(n) + NR - 1) / NR;
}

/* --- what the target defines ------------------------------------------------------------------ */
/* B from a strided matrix (the nn_gemm_source packer of sgemm): rows [k0, k0 + kc) x columns
 * [n0, n0 + nc) of element (p, j) at data[p * row_stride + j * col_stride], as NR-wide panels. */
static void pack_dense(const nn_gemm_source *src, int k0, int kc, int n0, int nc, float *panels);

/* One mr x nr (at most MR x NR) tile of C = init + alpha * (A panel x B panel): a packed kc x MR
 * panel of A times a kc x NR panel of B, k ascending (nr up to NR + TAIL_COLUMNS: columns past
 * NR from the next panel, at b + kc * NR); C's element (i, j) at c[i * rsc + j * csc],
 * init the tile itself (INIT_ADD), bias[i] (INIT_BIAS) or 0; then, when epi is not NULL (the last
 * KC block), the epilogue, its residual's tile at res (C's strides; epilogue_value). Meanwhile
 * the pf_lines cache lines from pf on are prefetched into L2 (prefetch_lines; spread over the k
 * loop where it can be). */
static void tile(int kc, int mr, int nr, const float *a, const float *b, float alpha,
                 enum init init, const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                 const nn_gemm_epilogue *epi, const float *res, const char *pf, int pf_lines);

/* The epilogue of one element v of C (r: its residual, or NULL). */
static inline float epilogue_value(const nn_gemm_epilogue *e, float v, const float *r)
{
    if (r)
        v = v + *r;
    if (e->clamp & NN_GEMM_RELU)
        v = v > 0.0f ? v : 0.0f;
    if (e->clamp & NN_GEMM_MIN)
        v = v < e->lo ? e->lo : v;
    if (e->clamp & NN_GEMM_MAX)
        v = v > e->hi ? e->hi : v;
    return v;
}

/* The epilogue over an mr x nr tile of C already stored (targets without it in their stores). */
static void epilogue_tile(const nn_gemm_epilogue *e, int mr, int nr, float *c,
                                 ptrdiff_t rsc, ptrdiff_t csc, const float *res)
{
    for (int i = 0; e && i < mr; ++i)
        for (int j = 0; j < nr; ++j)
            c[i * rsc + j * csc] = epilogue_value(e, c[i * rsc + j * csc],
                                                  res ? res + i * rsc + j * csc : NULL);
}

/* Columns per packed block of B for n columns: as few blocks as NC allows, of near-equal
 * widths (multiples of NR), so that no block is a sliver that re-reads all of A; a folded tail
 * (folded_tail) goes with the last block. */
static int block_width(int n)
{
    const int tail = folded_tail(n), most = tail ? NC - NR : NC;   /* the last block <= NC */
    n -= tail;
    const int blocks = (n + most - 1) / most;
    return ((n + blocks - 1) / blocks + NR - 1) / NR * NR;
}

/* The width of the block at jc of [.., j1) in blocks of `width`: the rest when only a folded
 * tail (of the product's n columns) would be left after it. */
static int block_at(int jc, int j1, int n, int width)
{
    return j1 - jc <= width + (j1 == n ? folded_tail(n) : 0) ? j1 - jc : width;
}

/* --- packing A -------------------------------------------------------------------------------- */
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
    const float *b_packed;    /* B packed for the whole product (sgemm_packed), else NULL */
    const nn_gemm_epilogue *epi;   /* applied with the last KC block, or NULL */
} gemm_job;

/* The panels of B's block [pc, pc + kc) x [jc, jc + nc): in b_packed, else packed into work. */
static const float *b_block(const gemm_job *g, int jc, int nc, int pc, int kc, float *work)
{
    if (g->b_packed)
        return g->b_packed + (size_t)pc * ((g->n + NR - 1) / NR * NR) + (size_t)jc * kc;
    g->b->pack(g->b, pc, kc, jc, nc, work);
    return work;
}

/* `lines` cache lines from p on, prefetched into L2 (a hint: no effect on results; nothing
 * where the compiler has no prefetch builtin). */
static inline void prefetch_lines(const char *p, int lines)
{
#if defined(__GNUC__)
    for (int line = 0; line < lines; ++line)
        __builtin_prefetch(p + (size_t)line * 64, 0, 2);
#else
    (void)p, (void)lines;
#endif
}

/* Rows [i0, i1) of C x columns [jc, jc + nc) for depth block [pc, pc + kc), B packed in
 * `panels`; i0 a multiple of MR and jc of NR, so every register tile (hence every element's
 * sum) is the one an unsplit product computes. While the tiles of one MC block of A's rows
 * run, the next block (of this depth block, else the first of the next) is prefetched into L2
 * a slice per tile when B's block has at most AHEAD_PANELS panels: weights that come from
 * memory then arrive in step with the compute rather than in a burst at the start of each
 * block's first panel, which is most of the block's time when it has few panels (a layer's
 * 7x7 or 14x14 output: 1x1 convs with cold weights 10-25% faster). With many panels the
 * burst is a small part, and the prefetches cost more than they save when A is in L3. */
#define AHEAD_PANELS 24

/* Rows of A per L2 block when B's block has more than AHEAD_PANELS panels (a target's
 * NN_GEMM_MC_WIDE, else MC): each A block then meets many panels, and a taller block fetches
 * C's column pages and each panel of B fewer times (sgemm 1024^3); with few panels (a
 * matrix-vector product, a layer's 7x7 output) MC rows keep the next-block prefetch short. The
 * order of tiles only: every element's sum is the same. */
#ifdef NN_GEMM_MC_WIDE
#define MC_WIDE NN_GEMM_MC_WIDE
#else
#define MC_WIDE MC
#endif

static void gemm_rows(const gemm_job *g, int i0, int i1, int jc, int nc, int pc, int kc,
                      const float *panels)
{
    const int mp = (g->m + MR - 1) / MR * MR;
    const enum init init = pc > 0 || g->accumulate ? INIT_ADD : g->bias ? INIT_BIAS : INIT_ZERO;
    const float *a_block = g->a_packed + (size_t)pc * mp;
    const nn_gemm_epilogue *epi = pc + kc == g->k ? g->epi : NULL;
    const bool wide = (nc + NR - 1) / NR > AHEAD_PANELS;
    const int mc = wide ? MC_WIDE : MC;
    for (int ic = i0; ic < i1; ic += mc) {
        const int i_end = min_int(ic + mc, i1);
        const float *next = NULL;          /* the next block of A: rows [n0, n1), depth nk */
        int n0 = i_end, n1 = min_int(i_end + MC, i1), nk = kc;
        if (wide) {
            next = NULL;
        } else if (i_end < i1) {
            next = a_block;
        } else if (pc + kc < g->k) {
            nk = min_int(KC, g->k - pc - kc);
            n0 = i0;
            n1 = min_int(i0 + MC, i1);
            next = g->a_packed + (size_t)(pc + kc) * mp;
        }
        const int tiles = column_tiles(nc) * ((i_end - ic + MR - 1) / MR);
        const int lines = next ? (int)(((size_t)(n1 - n0 + MR - 1) / MR * MR * (size_t)nk
                                        * sizeof(float) + 63) / 64) : 0;
        const int per_tile = (lines + tiles - 1) / tiles;
        const char *pf = next ? (const char *)(next + (size_t)n0 * nk) : NULL;
        int done = 0;
        for (int jr = 0; jr < nc; ) {
            const int nr = nc - jr == NR + folded_tail(nc - jr) ? nc - jr : min_int(NR, nc - jr);
            for (int ir = ic; ir < i_end; ir += MR) {
                const int count = min_int(per_tile, lines - done);
                const ptrdiff_t at = ir * g->rsc + (jc + jr) * g->csc;
                tile(kc, min_int(MR, g->m - ir), nr, a_block + (size_t)ir * kc,
                     panels + (size_t)jr * kc, g->alpha, init, g->bias ? g->bias + ir : NULL,
                     g->c + at, g->rsc, g->csc, epi,
                     epi && epi->residual ? epi->residual + at : NULL,
                     count > 0 ? pf + (size_t)done * 64 : NULL, count > 0 ? count : 0);
                done += count > 0 ? count : 0;
            }
            jr += nr;
        }
    }
}

/* Rows [i0, i1) x columns [j0, j1), packing B into `work` block by block. */
static void gemm_block(const gemm_job *g, int i0, int i1, int j0, int j1, float *work)
{
    const int width = block_width(j1 - j0);
    for (int jc = j0; jc < j1; ) {
        const int nc = block_at(jc, j1, g->n, width);
        for (int pc = 0; pc < g->k; pc += KC) {
            const int kc = min_int(KC, g->k - pc);
            gemm_rows(g, i0, i1, jc, nc, pc, kc, b_block(g, jc, nc, pc, kc, work));
        }
        jc += nc;
    }
}

/* Column mode: task t is a range of columns with its own copy of B's blocks (whole panels; a
 * folded tail with the one before). */
static void column_task(const void *ctx, int t, void *work)
{
    const gemm_job *g = ctx;
    const int tail = folded_tail(g->n);
    int j0, j1;
    nn_tile_range(g->n - tail, g->tiles, NR, t, &j0, &j1);
    if (j0 < j1 && j1 == g->n - tail)
        j1 = g->n;
    if (j0 < j1)
        gemm_block(g, 0, g->m, j0, j1, work);
}

/* Narrow mode (n <= NR: one panel of B, a matrix-vector product or a small batch; or few
 * columns, n <= PRIVATE_B_COLUMNS, and rows to share): task t is a range of rows with its own
 * copy of B's blocks, so the whole product is one job. */
static void narrow_task(const void *ctx, int t, void *work)
{
    const gemm_job *g = ctx;
    int i0, i1;
    nn_tile_range(g->m, g->tiles, MR, t, &i0, &i1);
    if (i0 < i1)
        gemm_block(g, i0, i1, 0, g->n, work);
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
        gemm_rows(g, i0, i1, g->jc, g->nc, g->pc, g->kc,
                  g->b_packed ? b_block(g, g->jc, g->nc, g->pc, g->kc, NULL) : g->panels);
}

/* Columns up to which narrow mode beats shared mode: packing a KC block of B this wide again
 * in every task (~0.08 us per column) costs less than shared mode's two fork/joins per KC
 * block (~3.5 us each at 2 threads) and its reads of panels packed on another core. */
#define PRIVATE_B_COLUMNS 96

/* Split by the shape alone: narrow mode when B is one panel; column mode (no shared state, A
 * read once per task) when A is small or rows are too few to share; narrow mode again when B
 * is narrow; else shared mode (B packed once, A read once). B comes from `b`, or is b_packed
 * already. */
static void sgemm_run(int m, int n, int k, float alpha, const float *a_packed,
                      const nn_gemm_source *b, const float *b_packed, const float *bias,
                      bool accumulate, float *c, ptrdiff_t rsc, ptrdiff_t csc, float *work,
                      const nn_gemm_epilogue *epi)
{
    if (epi && !epi->residual && !epi->clamp)
        epi = NULL;
    if (k == 0) {                          /* an empty sum: C = init */
        for (int i = 0; i < m && !accumulate; ++i)
            for (int j = 0; j < n; ++j)
                c[i * rsc + j * csc] = bias ? bias[i] : 0.0f;
        epilogue_tile(epi, m, n, c, rsc, csc, epi ? epi->residual : NULL);
        return;
    }
    gemm_job g = {m, n, k, 1, alpha, a_packed, bias, b, accumulate, c, rsc, csc,
                  0, 0, 0, 0, work, b_packed, epi};
    const int tasks = nn_task_count(2.0 * m * (double)n * k);
    const int by_n = min_int(tasks, column_tiles(n)), by_m = min_int(tasks, (m + MR - 1) / MR);
    const bool small_a = (size_t)m * (size_t)k <= ((size_t)1 << 17);
    if (tasks == 1 || (by_n < 2 && by_m < 2)) {
        gemm_block(&g, 0, m, 0, n, work);
    } else if (n <= NR) {
        g.tiles = nn_balanced_tasks((m + MR - 1) / MR, by_m);
        NN_FN(parallel_for)(g.tiles, narrow_task, &g, b_packed ? NULL : work,
                            b_packed ? 0 : NN_GEMM_WORK_FLOATS(n) * sizeof(float));
    } else if (small_a ? by_n >= by_m : by_m < 2) {
        g.tiles = nn_balanced_tasks(column_tiles(n), by_n);
        const int width = (column_tiles(n) + g.tiles - 1) / g.tiles * NR   /* widest task */
                          + folded_tail(n);
        NN_FN(parallel_for)(g.tiles, column_task, &g, b_packed ? NULL : work,
                            b_packed ? 0 : NN_GEMM_WORK_FLOATS(width) * sizeof(float));
    } else if (n <= PRIVATE_B_COLUMNS && !b_packed) {    /* one task per thread: each packs B */
        g.tiles = nn_balanced_tasks((m + MR - 1) / MR, min_int(by_m, NN_FN(pool_threads)()));
        NN_FN(parallel_for)(g.tiles, narrow_task, &g, work,
                            NN_GEMM_WORK_FLOATS(n) * sizeof(float));
    } else {
        const int rows = nn_balanced_tasks((m + MR - 1) / MR, by_m);
        const int width = block_width(n);
        for (g.jc = 0; g.jc < n; g.jc += g.nc) {
            g.nc = block_at(g.jc, n, n, width);
            for (g.pc = 0; g.pc < k; g.pc += KC) {
                g.kc = min_int(KC, k - g.pc);
                g.tiles = min_int(rows, (g.nc + NR - 1) / NR);
                if (!b_packed)
                    NN_FN(parallel_for)(g.tiles, pack_task, &g, NULL, 0);
                g.tiles = rows;
                NN_FN(parallel_for)(rows, row_task, &g, NULL, 0);
            }
        }
    }
}

void NN_FN(sgemm_source)(int m, int n, int k, float alpha, const float *a_packed,
                         const nn_gemm_source *b, const float *bias, bool accumulate,
                         float *c, ptrdiff_t rsc, ptrdiff_t csc, float *work)
{
    sgemm_run(m, n, k, alpha, a_packed, b, NULL, bias, accumulate, c, rsc, csc, work, NULL);
}

void NN_FN(sgemm_source_epilogue)(int m, int n, int k, float alpha, const float *a_packed,
                                  const nn_gemm_source *b, const float *bias, bool accumulate,
                                  float *c, ptrdiff_t rsc, ptrdiff_t csc, float *work,
                                  const nn_gemm_epilogue *epilogue)
{
    sgemm_run(m, n, k, alpha, a_packed, b, NULL, bias, accumulate, c, rsc, csc, work, epilogue);
}

void NN_FN(sgemm_packed)(int m, int n, int k, float alpha, const float *a_packed,
                         const float *b_packed, const float *bias, bool accumulate,
                         float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    sgemm_run(m, n, k, alpha, a_packed, NULL, b_packed, bias, accumulate, c, rsc, csc, NULL,
              NULL);
}

void NN_FN(sgemm)(int m, int n, int k, float alpha, const float *a_packed,
                  const float *b, ptrdiff_t rsb, ptrdiff_t csb,
                  const float *bias, bool accumulate, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                  float *work)
{
    const nn_gemm_source src = {pack_dense, b, rsb, csb, NULL};
    NN_FN(sgemm_source)(m, n, k, alpha, a_packed, &src, bias, accumulate, c, rsc, csc, work);
}

void NN_FN(sgemm_epilogue)(int m, int n, int k, float alpha, const float *a_packed,
                           const float *b, ptrdiff_t rsb, ptrdiff_t csb, const float *bias,
                           bool accumulate, float *c, ptrdiff_t rsc, ptrdiff_t csc, float *work,
                           const nn_gemm_epilogue *epilogue)
{
    const nn_gemm_source src = {pack_dense, b, rsb, csb, NULL};
    sgemm_run(m, n, k, alpha, a_packed, &src, NULL, bias, accumulate, c, rsc, csc, work,
              epilogue);
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

#endif /* NN_GEMM_DRIVER_H */
