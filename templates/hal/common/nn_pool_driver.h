/* What every target's pool.c shares (see pool.h): the pooling kernels, split over planes with
 * the thread pool (which path: from the shapes only):
 * - a window that is the whole plane: the global pools' lane reductions;
 * - small 1-D / 2-D planes: a padded copy, one vector run per tap over the whole plane;
 * - otherwise per output row: the interior columns (every tap inside) one vector run per tap,
 *   the border columns (and MaxPool with Indices) window by window, visiting only the taps
 *   inside the input (worked out per dim, see pool_span), so no loop carries bounds checks.
 * (MaxPool windows 3 wide along w: three taps of up to three rows per pass, max3_rows.)
 * The last two see each output's taps in window order (d, h, w): the same results.
 * A target's pool.c includes it right after pool.h and nn_pool.h. A SIMD one may define
 * NN_POOL_VECTOR and its vector primitives first (see "vector rows" below): 2-D AveragePool
 * windows (strides 1 or 2 along w) are then computed in vectors, each row of a window reduced
 * along w once for all the windows that read it, then the rows along h: over a padded copy of
 * planes of at most VP_FLOATS floats ("padded planes"), else row by row ("vector rows"); with
 * NN_POOL_MAX_ROWS too, so is MaxPool in vector rows (where a row has border columns); MaxPool
 * in padded planes on every vector target.
 * Their sums are in that order (within rounding of window order, the same at any thread
 * count); their maxima are window order's first maximum: the same results. */
#ifndef NN_POOL_DRIVER_H
#define NN_POOL_DRIVER_H

/* The taps of one window along one dim: tap k (lo <= k < hi) reads input position
 * first + k * dilation; `padded` taps (from tap 0) lie inside the input plus its padding. */
typedef struct {
    ptrdiff_t first;
    size_t lo, hi, padded;
} pool_span;

/* How many of the taps 0..kernel-1 at first + k * dilation lie below `limit`. */
static size_t taps_below(ptrdiff_t first, size_t limit, size_t dilation, size_t kernel) {
    if ((ptrdiff_t)limit <= first) return 0;
    const size_t reach = (size_t)((ptrdiff_t)limit - first);
    const size_t n = dilation == 1 ? reach : (reach + dilation - 1) / dilation;
    return n < kernel ? n : kernel;
}

static pool_span span_at(const nn_pool_window *w, int d, size_t o) {
    const size_t kernel = w->kernel[d], dilation = w->dilation[d], in = w->in[d];
    pool_span s;
    s.first = (ptrdiff_t)(o * w->stride[d]) - (ptrdiff_t)w->pad_begin[d];
    s.padded = taps_below(s.first, in + w->pad_end[d], dilation, kernel);
    if (s.first >= 0 && (size_t)s.first + (kernel - 1) * dilation < in) {
        s.lo = 0;   /* the whole window is inside: no division */
        s.hi = kernel;
        return s;
    }
    s.lo = s.first >= 0 ? 0 : dilation == 1 ? (size_t)(-s.first)
                                            : ((size_t)(-s.first) + dilation - 1) / dilation;
    s.hi = taps_below(s.first, in, dilation, kernel);
    if (s.hi < s.lo) s.hi = s.lo;
    return s;
}

static inline size_t tap(const pool_span *s, size_t k, size_t dilation) {
    return (size_t)(s->first + (ptrdiff_t)(k * dilation));
}

/* Max over one window of plane xp; where `at` is not NULL it receives the position of the
 * first maximum as (d, h, w) coordinates. */
static inline float window_max(const float *xp, const nn_pool_window *w, const pool_span s[3],
                               size_t at[3]) {
    float best = -INFINITY;
    for (size_t kd = s[0].lo; kd < s[0].hi; ++kd) {
        const size_t id = tap(&s[0], kd, w->dilation[0]);
        for (size_t kh = s[1].lo; kh < s[1].hi; ++kh) {
            const size_t ih = tap(&s[1], kh, w->dilation[1]);
            const float *row = xp + (id * w->in[1] + ih) * w->in[2];
            for (size_t kw = s[2].lo; kw < s[2].hi; ++kw) {
                const size_t iw = tap(&s[2], kw, w->dilation[2]);
                if (row[iw] > best) {
                    best = row[iw];
                    if (at) {
                        at[0] = id;
                        at[1] = ih;
                        at[2] = iw;
                    }
                }
            }
        }
    }
    return best;
}

static float window_sum(const float *xp, const nn_pool_window *w, const pool_span s[3]) {
    float sum = 0;
    for (size_t kd = s[0].lo; kd < s[0].hi; ++kd) {
        const size_t id = tap(&s[0], kd, w->dilation[0]);
        for (size_t kh = s[1].lo; kh < s[1].hi; ++kh) {
            const size_t ih = tap(&s[1], kh, w->dilation[1]);
            const float *row = xp + (id * w->in[1] + ih) * w->in[2];
            for (size_t kw = s[2].lo; kw < s[2].hi; ++kw)
                sum += row[tap(&s[2], kw, w->dilation[2])];
        }
    }
    return sum;
}

/* The kernels split their planes into tasks (how many: from the problem's size only). */
typedef struct {
    const float *x;
    float *y;
    int64_t *indices;
    int storage_order;
    bool count_include_pad;
    const nn_pool_window *w;
    size_t planes;
    int tiles;
} pool_job;

/* A tap (one max or add of a window, one element of a global pool) in GEMM flops when sizing
 * tasks: pools stream their input, ~8 G taps/s on x86-avx512 (squeezenet's 3x3/2 MaxPool, 1.7 M
 * taps in 0.23 ms) against the GEMM's ~200 GFLOP/s; 8 is conservative. Without it a 0.14 ms
 * MaxPool (light shufflenet's) stayed one task at 2 threads. */
#define POOL_TAP_COST 8.0

/* Tasks over `planes` planes of `work` taps in all: balanced over the pool's threads. */
static int plane_tasks(size_t planes, double work) {
    const int units = planes < (size_t)NN_POOL_MAX_TASKS ? (int)planes : NN_POOL_MAX_TASKS;
    return units > 0 ? nn_balanced_tasks(units, nn_task_count(POOL_TAP_COST * work)) : 1;
}

