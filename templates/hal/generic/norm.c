/* Normalization kernels. Statistics take two passes (mean, then squared deviations) in
 * double, so large means do not cancel the variance away.
 *
 * Vectorisation is left to the compiler: sums run in LANES independent partial sums (element
 * i goes to partial i % LANES, the partials are then added in one fixed order), and the
 * element loops call nn_vmath.h's branch-free exp / log, so they auto-vectorise at -O3 with
 * the target's flags. Work is split over the thread pool at whole rows / planes / lines; the
 * split never changes which operations produce an element, so results are bit-identical at
 * every thread count. Outputs never overlap inputs (the memory planner does not run these in
 * place): the element loops take restrict pointers, so the compiler emits no overlap checks and
 * no second, scalar copy of each loop. */
#include "norm.h"

#include "nn_pool.h"
#include "nn_vmath.h"

#define LANES 16          /* partial sums of a reduction */
#define BLOCK 256         /* elements a kernel keeps on its stack (LRN's window sums ...) */

/* The sum of LANES partials in one fixed order (pairwise). */
static double sum_lanes(double *s) {
    for (int half = LANES / 2; half > 0; half /= 2)
        for (int l = 0; l < half; ++l)
            s[l] += s[l + half];
    return s[0];
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Tasks for `units` independent units (rows, planes) of `elements` in all, each costing
 * `cost`: the pool's unit of work is a GEMM flop (about 0.01 ns per core), so an element's cost
 * is its time in those (measured with AVX-512: batch normalization 10, moments and scaling
 * 40, a softmax element 90, LRN 120 plus its window's multiply-adds). */
static int unit_tasks(size_t units, double elements, double cost) {
    const int tasks = nn_task_count(elements * cost);
    return (size_t)tasks < units ? tasks : (int)(units > 0 ? units : 1);
}

/* Units [*u0, *u1) of task t of `tasks`. */
static void unit_range(size_t units, int tasks, int t, size_t *u0, size_t *u1) {
    *u0 = units * (size_t)t / (size_t)tasks;
    *u1 = units * (size_t)(t + 1) / (size_t)tasks;
}

/* y = x * s + b over n elements. */
static void scale_shift(const float *restrict x, float *restrict y, size_t n, float s, float b) {
    for (size_t i = 0; i < n; ++i)
        y[i] = x[i] * s + b;
}

/* --- batch normalization ------------------------------------------------------------------ */
typedef struct {
    const float *x;
    float *y;
    const float *scale, *bias, *mean, *var;
    float epsilon;
    size_t planes, channels, inner;
    int tasks;
} batchnorm_job;

static void batchnorm_task(const void *ctx, int t, void *scratch) {
    const batchnorm_job *j = ctx;
    size_t p0, p1;
    (void)scratch;
    unit_range(j->planes, j->tasks, t, &p0, &p1);
    for (size_t p = p0; p < p1; ++p) {
        const size_t c = p % j->channels;
        const float s = j->scale[c] / sqrtf(j->var[c] + j->epsilon);
        scale_shift(j->x + p * j->inner, j->y + p * j->inner, j->inner, s,
                    j->bias[c] - j->mean[c] * s);
    }
}

void NN_FN(batchnorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                          const float *mean, const float *var, float epsilon, size_t batch,
                          size_t channels, size_t inner) {
    const size_t planes = batch * channels;
    const batchnorm_job j = {x, y, scale, bias, mean, var, epsilon, planes, channels, inner,
                             unit_tasks(planes, (double)planes * (double)inner, 10.0)};
    NN_FN(parallel_for)(j.tasks, batchnorm_task, &j, NULL, 0);
}

/* --- instance and layer normalization ----------------------------------------------------- */
/* Mean and 1 / sqrt(variance + epsilon) of x[0..size). */
static void moments(const float *x, size_t size, float epsilon, float *mean, float *inv_std) {
    double s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= size; i += LANES)
        for (int l = 0; l < LANES; ++l)
            s[l] += x[i + l];
    for (int l = 0; i < size; ++i, ++l)
        s[l] += x[i];
    const double m = sum_lanes(s) / (double)size;
    double q[LANES] = {0};
    for (i = 0; i + LANES <= size; i += LANES)
        for (int l = 0; l < LANES; ++l) {
            const double d = x[i + l] - m;
            q[l] += d * d;
        }
    for (int l = 0; i < size; ++i, ++l) {
        const double d = x[i] - m;
        q[l] += d * d;
    }
    *mean = (float)m;
    *inv_std = (float)(1.0 / sqrt(sum_lanes(q) / (double)size + epsilon));
}

typedef struct {
    const float *x;
    float *y;
    const float *scale, *bias;
    float *mean, *inv_std_dev;
    float epsilon;
    size_t rows, size, channels;     /* channels: instance norm's parameter period */
    int tasks;
} norm_job;

static void instancenorm_task(const void *ctx, int t, void *scratch) {
    const norm_job *j = ctx;
    size_t p0, p1;
    (void)scratch;
    unit_range(j->rows, j->tasks, t, &p0, &p1);
    for (size_t p = p0; p < p1; ++p) {
        const float *x = j->x + p * j->size;
        float *y = j->y + p * j->size;
        const size_t c = p % j->channels;
        float m, r;
        moments(x, j->size, j->epsilon, &m, &r);
        const float s = r * j->scale[c];
        scale_shift(x, y, j->size, s, j->bias[c] - m * s);
    }
}

void NN_FN(instancenorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                             float epsilon, size_t batch, size_t channels, size_t inner) {
    const size_t planes = batch * channels;
    const norm_job j = {x, y, scale, bias, NULL, NULL, epsilon, planes, inner, channels,
                        unit_tasks(planes, (double)planes * (double)inner, 40.0)};
    NN_FN(parallel_for)(j.tasks, instancenorm_task, &j, NULL, 0);
}

/* y = (x - m) * r * scale + bias (bias may be NULL) over one row. */
static void layernorm_row(const float *restrict x, float *restrict y, const float *scale,
                          const float *bias, size_t size, float m, float r) {
    if (bias) {
        for (size_t i = 0; i < size; ++i)
            y[i] = (x[i] - m) * r * scale[i] + bias[i];
    } else {
        for (size_t i = 0; i < size; ++i)
            y[i] = (x[i] - m) * r * scale[i];
    }
}

static void layernorm_task(const void *ctx, int t, void *scratch) {
    const norm_job *j = ctx;
    const size_t size = j->size;
    size_t r0, r1;
    (void)scratch;
    unit_range(j->rows, j->tasks, t, &r0, &r1);
    for (size_t row = r0; row < r1; ++row) {
        const float *x = j->x + row * size;
        float m, r;
        moments(x, size, j->epsilon, &m, &r);
        if (j->mean) j->mean[row] = m;
        if (j->inv_std_dev) j->inv_std_dev[row] = r;
        layernorm_row(x, j->y + row * size, j->scale, j->bias, size, m, r);
    }
}

void NN_FN(layernorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                          float *mean, float *inv_std_dev, float epsilon, size_t rows,
                          size_t size) {
    const norm_job j = {x, y, scale, bias, mean, inv_std_dev, epsilon, rows, size, 1,
                        unit_tasks(rows, (double)rows * (double)size, 40.0)};
    NN_FN(parallel_for)(j.tasks, layernorm_task, &j, NULL, 0);
}

/* --- local response normalization --------------------------------------------------------- */
typedef struct {
    const float *x;
    float *y;
    size_t channels, inner, before, after;
    float alpha_over_size, beta, bias;
    size_t planes;
    int tasks;
} lrn_job;

/* y = x * exp(-beta * ln(b + a * sum)) over len elements. */
static void lrn_scale(const float *restrict x, const float *restrict sum, float *restrict y,
                      size_t len, float a, float b, float minus_beta) {
    for (size_t i = 0; i < len; ++i)
        y[i] = x[i] * nn_expf(minus_beta * nn_logf(b + a * sum[i]));
}

/* Output planes [p0, p1) (plane p is sample p / channels, channel p % channels), BLOCK
 * positions at a time: the window's squares are summed channel by channel from the lowest,
 * then y = x * exp(-beta * ln(bias + alpha / size * sum)). */
static void lrn_planes(const lrn_job *j, size_t p0, size_t p1) {
    const size_t channels = j->channels, inner = j->inner;
    const float a = j->alpha_over_size, b = j->bias, minus_beta = -j->beta;
    float sum[BLOCK];
    for (size_t p = p0; p < p1; ++p) {
        const size_t c = p % channels;
        const float *xn = j->x + (p - c) * inner;
        const float *xc = j->x + p * inner;
        float *yc = j->y + p * inner;
        const size_t lo = c < j->before ? 0 : c - j->before;
        const size_t hi = c + j->after < channels ? c + j->after : channels - 1;
        for (size_t i0 = 0; i0 < inner; i0 += BLOCK) {
            const size_t len = min_size(BLOCK, inner - i0);
            const float *first = xn + lo * inner + i0;
            for (size_t i = 0; i < len; ++i)
                sum[i] = first[i] * first[i];
            for (size_t k = lo + 1; k <= hi; ++k) {
                const float *row = xn + k * inner + i0;
                for (size_t i = 0; i < len; ++i)
                    sum[i] += row[i] * row[i];
            }
            lrn_scale(xc + i0, sum, yc + i0, len, a, b, minus_beta);
        }
    }
}

static void lrn_task(const void *ctx, int t, void *scratch) {
    const lrn_job *j = ctx;
    size_t p0, p1;
    (void)scratch;
    unit_range(j->planes, j->tasks, t, &p0, &p1);
    lrn_planes(j, p0, p1);
}

void NN_FN(lrn_f32)(const float *x, float *y, size_t batch, size_t channels, size_t inner,
                    size_t size, float alpha, float beta, float bias) {
    const size_t before = (size - 1) / 2, after = size - 1 - before;
    const size_t planes = batch * channels;
    const lrn_job j = {x, y, channels, inner, before, after, alpha / (float)size, beta, bias,
                       planes, unit_tasks(planes, (double)planes * (double)inner,
                                          120.0 + 2.0 * (double)size)};
    NN_FN(parallel_for)(j.tasks, lrn_task, &j, NULL, 0);
}

/* --- softmax ------------------------------------------------------------------------------ */
/* One contiguous line of n elements: the maximum and the sum of exponentials in LANES
 * partials, the exponentials kept in y. */
static void softmax_row(const float *restrict x, float *restrict y, size_t n, bool log_of) {
    float t[LANES];
    for (int l = 0; l < LANES; ++l)
        t[l] = -INFINITY;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; ++l)
            t[l] = x[i + l] > t[l] ? x[i + l] : t[l];
    for (int l = 0; i < n; ++i, ++l)
        t[l] = x[i] > t[l] ? x[i] : t[l];
    float top = t[0];
    for (int l = 1; l < LANES; ++l)
        top = t[l] > top ? t[l] : top;
    double s[LANES] = {0};
    for (i = 0; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; ++l) {
            const float e = nn_expf(x[i + l] - top);
            y[i + l] = e;
            s[l] += e;
        }
    for (int l = 0; i < n; ++i, ++l) {
        const float e = nn_expf(x[i] - top);
        y[i] = e;
        s[l] += e;
    }
    if (log_of) {
        const double shift = (double)top + log(sum_lanes(s));
        for (i = 0; i < n; ++i)
            y[i] = (float)(x[i] - shift);
        return;
    }
    const float scale = (float)(1.0 / sum_lanes(s));
    for (i = 0; i < n; ++i)
        y[i] *= scale;
}

