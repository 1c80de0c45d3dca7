/* Winograd convolution F(m x m, 3 x 3); see winograd.h. Portable C11: the transforms run
 * across the tiles of a tile row (the innermost loops), which an -O3 compiler vectorizes with
 * the target's flags; the products are the target's SGEMM. */
#include "winograd.h"

#include "gemm.h"
#include "nn_pool.h"

#if defined(__GNUC__)
#define WINO_INLINE static inline __attribute__((always_inline))
#else
#define WINO_INLINE static inline
#endif

/* The 1-D transforms of Lavin & Gray's F(2, 3) and F(4, 3) (the points 0, 1, -1 (, 2, -2) and
 * infinity; nnbuild/ops/winograd.py holds the same B^T, G, A^T), over n tiles at once: element
 * k of tile t at s[k * ks + t * ts], result a at d[a * ds + t * dts]. */
WINO_INLINE void input_1d(int m, int n, const float *restrict s, ptrdiff_t ks, ptrdiff_t ts,
                          float *restrict d, ptrdiff_t ds, ptrdiff_t dts)
{
    if (m == 2) {            /* B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] */
        for (int t = 0; t < n; ++t) {
            const float *x = s + t * ts;
            float *y = d + t * dts;
            const float x0 = x[0], x1 = x[ks], x2 = x[2 * ks], x3 = x[3 * ks];
            y[0] = x0 - x2;
            y[ds] = x1 + x2;
            y[2 * ds] = x2 - x1;
            y[3 * ds] = x1 - x3;
        }
    } else {                 /* B^T rows: 4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
                                0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1 */
        for (int t = 0; t < n; ++t) {
            const float *x = s + t * ts;
            float *y = d + t * dts;
            const float x0 = x[0], x1 = x[ks], x2 = x[2 * ks], x3 = x[3 * ks];
            const float x4 = x[4 * ks], x5 = x[5 * ks];
            const float a = x4 - 4.0f * x2, b = x3 - 4.0f * x1;
            const float c = x4 - x2, e = 2.0f * (x3 - x1);
            y[0] = 4.0f * x0 - 5.0f * x2 + x4;
            y[ds] = a + b;
            y[2 * ds] = a - b;
            y[3 * ds] = c + e;
            y[4 * ds] = c - e;
            y[5 * ds] = 4.0f * x1 - 5.0f * x3 + x5;
        }
    }
}

/* A^T: F(2, 3) [1 1 1 0; 0 1 -1 -1], F(4, 3) [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
 * 0 1 -1 8 -8 1]; `add` (a bias) joins every result. */
WINO_INLINE void output_1d(int m, int n, const float *restrict s, ptrdiff_t ks, ptrdiff_t ts,
                           float *restrict d, ptrdiff_t ds, ptrdiff_t dts, float add)
{
    if (m == 2) {
        for (int t = 0; t < n; ++t) {
            const float *x = s + t * ts;
            float *y = d + t * dts;
            const float x0 = x[0], x1 = x[ks], x2 = x[2 * ks], x3 = x[3 * ks];
            y[0] = add + (x0 + x1 + x2);
            y[ds] = add + (x1 - x2 - x3);
        }
    } else {
        for (int t = 0; t < n; ++t) {
            const float *x = s + t * ts;
            float *y = d + t * dts;
            const float x0 = x[0], x1 = x[ks], x2 = x[2 * ks], x3 = x[3 * ks];
            const float x4 = x[4 * ks], x5 = x[5 * ks];
            const float p1 = x1 + x2, m1 = x1 - x2, p3 = x3 + x4, m3 = x3 - x4;
            y[0] = add + (x0 + p1 + p3);
            y[ds] = add + (m1 + 2.0f * m3);
            y[2 * ds] = add + (p1 + 4.0f * p3);
            y[3 * ds] = add + (m1 + 8.0f * m3 + x5);
        }
    }
}

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }
static int wmin(int a, int b) { return a < b ? a : b; }
static int wmax(int a, int b) { return a > b ? a : b; }

/* One chunk of tile rows [r0, r1) and how its work is split. */
typedef struct {
    const nn_winograd_params *p;
    int alpha, r0, r1, tiles, tasks;
    const float *x, *u, *bias;
    float *y, *v, *mo;
} wino_job;

