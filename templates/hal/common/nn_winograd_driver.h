/* The target-independent part of the Winograd convolution (see winograd.h), included once by a
 * target's winograd.c: the transforms in portable C11 (their innermost loops run across tiles
 * or columns, which an -O3 compiler vectorizes), the packed V^T / U^T / M layouts, the chunks,
 * the SGEMM calls and the split over the pool.
 *
 * The products run as M[xi]^T = V[xi]^T U[xi]^T (tiles x channels): the input transform writes
 * V^T straight into the SGEMM's packed A layout, the transformed weights are stored in its
 * packed B panel layout (nnbuild/ops/winograd.py pack_b), and M comes out tile-contiguous (the
 * micro-kernel's vector direction): nothing is packed at run time (sgemm_packed).
 *
 * The including file defines the two F(2x2) functions declared below (a target's vector code,
 * or the portable fallbacks input_across / output_row); F(4x4) runs the portable code. Every
 * value is computed the same way at any thread count. */
#ifndef NN_WINOGRAD_DRIVER_H
#define NN_WINOGRAD_DRIVER_H

#include "gemm.h"
#include "nn_pool.h"

#if defined(__GNUC__)
#define WINO_INLINE static inline __attribute__((always_inline))
#else
#define WINO_INLINE static inline
#endif

/* --- what the target defines ------------------------------------------------------------------ */
/* B^T of F(2, 3) across n (<= NN_GEMM_MR) tiles of a row of the padded image (element k of tile
 * t at s[2 t + k]; s holds 2 n + 2 + 2 NN_GEMM_MR readable floats): result b at d[b * ds + t]. */
static void input_across2(int n, const float *s, float *d, ptrdiff_t ds);

/* One tile row of F(2x2)'s output for one channel: rows y[0] and y[1] (y[1] NULL where the image
 * ends after one), `cols` columns, = A^T M A + bias over `tiles` tiles (element xi of tile t at
 * mo[xi * plane + t]), then the epilogue (e: NULL or its residual rows res[0], res[1] and clamps);
 * scratch holds 2 tiles + 4 * tiles + 16 floats. */
static void output_row2(const float *mo, ptrdiff_t plane, int tiles, int cols, float bias,
                        float *const y[2], const float *const res[2],
                        const nn_conv_epilogue *e, float *scratch);

/* The 1-D transforms of Lavin & Gray's F(2, 3) and F(4, 3) (the points 0, 1, -1 (, 2, -2) and
 * infinity; nnbuild/ops/winograd.py holds the same B^T, G, A^T): y = B^T x. */
WINO_INLINE void bt(int m, const float *x, float *y)
{
    if (m == 2) {            /* B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] */
        y[0] = x[0] - x[2];
        y[1] = x[1] + x[2];
        y[2] = x[2] - x[1];
        y[3] = x[1] - x[3];
    } else {                 /* B^T rows: 4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
                                0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1 */
        const float a = x[4] - 4.0f * x[2], b = x[3] - 4.0f * x[1];
        const float c = x[4] - x[2], e = 2.0f * (x[3] - x[1]);
        y[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];
        y[1] = a + b;
        y[2] = a - b;
        y[3] = c + e;
        y[4] = c - e;
        y[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];
    }
}

/* B^T over n tiles at once: element k of tile t at s[k + t * m] (a row of the padded image:
 * tiles start m columns apart), result a at d[a * ds + t]. */
WINO_INLINE void input_across(int m, int n, const float *restrict s, float *restrict d,
                              ptrdiff_t ds)
{
    for (int t = 0; t < n; ++t) {
        float x[6], y[6];
        for (int k = 0; k < m + 2; ++k)
            x[k] = s[t * m + k];
        bt(m, x, y);
        for (int a = 0; a < m + 2; ++a)
            d[a * ds + t] = y[a];
    }
}