/* Columns [j0, j0 + len) of one [n][inner] slab: each column is a line, BLOCK side by side. */
static void softmax_columns(const float *restrict x, float *restrict y, size_t n, size_t inner,
                            size_t len, bool log_of) {
    float top[BLOCK];
    double sum[BLOCK];
    for (size_t j = 0; j < len; ++j) {
        top[j] = -INFINITY;
        sum[j] = 0;
    }
    for (size_t k = 0; k < n; ++k)
        for (size_t j = 0; j < len; ++j)
            top[j] = x[k * inner + j] > top[j] ? x[k * inner + j] : top[j];
    for (size_t k = 0; k < n; ++k)
        for (size_t j = 0; j < len; ++j) {
            const float e = nn_expf(x[k * inner + j] - top[j]);
            y[k * inner + j] = e;
            sum[j] += e;
        }
    if (log_of) {
        for (size_t j = 0; j < len; ++j)
            sum[j] = (double)top[j] + log(sum[j]);           /* the shift */
        for (size_t k = 0; k < n; ++k)
            for (size_t j = 0; j < len; ++j)
                y[k * inner + j] = (float)(x[k * inner + j] - sum[j]);
        return;
    }
    for (size_t j = 0; j < len; ++j)
        top[j] = (float)(1.0 / sum[j]);                        /* the scale */
    for (size_t k = 0; k < n; ++k)
        for (size_t j = 0; j < len; ++j)
            y[k * inner + j] *= top[j];
}