static int plane_tiles(const nn_pool_window *w) {
    const double taps = (double)w->kernel[0] * (double)w->kernel[1] * (double)w->kernel[2];
    const double outputs = (double)(w->out[0] * w->out[1] * w->out[2]);
    return plane_tasks(w->planes, (double)w->planes * outputs * taps);
}

/* Interior runs shorter than POOL_MIN_RUN columns are not worth a vector loop per tap; at most
 * POOL_RUN columns are averaged per call (their sums live on the stack). */
#define POOL_MIN_RUN 8
#define POOL_RUN 256

/* The output columns [*c0, *c1) along the last dim whose taps all lie inside the input: the
 * interior of every output row, pooled a whole run of columns at a time (empty where it would
 * be shorter than POOL_MIN_RUN). */
static void interior_columns(const nn_pool_window *w, size_t *c0, size_t *c1) {
    const size_t stride = w->stride[2], pad = w->pad_begin[2];
    const size_t reach = (w->kernel[2] - 1) * w->dilation[2];   /* last tap's offset */
    size_t first = (pad + stride - 1) / stride;                /* ow * stride >= pad */
    size_t end = 0;                                            /* ow * stride - pad + reach < in */
    if (w->in[2] + pad > reach)
        end = (w->in[2] + pad - reach - 1) / stride + 1;
    if (end > w->out[2])
        end = w->out[2];
    if (end < first + POOL_MIN_RUN)
        end = first = 0;
    *c0 = first;
    *c1 = end;
}

/* One tap over a run of n outputs: y[i] = max(y[i], x[i * stride]). The strides 1, 2 and 3 get
 * their own loops, so the compiler vectorizes them with a known stride. */
#define POOL_MAX_RUN(S) \
    for (size_t i = 0; i < n; ++i) y[i] = x[i * (S)] > y[i] ? x[i * (S)] : y[i]
#define POOL_SUM_RUN(S) \
    for (size_t i = 0; i < n; ++i) acc[i] += x[i * (S)]

static void max_run(float *restrict y, const float *restrict x, size_t n, size_t stride) {
    switch (stride) {
    case 1: POOL_MAX_RUN(1); break;
    case 2: POOL_MAX_RUN(2); break;
    case 3: POOL_MAX_RUN(3); break;
    default: POOL_MAX_RUN(stride); break;
    }
}

static void sum_run(float *restrict acc, const float *restrict x, size_t n, size_t stride) {
    switch (stride) {
    case 1: POOL_SUM_RUN(1); break;
    case 2: POOL_SUM_RUN(2); break;
    case 3: POOL_SUM_RUN(3); break;
    default: POOL_SUM_RUN(stride); break;
    }
}

/* A window 3 wide along w (no dilation): the three taps of each of R (1 to 3) rows in window
 * order in one pass over a run, so acc is loaded and stored once per R rows instead of once per
 * tap (a 3x3 window: once instead of nine times). The same comparisons in the same order as
 * max_run per tap. */
#define POOL_MAX3_ROW(r, S) \
    a = r[i * (S)] > a ? r[i * (S)] : a; \
    a = r[i * (S) + 1] > a ? r[i * (S) + 1] : a; \
    a = r[i * (S) + 2] > a ? r[i * (S) + 2] : a
#define POOL_MAX3(S) \
    for (size_t i = 0; i < n; ++i) { \
        float a = acc[i]; \
        POOL_MAX3_ROW(r0, S); \
        if (R > 1) { POOL_MAX3_ROW(r1, S); } \
        if (R > 2) { POOL_MAX3_ROW(r2, S); } \
        acc[i] = a; \
    }

static inline __attribute__((always_inline)) void max3_rows(
        float *restrict acc, const float *r0, const float *r1, const float *r2, size_t n,
        size_t stride, int R) {
    switch (stride) {
    case 1: POOL_MAX3(1); break;
    case 2: POOL_MAX3(2); break;
    default: POOL_MAX3(stride); break;
    }
}

/* Outputs c0 .. c0 + n - 1 of one output row (its d and h spans s[0], s[1]), every tap inside
 * along w: for each tap in window order (d, h, w), run(acc, ...) over the whole row, so each
 * output sees its taps in the same order as window_max / window_sum. */
static void interior_taps(const float *xp, const nn_pool_window *w, const pool_span s[2],
                          size_t c0, size_t n, float *acc,
                          void (*run)(float *restrict, const float *restrict, size_t, size_t)) {
    const size_t stride = w->stride[2], dilation = w->dilation[2];
    const size_t offset = c0 * stride - w->pad_begin[2];
    if (run == max_run && w->kernel[2] == 3 && (dilation == 1)) {
        const float *rows[3];
        int R = 0;
        for (size_t kd = s[0].lo; kd < s[0].hi; ++kd) {
            const size_t id = tap(&s[0], kd, w->dilation[0]);
            for (size_t kh = s[1].lo; kh < s[1].hi; ++kh) {
                rows[R++] = xp + (id * w->in[1] + tap(&s[1], kh, w->dilation[1])) * w->in[2] +
                            offset;
                if (R == 3) {
                    max3_rows(acc, rows[0], rows[1], rows[2], n, stride, 3);
                    R = 0;
                }
            }
        }
        if (R == 2)
            max3_rows(acc, rows[0], rows[1], rows[1], n, stride, 2);
        else if (R == 1)
            max3_rows(acc, rows[0], rows[0], rows[0], n, stride, 1);
        return;
    }
    for (size_t kd = s[0].lo; kd < s[0].hi; ++kd) {
        const size_t id = tap(&s[0], kd, w->dilation[0]);
        for (size_t kh = s[1].lo; kh < s[1].hi; ++kh) {
            const size_t ih = tap(&s[1], kh, w->dilation[1]);
            const float *row = xp + (id * w->in[1] + ih) * w->in[2] + offset;
            for (size_t kw = 0; kw < w->kernel[2]; ++kw)
                run(acc, row + kw * dilation, n, stride);
        }
    }
}