/* B^T down the columns: element k of column q at rows[k][q], result a at d[a * ds + q]. */
WINO_INLINE void input_down(int m, int n, const float *const *rows, float *restrict d,
                            ptrdiff_t ds)
{
    for (int q = 0; q < n; ++q) {
        float x[6], y[6];
        for (int k = 0; k < m + 2; ++k)
            x[k] = rows[k][q];
        bt(m, x, y);
        for (int a = 0; a < m + 2; ++a)
            d[a * ds + q] = y[a];
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

/* The stride of the alpha^2 elements' V (or M) for n floats each: n rounded up to 16, plus 16, so
 * that the 16 (36) streams a transform reads or writes start at different cache sets (plain
 * multiples of 4 KiB, as 64 channels x 224 tiles are, all collide in L1). */
static size_t skew(size_t n) { return round16(n) + 16; }

/* The output rows y[i], i < m (y[i] NULL: past the image's bottom edge, and every later one),
 * `cols` columns, = A^T M A + bias over `tiles` tiles (element xi of tile t at mo[xi * plane +
 * t]): down the columns first (tmp[i][b][t]), then across each row, the tile cut at the right
 * edge through `line`; then the epilogue (e NULL: none) with the residual rows res[i]. */
WINO_INLINE void output_row(int m, int alpha, const float *mo, ptrdiff_t plane, int tiles,
                            int cols, float bias, float *const *y, const float *const *res,
                            const nn_conv_epilogue *e, float *scratch)
{
    float *line = scratch, *tmp = scratch + round16((size_t)tiles * m + 2);
    for (int b = 0; b < alpha; ++b)
        output_1d(m, tiles, mo + b * plane, alpha * plane, 1, tmp + (size_t)b * tiles,
                  (ptrdiff_t)alpha * tiles, 1, 0.0f);
    const int full = cols / m;                 /* tiles wholly inside the row, stored in place */
    for (int i = 0; i < m && y[i]; ++i) {
        const float *ti = tmp + (size_t)i * alpha * tiles;
        output_1d(m, full, ti, tiles, 1, y[i], 1, m, bias);
        if (full < tiles) {
            output_1d(m, tiles - full, ti + full, tiles, 1, line, 1, m, bias);
            memcpy(y[i] + full * m, line, sizeof(float) * (size_t)(cols - full * m));
        }
        for (int q = 0; e && q < cols; ++q)
            y[i][q] = nn_conv_epilogue_value(e, y[i][q], res[i] ? res[i] + q : NULL);
    }
}

/* One chunk of tiles [t0, t1) (in the order image, tile row, tile column) and how its work is
 * split. */
typedef struct {
    const nn_winograd_params *p;
    int alpha, t0, t1, tiles, tasks;
    size_t tp;                 /* tiles rounded up to NN_GEMM_MR: the stride of V and M */
    size_t vs, ms;             /* floats from one element's V, M to the next's (see skew) */
    const float *x, *u, *bias;
    float *y, *v, *mo;
    const nn_conv_epilogue *e;  /* NULL: none */
} wino_job;

/* Where channel c of V^T for element 0 starts in the packed A layout of nn_gemm.h (tiles x
 * channels of its group: per block of KC channels, MR-tile panels, each channel's MR tiles
 * contiguous), and the depth kc of its block; element xi's is xi * vs further. */
static float *v_column(const wino_job *j, int c, int *kc)
{
    const nn_winograd_params *p = j->p;
    const int cg = p->in_channels / p->groups, g = c / cg, cl = c % cg;
    const int k0 = cl / NN_GEMM_KC * NN_GEMM_KC;
    *kc = wmin(NN_GEMM_KC, cg - k0);
    return j->v + (size_t)g * j->tp * cg + (size_t)k0 * j->tp + (size_t)(cl - k0) * NN_GEMM_MR;
}

/* The tile columns [*a, *b) of the chunk's tiles in tile row r (of all images). */
static void row_span(const wino_job *j, int r, int *a, int *b)
{
    const int tw = j->p->tiles_w, first = r * tw;
    *a = j->t0 > first ? j->t0 - first : 0;
    *b = wmin(tw, j->t1 - first);
}

/* The vertical transform of the alpha input rows of tile row ty, over columns [c0, c1) of the
 * zero-padded image: vrow[a * vstride + q] = B^T down column q - pad_w of input rows ty * m -
 * pad_h + [0, alpha) (0 outside the image; `zero` holds in_w zeros). Other floats are left as
 * they are. */
WINO_INLINE void vertical(const nn_winograd_params *p, const float *xc, int ty, int m, int alpha,
                          int c0, int c1, const float *zero, float *vrow, ptrdiff_t vstride)
{
    const float *rows[6];
    for (int i = 0; i < alpha; ++i) {
        const int ih = ty * m + i - p->pad_h;
        rows[i] = ih >= 0 && ih < p->in_h ? xc + (size_t)ih * p->in_w : zero;
    }
    const int left = wmin(c1, p->pad_w > c0 ? p->pad_w : c0);   /* [left, right) in the image */
    const int right = wmax(left, wmin(c1, p->pad_w + p->in_w));
    for (int a = 0; a < alpha; ++a) {
        memset(vrow + a * vstride + c0, 0, sizeof(float) * (size_t)(left - c0));
        memset(vrow + a * vstride + right, 0, sizeof(float) * (size_t)(c1 - right));
    }
    if (right > left) {
        for (int i = 0; i < alpha; ++i)
            rows[i] += left - p->pad_w;
        input_down(m, right - left, rows, vrow + left, vstride);
    }
}

/* V[xi] for channel c over the chunk's tiles = B^T d B: per tile row, down the columns of its
 * alpha input rows (vrow[a][q]) under the chunk's tiles, then across, straight into V^T's
 * panels (a tile row's run of tiles cut where a panel ends). */
WINO_INLINE void input_channel(const wino_job *j, int c, int m, int alpha, float *scratch)
{
    const nn_winograd_params *p = j->p;
    const int tw = p->tiles_w, area = alpha * alpha;
    const ptrdiff_t vstride = (ptrdiff_t)round16((size_t)tw * m + 2 + NN_GEMM_MR);
    float *zero = scratch, *vrow = scratch + round16((size_t)p->in_w);
    memset(zero, 0, sizeof(float) * (size_t)p->in_w);
    memset(vrow, 0, sizeof(float) * (size_t)(alpha * vstride));   /* with the slack read past */
    const float *xc0 = j->x + (size_t)c * p->in_h * p->in_w;
    const size_t image = (size_t)p->in_channels * p->in_h * p->in_w;
    int kc;
    float *col = v_column(j, c, &kc);
    const ptrdiff_t xs = (ptrdiff_t)j->vs;
    for (int r = j->t0 / tw; r * tw < j->t1; ++r) {
        const int n = r / p->tiles_h, ty = r % p->tiles_h;
        int tx, end;
        row_span(j, r, &tx, &end);
        vertical(p, xc0 + (size_t)n * image, ty, m, alpha, tx * m, end * m + 2, zero, vrow,
                 vstride);
        while (tx < end) {                     /* element (a, b) at dst + (a * alpha + b) * xs */
            const int t = r * tw + tx - j->t0, off = t % NN_GEMM_MR;
            const int n_run = wmin(NN_GEMM_MR - off, end - tx);
            float *dst = col + (size_t)(t / NN_GEMM_MR) * NN_GEMM_MR * kc + off;
            for (int a = 0; a < alpha; ++a) {
                if (m == 2)
                    input_across2(n_run, vrow + a * vstride + tx * 2, dst + a * 4 * xs, xs);
                else
                    input_across(m, n_run, vrow + a * vstride + tx * m, dst + a * alpha * xs, xs);
            }
            tx += n_run;
        }
    }
    const int pad = (int)j->tp - j->tiles;   /* the tiles past the chunk's last, to MR: zero */
    float *dst = col + (size_t)(j->tiles / NN_GEMM_MR) * NN_GEMM_MR * kc + j->tiles % NN_GEMM_MR;
    for (int xi = 0; xi < area && pad > 0; ++xi)
        memset(dst + xi * xs, 0, sizeof(float) * (size_t)pad);
}

/* Y[o] = epilogue(A^T M A + bias) over the chunk's tiles, a tile row's run at a time, cut at
 * the image's right and bottom edges. */
WINO_INLINE void output_channel(const wino_job *j, int o, int m, int alpha, float *scratch)
{
    const nn_winograd_params *p = j->p;
    const int tw = p->tiles_w, M = p->out_channels;
    const ptrdiff_t plane = (ptrdiff_t)j->ms;
    const float b0 = j->bias ? j->bias[o] : 0.0f;
    for (int r = j->t0 / tw; r * tw < j->t1; ++r) {
        const int n = r / p->tiles_h, ty = r % p->tiles_h;
        int tx, end;
        row_span(j, r, &tx, &end);
        const float *mo = j->mo + (size_t)o * j->tp + (size_t)(r * tw + tx - j->t0);
        float *y[4] = {NULL, NULL, NULL, NULL};
        const float *res[4] = {NULL, NULL, NULL, NULL};
        for (int i = 0; i < wmin(m, p->out_h - ty * m); ++i) {
            const size_t at = (((size_t)n * M + o) * p->out_h + ty * m + i) * p->out_w +
                              (size_t)tx * m;
            y[i] = j->y + at;
            res[i] = j->e && j->e->residual ? j->e->residual + at : NULL;
        }
        const int cols = wmin(p->out_w - tx * m, (end - tx) * m);
        if (m == 2)
            output_row2(mo, plane, end - tx, cols, b0, y, res, j->e, scratch);
        else
            output_row(m, alpha, mo, plane, end - tx, cols, b0, y, res, j->e, scratch);
    }
}

/* Channels [c0, c1) of the chunk's V; output channels [o0, o1) of its Y. */
static void input_channels(const wino_job *j, int c0, int c1, float *scratch)
{
    for (int c = c0; c < c1; ++c) {
        if (j->p->m == 2)      /* constant sizes, so the loops unroll and vectorize */
            input_channel(j, c, 2, 4, scratch);
        else
            input_channel(j, c, 4, 6, scratch);
    }
}

static void output_channels(const wino_job *j, int o0, int o1, float *scratch)
{
    for (int o = o0; o < o1; ++o) {
        if (j->p->m == 2)
            output_channel(j, o, 2, 4, scratch);
        else
            output_channel(j, o, 4, 6, scratch);
    }
}

static void input_task(const void *ctx, int t, void *scratch)
{
    const wino_job *j = ctx;
    int c0, c1;
    nn_tile_range(j->p->in_channels, j->tasks, 1, t, &c0, &c1);
    input_channels(j, c0, c1, scratch);
}

static void output_task(const void *ctx, int t, void *scratch)
{
    const wino_job *j = ctx;
    int o0, o1;
    nn_tile_range(j->p->out_channels, j->tasks, 1, t, &o0, &o1);
    output_channels(j, o0, o1, scratch);
}

/* Task xi * groups + g: M[xi]^T = V[xi]^T U[xi]^T for group g (tiles x output channels), all
 * tiles of the chunk, stored tile-contiguous. */
static void gemm_task(const void *ctx, int t, void *scratch)
{
    const wino_job *j = ctx;
    const nn_winograd_params *p = j->p;
    const int groups = p->groups, xi = t / groups, g = t % groups;
    const int mg = p->out_channels / groups, cg = p->in_channels / groups;
    const float *u = j->u + (size_t)t * NN_GEMM_PACKED_B_FLOATS(cg, mg);
    const float *v = j->v + (size_t)xi * j->vs + (size_t)g * j->tp * cg;
    float *mo = j->mo + (size_t)xi * j->ms + (size_t)g * mg * j->tp;
    (void)scratch;
    NN_FN(sgemm_packed)(j->tiles, mg, cg, 1.0f, v, u, NULL, false, mo, 1, (ptrdiff_t)j->tp);
}

/* Floats of the largest chunk's V and M (the transforms' scratch follows them). */
static size_t chunk_floats(const nn_winograd_params *p)
{
    const size_t area = (size_t)(p->m + 2) * (p->m + 2);
    const size_t most = (size_t)(p->chunk_tiles + NN_GEMM_MR - 1) / NN_GEMM_MR * NN_GEMM_MR;
    return area * (skew(p->in_channels * most) + skew(p->out_channels * most));
}

/* Chunk c's tiles in j, its V, M and the transforms' scratch (returned) laid out in `buf`. */
static float *chunk_at(wino_job *j, int c, float *buf)
{
    const nn_winograd_params *p = j->p;
    const size_t area = (size_t)j->alpha * j->alpha;
    const size_t most = (size_t)(p->chunk_tiles + NN_GEMM_MR - 1) / NN_GEMM_MR * NN_GEMM_MR;
    const int total = p->batch * p->tiles_h * p->tiles_w;
    j->t0 = c * p->chunk_tiles;
    j->t1 = wmin(j->t0 + p->chunk_tiles, total);
    j->tiles = j->t1 - j->t0;
    j->tp = (size_t)(j->tiles + NN_GEMM_MR - 1) / NN_GEMM_MR * NN_GEMM_MR;
    j->vs = skew(p->in_channels * j->tp);
    j->ms = skew(p->out_channels * j->tp);
    j->v = buf;
    j->mo = buf + area * skew(p->in_channels * most);
    return buf + chunk_floats(p);
}

/* Bytes of the transforms' scratch: the larger of the input's and the output's. */
static size_t transform_bytes(const nn_winograd_params *p)
{
    const int m = p->m, alpha = m + 2, tw = p->tiles_w;
    const size_t output = round16((size_t)tw * m + 2) + (size_t)alpha * alpha * tw;
    const size_t input = round16((size_t)p->in_w) +
                         round16((size_t)tw * m + 2 + NN_GEMM_MR) * alpha;
    return sizeof(float) * (output > input ? output : input);
}

/* Private chunks: a thread transforms chunk t's input, runs its products and its output
 * transform, all in its own scratch (the same operations as the split phases). */
static void chunk_task(const void *ctx, int t, void *scratch)
{
    wino_job j = *(const wino_job *)ctx;
    float *ts = chunk_at(&j, t, scratch);
    input_channels(&j, 0, j.p->in_channels, ts);
    for (int e = 0; e < j.alpha * j.alpha * j.p->groups; ++e)
        gemm_task(&j, e, NULL);
    output_channels(&j, 0, j.p->out_channels, ts);
}

void NN_FN(winograd_conv)(const nn_winograd_params *p, const float *x, const float *u_packed,
                          const float *bias, float *y, float *work,
                          const nn_conv_epilogue *epilogue)
{
    const int alpha = p->m + 2, area = alpha * alpha;
    const int chunks = (p->batch * p->tiles_h * p->tiles_w + p->chunk_tiles - 1) / p->chunk_tiles;
    wino_job j = {.p = p, .alpha = alpha, .tasks = 1, .x = x, .u = u_packed, .bias = bias,
                  .y = y, .e = epilogue && (epilogue->residual || epilogue->clamp) ? epilogue
                                                                                    : NULL};
    if (p->private_chunks) {
        NN_FN(parallel_for)(chunks, chunk_task, &j, work,
                            sizeof(float) * chunk_floats(p) + transform_bytes(p));
        return;
    }
    for (int c = 0; c < chunks; ++c) {
        float *scratch = chunk_at(&j, c, work);
        const double per_channel = 4.0 * alpha * area * j.tiles;   /* two passes, 2 flops */
        j.tasks = wmin(p->in_channels, nn_task_count(per_channel * p->in_channels));
        NN_FN(parallel_for)(j.tasks, input_task, &j, scratch, transform_bytes(p));
        NN_FN(parallel_for)(area * p->groups, gemm_task, &j, NULL, 0);
        j.tasks = wmin(p->out_channels, nn_task_count(per_channel * p->out_channels));
        NN_FN(parallel_for)(j.tasks, output_task, &j, scratch, transform_bytes(p));
    }
}

#endif /* NN_WINOGRAD_DRIVER_H */