typedef struct {
    const float *x;
    float *y;
    size_t outer, n, inner;
    bool log_of;
    int tasks;
} softmax_job;

static void softmax_task(const void *ctx, int t, void *scratch) {
    const softmax_job *j = ctx;
    const size_t slab = j->n * j->inner;
    size_t o0, o1;
    (void)scratch;
    unit_range(j->outer, j->tasks, t, &o0, &o1);
    for (size_t o = o0; o < o1; ++o) {
        const float *x = j->x + o * slab;
        float *y = j->y + o * slab;
        if (j->inner == 1) {
            softmax_row(x, y, j->n, j->log_of);
            continue;
        }
        for (size_t j0 = 0; j0 < j->inner; j0 += BLOCK)
            softmax_columns(x + j0, y + j0, j->n, j->inner, min_size(BLOCK, j->inner - j0),
                            j->log_of);
    }
}

static void softmax_lines(const float *x, float *y, size_t outer, size_t n, size_t inner,
                          bool log_of) {
    const softmax_job j = {x, y, outer, n, inner, log_of,
                           unit_tasks(outer, (double)outer * (double)n * (double)inner, 90.0)};
    NN_FN(parallel_for)(j.tasks, softmax_task, &j, NULL, 0);
}

void NN_FN(softmax_f32)(const float *x, float *y, size_t outer, size_t n, size_t inner) {
    softmax_lines(x, y, outer, n, inner, false);
}

void NN_FN(logsoftmax_f32)(const float *x, float *y, size_t outer, size_t n, size_t inner) {
    softmax_lines(x, y, outer, n, inner, true);
}