/* Their maxima: the same (first) maximum as window_max. Windows 3 wide along w take the rows
 * of their (d, h) taps three at a time (max3_rows). */
static void max_interior(const float *xp, const nn_pool_window *w, const pool_span s[2],
                         size_t c0, size_t n, float *y) {
    for (size_t i = 0; i < n; ++i)
        y[i] = -INFINITY;
    if (w->kernel[2] != 3 || w->dilation[2] != 1) {
        interior_taps(xp, w, s, c0, n, y, max_run);
        return;
    }
    const size_t offset = c0 * w->stride[2] - w->pad_begin[2];
    const float *rows[3];
    int r = 0;
    for (size_t kd = s[0].lo; kd < s[0].hi; ++kd) {
        const size_t id = tap(&s[0], kd, w->dilation[0]);
        for (size_t kh = s[1].lo; kh < s[1].hi; ++kh) {
            const size_t ih = tap(&s[1], kh, w->dilation[1]);
            rows[r++] = xp + (id * w->in[1] + ih) * w->in[2] + offset;
            if (r == 3) {
                max3_rows(y, rows[0], rows[1], rows[2], n, w->stride[2], 3);
                r = 0;
            }
        }
    }
    if (r == 2)
        max3_rows(y, rows[0], rows[1], rows[1], n, w->stride[2], 2);
    else if (r == 1)
        max3_rows(y, rows[0], rows[0], rows[0], n, w->stride[2], 1);
}

/* The average counterpart of max_interior: float sums, each in window order (as window_sum),
 * for at most POOL_RUN outputs. */
static void avg_interior(const float *xp, const nn_pool_window *w, const pool_span s[2],
                         bool count_include_pad, size_t c0, size_t n, float *y) {
    const size_t count = count_include_pad
        ? s[0].padded * s[1].padded * w->kernel[2]
        : (s[0].hi - s[0].lo) * (s[1].hi - s[1].lo) * w->kernel[2];
    float acc[POOL_RUN];
    for (size_t i = 0; i < n; ++i)
        acc[i] = 0;
    interior_taps(xp, w, s, c0, n, acc, sum_run);
    const float divisor = count ? (float)count : 1.0f;   /* 0 taps: the mean of none is 0 */
    for (size_t i = 0; i < n; ++i)
        y[i] = acc[i] / divisor;
}

/* Global pools: each plane is reduced in POOL_LANES interleaved partial results (element i
 * goes to lane i % POOL_LANES), which are then combined in lane order: a fixed order the
 * compiler can vectorize, the same on every target and thread count. */
#define POOL_LANES 16

static float plane_max(const float *x, size_t size) {
    float lane[POOL_LANES];
    for (size_t j = 0; j < POOL_LANES; ++j)
        lane[j] = -INFINITY;
    size_t i = 0;
    for (; i + POOL_LANES <= size; i += POOL_LANES)
        for (size_t j = 0; j < POOL_LANES; ++j)
            lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    for (size_t j = 0; i + j < size; ++j)
        lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    float best = lane[0];
    for (size_t j = 1; j < POOL_LANES; ++j)
        best = lane[j] > best ? lane[j] : best;
    return best;
}

static float plane_mean(const float *x, size_t size) {
    double lane[POOL_LANES] = {0};
    size_t i = 0;
    for (; i + POOL_LANES <= size; i += POOL_LANES)
        for (size_t j = 0; j < POOL_LANES; ++j)
            lane[j] += (double)x[i + j];
    for (size_t j = 0; i + j < size; ++j)
        lane[j] += (double)x[i + j];
    double sum = 0;
    for (size_t j = 0; j < POOL_LANES; ++j)
        sum += lane[j];
    return (float)(sum / (double)size);
}

/* A window that is the whole input plane (one output, no padding, no dilation that matters):
 * the global pools' plane_max / plane_mean, vectorized where the window loop is not. */
static bool whole_plane(const nn_pool_window *w) {
    for (int d = 0; d < 3; ++d)
        if (w->out[d] != 1 || w->kernel[d] != w->in[d] || w->pad_begin[d] || w->pad_end[d] ||
            (w->kernel[d] > 1 && w->dilation[d] != 1))
            return false;
    return true;
}

/* Small 1-D and 2-D planes, where the interior runs of single rows are short: the plane is
 * copied with its padding filled by a value that changes nothing (-INFINITY never wins a max,
 * +0.0 leaves a sum as it is) into rows x cols floats, so that every tap is ONE run over
 * the whole plane: output (oh, ow) sits at j = oh * cols + ow and reads the copy at
 * j * stride + the tap's offset (positions ow >= out_w between the rows are computed and
 * dropped). Each output still sees its taps in window order: the same results. */
#define POOL_SMALL 1024

typedef struct {
    size_t rows, cols;   /* the padded copy: the rows and columns the windows reach */
    size_t run;          /* (out_h - 1) * cols + out_w outputs per tap */
} small_plane;

static bool small_plane_fits(const nn_pool_window *w, small_plane *g) {
    if (w->in[0] != 1 || w->out[0] != 1 || w->kernel[0] != 1 || w->pad_begin[0] != 0 ||
        (w->out[1] > 1 && w->stride[1] != w->stride[2]))
        return false;
    const size_t stride = w->stride[2];
    g->rows = (w->out[1] - 1) * stride + (w->kernel[1] - 1) * w->dilation[1] + 1;
    g->cols = (w->out[2] - 1) * stride + (w->kernel[2] - 1) * w->dilation[2] + 1;
    g->run = (w->out[1] - 1) * g->cols + w->out[2];
    return g->rows * g->cols <= POOL_SMALL && g->run >= POOL_MIN_RUN;
}

static void pad_plane(const float *xp, const nn_pool_window *w, const small_plane *g,
                      float fill, float *buf) {
    const size_t top = w->pad_begin[1], left = w->pad_begin[2];
    const size_t end = left + w->in[2] < g->cols ? left + w->in[2] : g->cols;
    for (size_t r = 0; r < g->rows; ++r, buf += g->cols) {
        size_t c = 0;
        if (r >= top && r - top < w->in[1]) {
            const float *row = xp + (r - top) * w->in[2];
            for (; c < left && c < g->cols; ++c)
                buf[c] = fill;
            for (; c < end; ++c)
                buf[c] = row[c - left];
        }
        for (; c < g->cols; ++c)
            buf[c] = fill;
    }
}

