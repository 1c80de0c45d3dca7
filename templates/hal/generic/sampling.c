/* Sampling kernels. Each output position works out its taps (input offsets and weights) once
 * and then reads them in every channel. */
#include "sampling.h"

#define GS_MAX_TAPS 64   /* cubic in three dims: 4 * 4 * 4 */

/* x reflected at lo and hi until it lies between them. */
static float reflect(float x, float lo, float hi) {
    const float range = hi - lo;
    if (range <= 0.0f) return lo;
    if (x < lo) {
        const float dx = lo - x;
        const long n = (long)(dx / range);
        const float r = dx - (float)n * range;
        return n % 2 == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        const float dx = x - hi;
        const long n = (long)(dx / range);
        const float r = dx - (float)n * range;
        return n % 2 == 0 ? hi - r : lo + r;
    }
    return x;
}

/* The input index tap i reads along a dim of `size`, or -1 for a zero (padding "zeros"). */
static ptrdiff_t tap_index(ptrdiff_t i, size_t size, int padding, float lo, float hi) {
    const ptrdiff_t last = (ptrdiff_t)size - 1;
    if (i >= 0 && i <= last) return i;
    if (padding == NN_PAD_ZEROS) return -1;
    if (padding == NN_PAD_REFLECTION) i = (ptrdiff_t)reflect((float)i, lo, hi);
    return i < 0 ? 0 : i > last ? last : i;
}

/* Keys' cubic convolution weights (a = -0.75) of the taps at -1, 0, 1, 2 from floor(x). */
static void cubic_weights(float t, float w[4]) {
    const float a = -0.75f, t1 = t + 1.0f, u = 1.0f - t, u1 = 2.0f - t;
    w[0] = ((a * t1 - 5.0f * a) * t1 + 8.0f * a) * t1 - 4.0f * a;
    w[1] = ((a + 2.0f) * t - (a + 3.0f)) * t * t + 1.0f;
    w[2] = ((a + 2.0f) * u - (a + 3.0f)) * u * u + 1.0f;
    w[3] = ((a * u1 - 5.0f * a) * u1 + 8.0f * a) * u1 - 4.0f * a;
}

/* The taps of one grid point: input offsets within a plane (-1: reads zero) and weights. */
static size_t grid_taps(const nn_grid_sample *g, const float *coords, ptrdiff_t offsets[],
                        float weights[]) {
    ptrdiff_t index[3][4];
    float weight[3][4];
    size_t count[3];
    for (size_t d = 0; d < g->rank; ++d) {
        const size_t size = g->in[d];
        const float n = coords[g->rank - 1 - d];
        const float lo = g->align_corners ? 0.0f : -0.5f;
        const float hi = g->align_corners ? (float)size - 1.0f : (float)size - 0.5f;
        float v = g->align_corners ? (n + 1.0f) / 2.0f * (float)(size - 1)
                                   : ((n + 1.0f) * (float)size - 1.0f) / 2.0f;
        if (g->mode == NN_SAMPLE_NEAREST) v = nearbyintf(v);
        if (g->mode != NN_SAMPLE_CUBIC && (v < lo || v > hi)) {   /* cubic pads each tap */
            if (g->padding == NN_PAD_BORDER) v = v < 0.0f ? 0.0f : fminf(v, (float)size - 1.0f);
            else if (g->padding == NN_PAD_REFLECTION) v = reflect(v, lo, hi);
        }
        if (g->mode == NN_SAMPLE_NEAREST) {
            count[d] = 1;
            index[d][0] = tap_index((ptrdiff_t)v, size, g->padding, lo, hi);
            weight[d][0] = 1.0f;
            continue;
        }
        const float base = floorf(v), t = v - base;
        const ptrdiff_t first = (ptrdiff_t)base - (g->mode == NN_SAMPLE_CUBIC);
        count[d] = g->mode == NN_SAMPLE_CUBIC ? 4 : 2;
        if (g->mode == NN_SAMPLE_CUBIC) {
            cubic_weights(t, weight[d]);
        } else {
            weight[d][0] = 1.0f - t;
            weight[d][1] = t;
        }
        for (size_t k = 0; k < count[d]; ++k)
            index[d][k] = tap_index(first + (ptrdiff_t)k, size, g->padding, lo, hi);
    }
    /* every combination of one tap per dim, outermost dim slowest */
    size_t taps = 1;
    offsets[0] = 0;
    weights[0] = 1.0f;
    for (size_t d = 0; d < g->rank; ++d) {
        size_t stride = 1;
        for (size_t e = d + 1; e < g->rank; ++e) stride *= g->in[e];
        for (size_t t = taps; t-- > 0;) {
            for (size_t k = count[d]; k-- > 0;) {
                const size_t at = t * count[d] + k;
                const bool zero = offsets[t] < 0 || index[d][k] < 0;
                offsets[at] = zero ? -1 : offsets[t] + index[d][k] * (ptrdiff_t)stride;
                weights[at] = weights[t] * weight[d][k];
            }
        }
        taps *= count[d];
    }
    return taps;
}

void NN_FN(grid_sample_f32)(const float *x, const float *grid, float *y, const nn_grid_sample *g) {
    size_t plane = 1;
    for (size_t d = 0; d < g->rank; ++d) plane *= g->in[d];
    ptrdiff_t offsets[GS_MAX_TAPS];
    float weights[GS_MAX_TAPS];
    for (size_t n = 0; n < g->batch; ++n) {
        for (size_t p = 0; p < g->points; ++p) {
            const size_t taps = grid_taps(g, grid + (n * g->points + p) * g->rank, offsets,
                                          weights);
            for (size_t c = 0; c < g->channels; ++c) {
                const float *xp = x + (n * g->channels + c) * plane;
                float acc = 0.0f;
                for (size_t t = 0; t < taps; ++t)
                    if (offsets[t] >= 0) acc += weights[t] * xp[offsets[t]];
                y[(n * g->channels + c) * g->points + p] = acc;
            }
        }
    }
}
