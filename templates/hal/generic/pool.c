/* Pooling kernels. Each output position visits only the kernel taps that land inside the
 * input (worked out per dim, see pool_span), so the inner loops carry no bounds checks. */
#include "pool.h"

#include "nn_pool.h"

/* The taps of one window along one dim: tap k (lo <= k < hi) reads input position
 * first + k * dilation; `padded` taps (from tap 0) lie inside the input plus its padding. */
typedef struct {
    ptrdiff_t first;
    size_t lo, hi, padded;
} pool_span;

/* How many of the taps 0..kernel-1 at first + k * dilation lie below `limit`. */
static size_t taps_below(ptrdiff_t first, size_t limit, size_t dilation, size_t kernel) {
    if ((ptrdiff_t)limit <= first) return 0;
    size_t n = ((size_t)((ptrdiff_t)limit - first) + dilation - 1) / dilation;
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
    s.lo = s.first < 0 ? ((size_t)(-s.first) + dilation - 1) / dilation : 0;
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

static double window_sum(const float *xp, const nn_pool_window *w, const pool_span s[3]) {
    double sum = 0;
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

static int plane_tiles(const nn_pool_window *w) {
    const double taps = (double)w->kernel[0] * (double)w->kernel[1] * (double)w->kernel[2];
    const double work = (double)w->planes * (double)(w->out[0] * w->out[1] * w->out[2]) * taps;
    const int tiles = nn_task_count(work);
    return (size_t)tiles < w->planes ? tiles : (int)(w->planes > 0 ? w->planes : 1);
}

static void maxpool_planes(const float *x, float *y, int64_t *indices, int storage_order,
                           const nn_pool_window *w, size_t p0, size_t p1) {
    const size_t in_plane = w->in[0] * w->in[1] * w->in[2];
    const size_t out_plane = w->out[0] * w->out[1] * w->out[2];
    pool_span s[3];
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

static void maxpool_task(const void *ctx, int t, void *scratch) {
    const pool_job *j = ctx;
    int p0, p1;
    (void)scratch;
    nn_tile_range((int)j->planes, j->tiles, 1, t, &p0, &p1);
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
    pool_span s[3];
    y += p0 * (w->out[0] * w->out[1] * w->out[2]);
    for (size_t p = p0; p < p1; ++p) {
        const float *xp = x + p * in_plane;
        for (size_t od = 0; od < w->out[0]; ++od) {
            s[0] = span_at(w, 0, od);
            for (size_t oh = 0; oh < w->out[1]; ++oh) {
                s[1] = span_at(w, 1, oh);
                for (size_t ow = 0; ow < w->out[2]; ++ow) {
                    s[2] = span_at(w, 2, ow);
                    const size_t count = count_include_pad
                        ? s[0].padded * s[1].padded * s[2].padded
                        : (s[0].hi - s[0].lo) * (s[1].hi - s[1].lo) * (s[2].hi - s[2].lo);
                    *y++ = count ? (float)(window_sum(xp, w, s) / (double)count) : 0.0f;
                }
            }
        }
    }
}

static void avgpool_task(const void *ctx, int t, void *scratch) {
    const pool_job *j = ctx;
    int p0, p1;
    (void)scratch;
    nn_tile_range((int)j->planes, j->tiles, 1, t, &p0, &p1);
    avgpool_planes(j->x, j->y, j->count_include_pad, j->w, (size_t)p0, (size_t)p1);
}

void NN_FN(avgpool_f32)(const float *x, float *y, bool count_include_pad,
                        const nn_pool_window *w) {
    const pool_job j = {x, y, NULL, 0, count_include_pad, w, w->planes, plane_tiles(w)};
    NN_FN(parallel_for)(j.tiles, avgpool_task, &j, NULL, 0);
}

void NN_FN(global_maxpool_f32)(const float *x, float *y, size_t planes, size_t size) {
    for (size_t p = 0; p < planes; ++p, x += size) {
        float best = -INFINITY;
        for (size_t i = 0; i < size; ++i)
            best = x[i] > best ? x[i] : best;
        y[p] = best;
    }
}

void NN_FN(global_avgpool_f32)(const float *x, float *y, size_t planes, size_t size) {
    for (size_t p = 0; p < planes; ++p, x += size) {
        double sum = 0;
        for (size_t i = 0; i < size; ++i)
            sum += x[i];
        y[p] = (float)(sum / (double)size);
    }
}