static void max_small(const float *xp, const nn_pool_window *w, const small_plane *g,
                      float *y) {
    float buf[POOL_SMALL], acc[POOL_SMALL];
    pad_plane(xp, w, g, -INFINITY, buf);
    for (size_t i = 0; i < g->run; ++i)
        acc[i] = -INFINITY;
    if (w->kernel[1] == 3 && w->kernel[2] == 3 && w->dilation[2] == 1) {
        const size_t step = w->dilation[1] * g->cols;
        max3_rows(acc, buf, buf + step, buf + 2 * step, g->run, w->stride[2], 3);
    } else {
        for (size_t kh = 0; kh < w->kernel[1]; ++kh)
            for (size_t kw = 0; kw < w->kernel[2]; ++kw)
                max_run(acc, buf + kh * w->dilation[1] * g->cols + kw * w->dilation[2], g->run,
                        w->stride[2]);
    }
    for (size_t oh = 0; oh < w->out[1]; ++oh)
        memcpy(y + oh * w->out[2], acc + oh * g->cols, w->out[2] * sizeof(float));
}

/* counts: the taps per output row (out_h values), then per output column (out_w values). */
static void avg_small(const float *xp, const nn_pool_window *w, const small_plane *g,
                      const float *counts, float *y) {
    float buf[POOL_SMALL];
    float acc[POOL_SMALL];
    pad_plane(xp, w, g, 0.0f, buf);
    for (size_t i = 0; i < g->run; ++i)
        acc[i] = 0;
    for (size_t kh = 0; kh < w->kernel[1]; ++kh)
        for (size_t kw = 0; kw < w->kernel[2]; ++kw)
            sum_run(acc, buf + kh * w->dilation[1] * g->cols + kw * w->dilation[2], g->run,
                    w->stride[2]);
    const float *col_counts = counts + w->out[1];
    for (size_t oh = 0; oh < w->out[1]; ++oh, y += w->out[2]) {
        const float *row = acc + oh * g->cols;
        for (size_t ow = 0; ow < w->out[2]; ++ow) {   /* small whole numbers: products exact */
            const float count = counts[oh] * col_counts[ow];
            y[ow] = count > 0 ? row[ow] / count : 0.0f;
        }
    }
}

/* The small-plane average's divisors: taps per output row, then per output column. */
static void small_counts(const nn_pool_window *w, bool count_include_pad, float *counts) {
    for (int d = 1; d < 3; ++d)
        for (size_t o = 0; o < w->out[d]; ++o) {
            const pool_span s = span_at(w, d, o);
            *counts++ = (float)(count_include_pad ? s.padded : s.hi - s.lo);
        }
}

static void maxpool_planes(const float *x, float *y, int64_t *indices, int storage_order,
                           const nn_pool_window *w, size_t p0, size_t p1) {
    const size_t in_plane = w->in[0] * w->in[1] * w->in[2];
    const size_t out_plane = w->out[0] * w->out[1] * w->out[2];
    size_t c0 = 0, c1 = 0;
    pool_span s[3];
    if (!indices)
        interior_columns(w, &c0, &c1);
    y += p0 * out_plane;
    if (indices)
        indices += p0 * out_plane;
    for (size_t p = p0; p < p1; ++p) {
        const float *xp = x + p * in_plane;
        for (size_t od = 0; od < w->out[0]; ++od) {
            s[0] = span_at(w, 0, od);
            for (size_t oh = 0; oh < w->out[1]; ++oh) {
                s[1] = span_at(w, 1, oh);
                for (size_t ow = 0; ow < w->out[2]; ++ow) {
                    if (ow == c0 && c1 > c0) {      /* the interior: whole runs per tap */
                        max_interior(xp, w, s, c0, c1 - c0, y);
                        y += c1 - c0;
                        ow = c1 - 1;
                        continue;
                    }
                    s[2] = span_at(w, 2, ow);
                    if (!indices) {
                        *y++ = window_max(xp, w, s, NULL);
                        continue;
                    }
                    size_t at[3] = {0, 0, 0};
                    *y++ = window_max(xp, w, s, at);
                    const size_t flat = storage_order == 0
                        ? (at[0] * w->in[1] + at[1]) * w->in[2] + at[2]
                        : at[0] + (at[1] + at[2] * w->in[1]) * w->in[0];
                    *indices++ = (int64_t)(p * in_plane + flat);
                }
            }
        }
    }
}

#ifdef NN_POOL_VECTOR
/* --- vector rows: 2-D pools in vectors, borders included ---------------------------------------
 * The target defines, before including this header, NN_POOL_VECTOR, `vec` (VL floats), vload /
 * vstore (unaligned), vset1, vadd, vmul, vmax(a, b) (a > b ? a : b, lane by lane),
 * pool_load_upto(x, n, fill) (x[0 .. min(n, VL)), `fill` after; reads
 * nothing past x[n - 1]; n <= 0: all fill), pool_store_upto(p, v, n) (the first min(n, VL)
 * lanes), pool_even(a, b) / pool_odd(a, b) (lanes 0, 2, 4 ... / 1, 3, 5 ... of a then b) and
 * pool_shift_up(v, k, fill) (lanes [k, VL) are v's lanes [0, VL - k), lanes below k are fill;
 * 0 < k < VL). It may define NN_POOL_MAX_ROWS to take MaxPool's vector rows too (padded
 * planes take both pools).
 * Each input row a window reads is reduced once along w, VL output columns at a time, in tap
 * order: h[ow] = the first maximum / the float sum of the row's taps of output column ow, taps
 * outside the row read as -INFINITY (never a maximum, as window_max skips them) / +0.0. Those
 * rows (a ring of the last (k_h - 1) * d_h + 1) are then combined in order along h.
 * MaxPool: the first maximum of a window's taps in window order is the first maximum of its
 * rows' first maxima, in order (and no row's is NaN: a NaN tap never wins): the same results
 * as window_max. Rows whose every column is interior keep the interior runs (max3_rows): as
 * fast there. AveragePool: each window's sum is its rows' sums (each in w order) added in h
 * order, a fixed order set by the shapes (not window_sum's tap by tap: within rounding of it),
 * then multiplied by 1 / (its rows' count) and 1 / (its columns' count) (a division per vector
 * took a fifth of a 7x7 plane's time). A plane whose reduced rows all fit keeps them all (no
 * ring: each row in its own slot). */