/* line[q] for q in [q0, q1): column q - pad_w of `row`, 0 outside the image (or no row). */
static void pad_span(const nn_winograd_params *p, const float *row, int q0, int q1, float *line)
{
    for (int q = q0; q < q1; ++q) {
        const int col = q - p->pad_w;
        line[q] = row && col >= 0 && col < p->in_w ? row[col] : 0.0f;
    }
}

/* The horizontal transform of input row ih of channel plane xc (zeros outside the image) for
 * every tile of a tile row, into dst[a * tiles_w + t]: tiles whose alpha columns lie inside
 * the image read the row in place, the others a zero-padded copy of their columns in `line`. */
WINO_INLINE void row_transform(const nn_winograd_params *p, const float *xc, int ih, int m,
                               int alpha, float *line, float *dst)
{
    const int tw = p->tiles_w;
    const float *row = NULL;
    int lo = tw, hi = tw;                      /* tiles [lo, hi) read the image in place */
    if (ih >= 0 && ih < p->in_h) {
        const int last = p->in_w + p->pad_w - alpha;   /* the last column a tile starts at */
        row = xc + (size_t)ih * p->in_w;
        lo = wmin((p->pad_w + m - 1) / m, tw);
        hi = last < 0 ? lo : wmax(lo, wmin(tw, last / m + 1));
    }
    pad_span(p, row, 0, lo * m + 2, line);
    pad_span(p, row, hi * m, tw * m + 2, line);
    if (lo > 0)
        input_1d(m, lo, line, 1, m, dst, tw, 1);
    if (hi > lo)
        input_1d(m, hi - lo, row + lo * m - p->pad_w, 1, m, dst + lo, tw, 1);
    if (hi < tw)
        input_1d(m, tw - hi, line + hi * m, 1, m, dst + hi, tw, 1);
}

/* V[xi][c][tiles of the chunk] = B^T d B for channel c: first each of the alpha input rows of
 * a tile row across (tmp[i][a][tx]), then down the columns. */
WINO_INLINE void input_channel(const wino_job *j, int c, int m, int alpha, float *scratch)
{
    const nn_winograd_params *p = j->p;
    const int tw = p->tiles_w, width = tw * m + 2;
    const ptrdiff_t plane = (ptrdiff_t)p->in_channels * j->tiles;
    const size_t row_floats = (size_t)alpha * tw;
    float *line = scratch, *tmp = scratch + round16((size_t)width);
    for (int r = j->r0; r < j->r1; ++r) {
        const int n = r / p->tiles_h, ty = r % p->tiles_h;
        const float *xc = j->x + ((size_t)n * p->in_channels + c) * p->in_h * p->in_w;
        int first = 0;         /* the tile row above's last alpha - m input rows are these first */
        if (r > j->r0 && ty > 0) {
            memcpy(tmp, tmp + m * row_floats, sizeof(float) * (size_t)(alpha - m) * row_floats);
            first = alpha - m;
        }
        for (int i = first; i < alpha; ++i) {
            row_transform(p, xc, ty * m + i - p->pad_h, m, alpha, line, tmp + i * row_floats);
        }
        float *v = j->v + (size_t)c * j->tiles + (size_t)(r - j->r0) * tw;
        for (int b = 0; b < alpha; ++b)        /* element (a, b) at v + (a * alpha + b) * plane */
            input_1d(m, tw, tmp + (size_t)b * tw, (ptrdiff_t)alpha * tw, 1, v + b * plane,
                     alpha * plane, 1);
    }
}

/* Y[o] = A^T M A + bias over the chunk's tiles: down the columns first (tmp[i][b][tx]), then
 * each output row across, cut at the image's right and bottom edges. */