#define VR_ROWS 16            /* most taps along h */
#define VR_FLOATS 4096        /* the ring of reduced rows */

typedef struct {
    int Wv;                   /* output columns rounded up to VL: one reduced row */
    int slots;                /* reduced rows in the ring */
} vr_layout;

static bool vr_fits(const nn_pool_window *w, bool sum, vr_layout *g) {
    size_t c0, c1;
    interior_columns(w, &c0, &c1);
    if (w->in[0] != 1 || w->out[0] != 1 || w->kernel[0] != 1 || w->pad_begin[0] != 0 ||
        (w->stride[2] != 1 && w->stride[2] != 2) || w->kernel[1] > VR_ROWS ||
        w->pad_begin[2] >= VL || w->in[1] > ((size_t)1 << 28) || w->in[2] > ((size_t)1 << 28) ||
        (!sum && (w->out[2] < VL / 2 || (c0 == 0 && c1 == w->out[2]))))
        return false;
    g->Wv = (int)((w->out[2] + VL - 1) / VL * VL);
    g->slots = (int)((w->kernel[1] - 1) * w->dilation[1] + 1);
    if (w->in[1] <= VR_ROWS * VR_ROWS && (size_t)g->Wv * w->in[1] <= VR_FLOATS)
        g->slots = (int)w->in[1];
    return g->slots <= VR_ROWS * VR_ROWS && (size_t)g->Wv * (size_t)g->slots <= VR_FLOATS;
}

/* Columns [c, c + VL) of a row of n floats, `fill` outside it (c > -VL). */
static inline __attribute__((always_inline)) vec vr_cols(const float *row, int c, int n,
                                                         vec fill) {
    if (c >= 0)
        return c + VL <= n ? vload(row + c) : pool_load_upto(row + c, n - c, fill);
    return pool_shift_up(pool_load_upto(row, n, fill), -c, fill);
}

/* The running reduction of a row's taps: acc, then the next tap. */
static inline __attribute__((always_inline)) vec vr_op(bool sum, vec acc, vec t) {
    return sum ? vadd(acc, t) : vmax(t, acc);
}

/* The reduction, from acc, of VL output columns of row r (n floats), the first one's taps
 * from column c (stride s2, k2 taps d2 apart); `inside`: every column read lies in the row. */
static inline __attribute__((always_inline)) vec vr_row(const float *r, int c, int n, int k2,
                                                        int d2, int s2, bool inside, bool sum,
                                                        vec acc, vec fill) {
    if (s2 == 1) {
        for (int kw = 0; kw < k2; ++kw)
            acc = vr_op(sum, acc, inside ? vload(r + c + kw * d2)
                                         : vr_cols(r, c + kw * d2, n, fill));
    } else if (d2 == 1 && k2 == 3) {    /* taps 0 and 1: the even and odd lanes of one pair */
        const vec a0 = inside ? vload(r + c) : vr_cols(r, c, n, fill);
        const vec a1 = inside ? vload(r + c + VL) : vr_cols(r, c + VL, n, fill);
        acc = vr_op(sum, acc, pool_even(a0, a1));
        acc = vr_op(sum, acc, pool_odd(a0, a1));
        const vec b0 = inside ? vload(r + c + 2) : vr_cols(r, c + 2, n, fill);
        const vec b1 = inside ? vload(r + c + 2 + VL) : vr_cols(r, c + 2 + VL, n, fill);
        acc = vr_op(sum, acc, pool_even(b0, b1));
    } else {
        for (int kw = 0; kw < k2; ++kw) {
            const int o = c + kw * d2;
            acc = vr_op(sum, acc, pool_even(inside ? vload(r + o) : vr_cols(r, o, n, fill),
                                            inside ? vload(r + o + VL)
                                                   : vr_cols(r, o + VL, n, fill)));
        }
    }
    return acc;
}

/* Input row r reduced along w into h[0 .. Wv). */
static inline __attribute__((always_inline)) void vr_reduce(const float *r,
                                                            const nn_pool_window *w, int Wv,
                                                            bool sum, float *h) {
    const int n = (int)w->in[2], k2 = (int)w->kernel[2];
    const int d2 = (int)w->dilation[2], s2 = (int)w->stride[2], pad = (int)w->pad_begin[2];
    const int reach = (k2 - 1) * d2 + s2 * VL;   /* columns VL outputs read */
    const vec fill = vset1(sum ? 0.0f : -INFINITY);
    for (int ow = 0; ow < Wv; ow += VL) {
        const int c = ow * s2 - pad;
        const bool inside = c >= 0 && c + reach <= n;
        vec acc;
        if (inside && k2 == 3 && d2 == 1)
            acc = s2 == 2 ? vr_row(r, c, n, 3, 1, 2, true, sum, fill, fill)
                          : vr_row(r, c, n, 3, 1, 1, true, sum, fill, fill);
        else if (inside)
            acc = vr_row(r, c, n, k2, d2, s2, true, sum, fill, fill);
        else
            acc = vr_row(r, c, n, k2, d2, s2, false, sum, fill, fill);
        vstore(h + ow, acc);
    }
}

/* The ring slot of input row ih, from the last one's: (ih mod slots) without a division. */
static inline int vr_slot(int ih, int slots, int *last_ih, int *last_slot) {
    int slot = *last_slot + (ih - *last_ih);
    while (slot < 0)
        slot += slots;
    while (slot >= slots)
        slot -= slots;
    *last_ih = ih;
    *last_slot = slot;
    return slot;
}

/* One plane; AveragePool's `inv_cols`: 1 / (taps per output column, as its count counts them),
 * 0 for none (Wv values). */
static inline __attribute__((always_inline)) void vr_plane(
        const float *xp, const nn_pool_window *w, const vr_layout *g, bool sum,
        bool count_include_pad, const float *inv_cols, float *y) {
    float ring[VR_FLOATS] __attribute__((aligned(64)));
    int held[VR_ROWS * VR_ROWS];      /* the input row each slot holds (-1: none) */
    const int in2 = (int)w->in[2], out2 = (int)w->out[2];
    int last_ih = 0, last_slot = 0;
    for (int i = 0; i < g->slots; ++i)
        held[i] = -1;
    for (size_t oh = 0; oh < w->out[1]; ++oh, y += out2) {
        const pool_span sh = span_at(w, 1, oh);
        const float *rows[VR_ROWS];
        int nr = 0;
        for (size_t kh = sh.lo; kh < sh.hi; ++kh) {
            const int ih = (int)tap(&sh, kh, w->dilation[1]);
            const int slot = vr_slot(ih, g->slots, &last_ih, &last_slot);
            float *h = ring + (size_t)slot * g->Wv;
            if (held[slot] != ih) {
                vr_reduce(xp + (size_t)ih * in2, w, g->Wv, sum, h);
                held[slot] = ih;
            }
            rows[nr++] = h;
        }
        const size_t taps_h = count_include_pad ? sh.padded : sh.hi - sh.lo;
        const vec inv_h = vset1(taps_h ? 1.0f / (float)taps_h : 0.0f);
        for (int ow = 0; ow < out2; ow += VL) {
            vec acc = vset1(sum ? 0.0f : -INFINITY);
            if (nr > 0)
                acc = vload(rows[0] + ow);
            for (int i = 1; i < nr; ++i)
                acc = vr_op(sum, acc, vload(rows[i] + ow));
            if (sum)
                acc = vmul(acc, vmul(inv_h, vload(inv_cols + ow)));
            pool_store_upto(y + ow, acc, out2 - ow);
        }
    }
}

#ifdef NN_POOL_MAX_ROWS
static void max_vrows(const float *xp, const nn_pool_window *w, const vr_layout *g, float *y) {
    vr_plane(xp, w, g, false, false, NULL, y);
}
#endif

/* AveragePool's planes p0 .. p1 - 1. */
static void avg_vrows(const float *x, float *y, bool count_include_pad, const nn_pool_window *w,
                      const vr_layout *g, size_t p0, size_t p1) {
    float cols[VR_FLOATS] __attribute__((aligned(64)));   /* Wv <= VR_FLOATS */
    for (int ow = 0; ow < g->Wv; ++ow) {
        const pool_span s = span_at(w, 2, (size_t)ow < w->out[2] ? (size_t)ow : 0);
        const size_t taps = count_include_pad ? s.padded : s.hi - s.lo;
        cols[ow] = taps ? 1.0f / (float)taps : 0.0f;
    }
    const size_t in_plane = w->in[1] * w->in[2], out_plane = w->out[1] * w->out[2];
    for (size_t p = p0; p < p1; ++p)
        vr_plane(x + p * in_plane, w, g, true, count_include_pad, cols, y + p * out_plane);
}

/* --- padded planes in vectors: 2-D windows over planes of at most VP_FLOATS floats -------------
 * A plane is copied, its padding filled (as the small planes: -INFINITY / +0.0) into
 * rows x cols floats (cols a multiple of the stride along w), each row of the copy reduced
 * along w at once as one flat run h[j] = the taps of copy[stride * j + kw * dilation] (j over
 * rows x cols / stride: positions between rows computed and dropped), then each output row
 * combines its rows of h in h order: no border cases, no per-row bookkeeping beyond that. The
 * same order as the vector rows (each row's taps in w order, the rows in h order): MaxPool's
 * first maximum, AveragePool's fixed sum, multiplied by 1 / count (a table over the plane). */
#define VP_FLOATS 4096
#define VP_GUARD (4 * VL)     /* fill after the copy: h's last vector reads up to 3 VL - 1 on */

typedef struct {
    int rows, cols;           /* the copy */
    int hcols;                /* cols / stride: one row of h */
} vp_layout;

static bool vp_fits(const nn_pool_window *w, vp_layout *g) {
    if (w->in[0] != 1 || w->out[0] != 1 || w->kernel[0] != 1 || w->pad_begin[0] != 0 ||
        (w->stride[2] != 1 && w->stride[2] != 2) || w->kernel[1] > VR_ROWS ||
        w->kernel[2] > VR_ROWS || w->pad_begin[1] > VP_FLOATS || w->pad_begin[2] > VP_FLOATS ||
        w->in[1] > VP_FLOATS || w->in[2] > VP_FLOATS || w->out[1] > VP_FLOATS ||
        w->out[2] > VP_FLOATS || w->dilation[1] > VP_FLOATS || w->dilation[2] > VP_FLOATS ||
        w->stride[1] > VP_FLOATS || (w->kernel[2] - 1) * w->dilation[2] > VL)
        return false;
    const size_t s2 = w->stride[2];
    const size_t rows = (w->out[1] - 1) * w->stride[1] + (w->kernel[1] - 1) * w->dilation[1] + 1;
    size_t cols = (w->out[2] - 1) * s2 + (w->kernel[2] - 1) * w->dilation[2] + 1;
    cols = (cols + s2 - 1) / s2 * s2;
    g->rows = (int)rows;
    g->cols = (int)cols;
    g->hcols = (int)(cols / s2);
    return rows * cols <= VP_FLOATS;
}

/* The copy's padding and the VP_GUARD floats after it: the fill (once for all planes: each
 * plane's copy writes the same positions, and fill after its rows' ends). */
static inline __attribute__((always_inline)) void vp_fill(const vp_layout *g, vec fill,
                                                          float *buf) {
    for (int i = 0; i < g->rows * g->cols + VP_GUARD - VL; i += VL)
        vstore(buf + i, fill);
}