WINO_INLINE void output_channel(const wino_job *j, int o, int m, int alpha, float *scratch)
{
    const nn_winograd_params *p = j->p;
    const int tw = p->tiles_w, M = p->out_channels;
    const ptrdiff_t plane = (ptrdiff_t)M * j->tiles;
    float *line = scratch, *tmp = scratch + round16((size_t)tw * m + 2);
    const float b0 = j->bias ? j->bias[o] : 0.0f;
    for (int r = j->r0; r < j->r1; ++r) {
        const int n = r / p->tiles_h, ty = r % p->tiles_h;
        const float *mo = j->mo + (size_t)o * j->tiles + (size_t)(r - j->r0) * tw;
        for (int b = 0; b < alpha; ++b)
            output_1d(m, tw, mo + b * plane, alpha * plane, 1, tmp + (size_t)b * tw,
                      (ptrdiff_t)alpha * tw, 1, 0.0f);
        const int rows = wmin(m, p->out_h - ty * m);
        const int full = p->out_w / m;         /* tiles wholly inside the row, stored in place */
        for (int i = 0; i < rows; ++i) {
            const float *ti = tmp + (size_t)i * alpha * tw;
            float *dst = j->y + (((size_t)n * M + o) * p->out_h + ty * m + i) * p->out_w;
            output_1d(m, full, ti, tw, 1, dst, 1, m, b0);
            if (full < tw) {                   /* the last tile, cut at the right edge */
                output_1d(m, tw - full, ti + full, tw, 1, line, 1, m, b0);
                memcpy(dst + full * m, line, sizeof(float) * (size_t)(p->out_w - full * m));
            }
        }
    }
}

static void input_task(const void *ctx, int t, void *scratch)
{
    const wino_job *j = ctx;
    int c0, c1;
    nn_tile_range(j->p->in_channels, j->tasks, 1, t, &c0, &c1);
    for (int c = c0; c < c1; ++c) {
        if (j->p->m == 2)      /* constant sizes, so the loops unroll and vectorize */
            input_channel(j, c, 2, 4, scratch);
        else
            input_channel(j, c, 4, 6, scratch);
    }
}

static void output_task(const void *ctx, int t, void *scratch)
{
    const wino_job *j = ctx;
    int o0, o1;
    nn_tile_range(j->p->out_channels, j->tasks, 1, t, &o0, &o1);
    for (int o = o0; o < o1; ++o) {
        if (j->p->m == 2)
            output_channel(j, o, 2, 4, scratch);
        else
            output_channel(j, o, 4, 6, scratch);
    }
}

/* Task xi * groups + g: M[xi] = U[xi] V[xi] for group g, all tiles of the chunk. */
static void gemm_task(const void *ctx, int t, void *scratch)
{
    const wino_job *j = ctx;
    const nn_winograd_params *p = j->p;
    const int groups = p->groups, xi = t / groups, g = t % groups;
    const int mg = p->out_channels / groups, cg = p->in_channels / groups;
    const float *u = j->u + (size_t)t * NN_GEMM_PACKED_A_FLOATS(mg, cg);
    const float *v = j->v + ((size_t)xi * p->in_channels + (size_t)g * cg) * j->tiles;
    float *mo = j->mo + ((size_t)xi * p->out_channels + (size_t)g * mg) * j->tiles;
    NN_FN(sgemm)(mg, j->tiles, cg, 1.0f, u, v, j->tiles, 1, NULL, false, mo, j->tiles, 1,
                 scratch);
}

void NN_FN(winograd_conv)(const nn_winograd_params *p, const float *x, const float *u_packed,
                          const float *bias, float *y, float *work)
{
    const int m = p->m, alpha = m + 2, area = alpha * alpha, tw = p->tiles_w;
    const int rows = p->batch * p->tiles_h, most = p->chunk_rows * tw;
    wino_job j = {p, alpha, 0, 0, 0, 1, x, u_packed, bias, y, work, NULL};
    j.mo = j.v + round16((size_t)area * p->in_channels * most);
    float *scratch = j.mo + round16((size_t)area * p->out_channels * most);
    const size_t transform_bytes = sizeof(float) * (round16((size_t)tw * m + 2) +
                                                    (size_t)area * tw);
    for (j.r0 = 0; j.r0 < rows; j.r0 = j.r1) {
        j.r1 = wmin(j.r0 + p->chunk_rows, rows);
        j.tiles = (j.r1 - j.r0) * tw;
        const double per_channel = 4.0 * alpha * area * j.tiles;   /* two passes, 2 flops */
        j.tasks = wmin(p->in_channels, nn_task_count(per_channel * p->in_channels));
        NN_FN(parallel_for)(j.tasks, input_task, &j, scratch, transform_bytes);
        NN_FN(parallel_for)(area * p->groups, gemm_task, &j, scratch,
                            NN_GEMM_WORK_FLOATS(j.tiles) * sizeof(float));
        j.tasks = wmin(p->out_channels, nn_task_count(per_channel * p->out_channels));
        NN_FN(parallel_for)(j.tasks, output_task, &j, scratch, transform_bytes);
    }
}