/* The copy of plane xp, over vp_fill's. */
static inline __attribute__((always_inline)) void vp_copy(const float *xp,
                                                          const nn_pool_window *w,
                                                          const vp_layout *g, vec fill,
                                                          float *buf) {
    const int top = (int)w->pad_begin[1], left = (int)w->pad_begin[2];
    const int in1 = (int)w->in[1], in2 = (int)w->in[2];
    const int n = in2 < g->cols - left ? in2 : g->cols - left;   /* columns copied per row */
    for (int r = top; r < g->rows && r - top < in1; ++r) {
        const float *x = xp + (size_t)(r - top) * in2;
        float *b = buf + r * g->cols + left;
        /* whole vectors, the last with fill after the row (before the next row's copy); one
         * loop, which gcc does not turn into a call to memcpy per row */
        for (int c = 0; c < n; c += VL)
            vstore(b + c, pool_load_upto(x + c, n - c, fill));
    }
}

/* The k1 rows from hr (step floats apart) reduced, a vector of columns. */
static inline __attribute__((always_inline)) vec vp_column(const float *hr, int k1, int step,
                                                           bool sum) {
    vec acc = vload(hr);
    for (int kh = 1; kh < k1; ++kh)
        acc = vr_op(sum, acc, vload(hr + kh * step));
    return acc;
}

/* A plane's outputs from its rows reduced along w (h, hcols floats a row). */
static inline __attribute__((always_inline)) void vp_rows(
        const float *h, int hcols, int k1, int d1, int s1, int out1, int out2, bool sum,
        const float *inv, float *y) {
    const int step = d1 * hcols;
    for (int oh = 0; oh < out1; ++oh, y += out2) {
        const float *hr = h + oh * s1 * hcols;
        const float *ir = sum ? inv + oh * out2 : NULL;
        int ow = 0;
        for (; ow + VL <= out2; ow += VL) {
            const vec acc = vp_column(hr + ow, k1, step, sum);
            vstore(y + ow, sum ? vmul(acc, vload(ir + ow)) : acc);
        }
        if (ow < out2) {
            vec acc = vp_column(hr + ow, k1, step, sum);
            if (sum)
                acc = vmul(acc, pool_load_upto(ir + ow, out2 - ow, acc));
            pool_store_upto(y + ow, acc, out2 - ow);
        }
    }
}

/* The planes p0 .. p1 - 1; inv: AveragePool's 1 / count per output (NULL: MaxPool). */
static inline __attribute__((always_inline)) void vp_planes(
        const float *x, float *y, const nn_pool_window *w, const vp_layout *g, bool sum,
        const float *inv, size_t p0, size_t p1) {
    float buf[VP_FLOATS + VP_GUARD] __attribute__((aligned(64)));
    float h[VP_FLOATS + VR_ROWS * VL] __attribute__((aligned(64)));
    const vec fill = vset1(sum ? 0.0f : -INFINITY);
    const int k2 = (int)w->kernel[2], d2 = (int)w->dilation[2], s2 = (int)w->stride[2];
    const int k1 = (int)w->kernel[1], d1 = (int)w->dilation[1], s1 = (int)w->stride[1];
    const int out1 = (int)w->out[1], out2 = (int)w->out[2];
    const int hsize = g->rows * g->hcols;
    const size_t in_plane = w->in[1] * w->in[2], out_plane = w->out[1] * w->out[2];
    vp_fill(g, fill, buf);
    for (size_t p = p0; p < p1; ++p) {
        vp_copy(x + p * in_plane, w, g, fill, buf);
        for (int j = 0; j < hsize; j += VL)     /* reads up to the guard */
            vstore(h + j, k2 == 3 && d2 == 1
                              ? (s2 == 1 ? vr_row(buf, j, 0, 3, 1, 1, true, sum, fill, fill)
                                         : vr_row(buf, 2 * j, 0, 3, 1, 2, true, sum, fill, fill))
                              : vr_row(buf, s2 * j, 0, k2, d2, s2, true, sum, fill, fill));
        float *yp = y + p * out_plane;
        if (k1 == 3)
            vp_rows(h, g->hcols, 3, d1, s1, out1, out2, sum, inv, yp);
        else
            vp_rows(h, g->hcols, k1, d1, s1, out1, out2, sum, inv, yp);
    }
}

static void max_vplanes(const float *x, float *y, const nn_pool_window *w, const vp_layout *g,
                        size_t p0, size_t p1) {
    vp_planes(x, y, w, g, false, NULL, p0, p1);
}

static void avg_vplanes(const float *x, float *y, bool count_include_pad,
                        const nn_pool_window *w, const vp_layout *g, size_t p0, size_t p1) {
    float inv[VP_FLOATS];     /* out_h * out_w <= rows * cols */
    for (size_t oh = 0, i = 0; oh < w->out[1]; ++oh) {
        const pool_span sh = span_at(w, 1, oh);
        for (size_t ow = 0; ow < w->out[2]; ++ow, ++i) {
            const pool_span sw = span_at(w, 2, ow);
            const size_t count = count_include_pad ? sh.padded * sw.padded
                                                   : (sh.hi - sh.lo) * (sw.hi - sw.lo);
            inv[i] = count ? 1.0f / (float)count : 0.0f;
        }
    }
    vp_planes(x, y, w, g, true, inv, p0, p1);
}
#endif /* NN_POOL_VECTOR */

static void maxpool_task(const void *ctx, int t, void *scratch) {
    const pool_job *j = ctx;
    int p0, p1;
    (void)scratch;
    small_plane g;
    nn_tile_range((int)j->planes, j->tiles, 1, t, &p0, &p1);
    if (!j->indices && whole_plane(j->w)) {
        const size_t size = j->w->in[0] * j->w->in[1] * j->w->in[2];
        for (size_t p = (size_t)p0; p < (size_t)p1; ++p)
            j->y[p] = plane_max(j->x + p * size, size);
        return;
    }
#ifdef NN_POOL_VECTOR
    vp_layout vp;
    if (!j->indices && vp_fits(j->w, &vp)) {
        max_vplanes(j->x, j->y, j->w, &vp, (size_t)p0, (size_t)p1);
        return;
    }
#endif
    if (!j->indices && small_plane_fits(j->w, &g)) {
        const size_t in_plane = j->w->in[1] * j->w->in[2], out_plane = j->w->out[1] * j->w->out[2];
        for (size_t p = (size_t)p0; p < (size_t)p1; ++p)
            max_small(j->x + p * in_plane, j->w, &g, j->y + p * out_plane);
        return;
    }
#ifdef NN_POOL_MAX_ROWS
    vr_layout vr;
    if (!j->indices && vr_fits(j->w, false, &vr)) {
        const size_t in_plane = j->w->in[1] * j->w->in[2], out_plane = j->w->out[1] * j->w->out[2];
        for (size_t p = (size_t)p0; p < (size_t)p1; ++p)
            max_vrows(j->x + p * in_plane, j->w, &vr, j->y + p * out_plane);
        return;
    }
#endif
    maxpool_planes(j->x, j->y, j->indices, j->storage_order, j->w, (size_t)p0, (size_t)p1);
}

void NN_FN(maxpool_f32)(const float *x, float *y, int64_t *indices, int storage_order,
                        const nn_pool_window *w) {
    const pool_job j = {x, y, indices, storage_order, false, w, w->planes, plane_tiles(w)};
    NN_FN(parallel_for)(j.tiles, maxpool_task, &j, NULL, 0);
}

static void avgpool_planes(const float *x, float *y, bool count_include_pad,
                           const nn_pool_window *w, size_t p0, size_t p1) {
    const size_t in_plane = w->in[0] * w->in[1] * w->in[2];
    size_t c0, c1;
    pool_span s[3];
    interior_columns(w, &c0, &c1);
    y += p0 * (w->out[0] * w->out[1] * w->out[2]);
    for (size_t p = p0; p < p1; ++p) {
        const float *xp = x + p * in_plane;
        for (size_t od = 0; od < w->out[0]; ++od) {
            s[0] = span_at(w, 0, od);
            for (size_t oh = 0; oh < w->out[1]; ++oh) {
                s[1] = span_at(w, 1, oh);
                for (size_t ow = 0; ow < w->out[2]; ++ow) {
                    if (ow >= c0 && ow < c1) {      /* the interior: whole runs per tap */
                        const size_t n = c1 - ow < POOL_RUN ? c1 - ow : POOL_RUN;
                        avg_interior(xp, w, s, count_include_pad, ow, n, y);
                        y += n;
                        ow += n - 1;
                        continue;
                    }
                    s[2] = span_at(w, 2, ow);
                    const size_t count = count_include_pad
                        ? s[0].padded * s[1].padded * s[2].padded
                        : (s[0].hi - s[0].lo) * (s[1].hi - s[1].lo) * (s[2].hi - s[2].lo);
                    *y++ = count ? window_sum(xp, w, s) / (float)count : 0.0f;
                }
            }
        }
    }
}

static void avgpool_task(const void *ctx, int t, void *scratch) {
    const pool_job *j = ctx;
    int p0, p1;
    (void)scratch;
    small_plane g;
    nn_tile_range((int)j->planes, j->tiles, 1, t, &p0, &p1);
    if (whole_plane(j->w)) {
        const size_t size = j->w->in[0] * j->w->in[1] * j->w->in[2];
        for (size_t p = (size_t)p0; p < (size_t)p1; ++p)
            j->y[p] = plane_mean(j->x + p * size, size);
        return;
    }
#ifdef NN_POOL_VECTOR
    vp_layout vp;
    if (vp_fits(j->w, &vp)) {
        avg_vplanes(j->x, j->y, j->count_include_pad, j->w, &vp, (size_t)p0, (size_t)p1);
        return;
    }
    vr_layout vr;
    if (vr_fits(j->w, true, &vr)) {
        avg_vrows(j->x, j->y, j->count_include_pad, j->w, &vr, (size_t)p0, (size_t)p1);
        return;
    }
#endif
    if (small_plane_fits(j->w, &g)) {
        const size_t in_plane = j->w->in[1] * j->w->in[2], out_plane = j->w->out[1] * j->w->out[2];
        float counts[POOL_SMALL + 1];   /* out_h + out_w <= rows + cols <= POOL_SMALL + 1 */
        small_counts(j->w, j->count_include_pad, counts);
        for (size_t p = (size_t)p0; p < (size_t)p1; ++p)
            avg_small(j->x + p * in_plane, j->w, &g, counts, j->y + p * out_plane);
        return;
    }
    avgpool_planes(j->x, j->y, j->count_include_pad, j->w, (size_t)p0, (size_t)p1);
}

void NN_FN(avgpool_f32)(const float *x, float *y, bool count_include_pad,
                        const nn_pool_window *w) {
    const pool_job j = {x, y, NULL, 0, count_include_pad, w, w->planes, plane_tiles(w)};
    NN_FN(parallel_for)(j.tiles, avgpool_task, &j, NULL, 0);
}

typedef struct {
    const float *x;
    float *y;
    size_t planes, size;
    int tiles;
    bool mean;
} global_job;

static void global_task(const void *ctx, int t, void *scratch) {
    const global_job *j = ctx;
    int p0, p1;
    (void)scratch;
    nn_tile_range((int)j->planes, j->tiles, 1, t, &p0, &p1);
    for (size_t p = (size_t)p0; p < (size_t)p1; ++p)
        j->y[p] = j->mean ? plane_mean(j->x + p * j->size, j->size)
                          : plane_max(j->x + p * j->size, j->size);
}

static void global_pool(const float *x, float *y, size_t planes, size_t size, bool mean) {
    if (planes == 0)
        return;
    global_job j = {x, y, planes, size, plane_tasks(planes, (double)planes * (double)size), mean};
    NN_FN(parallel_for)(j.tiles, global_task, &j, NULL, 0);
}

void NN_FN(global_maxpool_f32)(const float *x, float *y, size_t planes, size_t size) {
    global_pool(x, y, planes, size, false);
}

void NN_FN(global_avgpool_f32)(const float *x, float *y, size_t planes, size_t size) {
    global_pool(x, y, planes, size, true);
}

#endif /* NN_POOL_DRIVER_H */
