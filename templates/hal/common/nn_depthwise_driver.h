/* What every target's depthwise.c shares (see depthwise.h): index helpers, the zero-padded
 * copy of one channel, the scalar loop nest and the split of the planes over the pool
 * (nn_pool.h). A target's depthwise.c includes it right after depthwise.h and nn_pool.h and
 * defines what this header declares:
 *   depthwise_task - one task of conv_depthwise: planes [q0, q1) of a depthwise_job, through
 *                    the target's vector path or depthwise_planes. */
#ifndef NN_DEPTHWISE_DRIVER_H
#define NN_DEPTHWISE_DRIVER_H

#include <string.h>

static int dw_min(int a, int b) { return a < b ? a : b; }
static int dw_max(int a, int b) { return a > b ? a : b; }

static int dw_volume(const int size[3]) { return size[0] * size[1] * size[2]; }

/* Indices i in [0, n) with 0 <= i * stride + offset < limit: the range [*lo, *hi). */
static void dw_valid_range(int n, int stride, int offset, int limit, int *lo, int *hi)
{
    const int first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    const int end = limit - offset <= 0 ? 0 : (limit - offset + stride - 1) / stride;
    *lo = dw_min(first, n);
    *hi = dw_max(dw_min(end, n), *lo);
}

/* Floats of the padded image (one channel) that the outputs read, and its extents (inline:
 * the generic target does not use them). */
static inline size_t dw_padded_plane(const nn_conv_params *p, int ext[3])
{
    for (int i = 0; i < 3; ++i)
        ext[i] = (p->out_size[i] - 1) * p->strides[i] + (p->kernel[i] - 1) * p->dilations[i] + 1;
    return (size_t)ext[0] * ext[1] * ext[2];
}

/* xp (ext[0] x ext[1] x ext[2]) = one channel x of X with its padding as zeros. */
static inline void dw_pad_channel(const nn_conv_params *p, const float *x, const int ext[3], float *xp)
{
    const int *in = p->in_size, *pad = p->pads;
    const int lo = dw_min(pad[2], ext[2]), hi = dw_max(lo, dw_min(pad[2] + in[2], ext[2]));
    for (int a = 0; a < ext[0]; ++a) {
        for (int b = 0; b < ext[1]; ++b, xp += ext[2]) {
            const int id = a - pad[0], ih = b - pad[1];
            if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1]) {
                memset(xp, 0, sizeof(float) * (size_t)ext[2]);
                continue;
            }
            const float *row = x + ((size_t)id * in[1] + ih) * in[2] - pad[2];
            memset(xp, 0, sizeof(float) * (size_t)lo);
            memcpy(xp + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
            memset(xp + hi, 0, sizeof(float) * (size_t)(ext[2] - hi));
        }
    }
}

/* Output planes [q0, q1) (plane q: image q / out_channels, channel q % out_channels), one
 * output row at a time: the row starts as the bias, then each kernel tap adds its weight times
 * the (shifted, strided) input row. */
static void depthwise_planes(const nn_conv_params *p, const float *x, const float *w,
                             const float *bias, float *y, int q0, int q1)
{
    const int *in = p->in_size, *out = p->out_size, *ks = p->kernel;
    const int *s = p->strides, *d = p->dilations, *pad = p->pads;
    const int multiplier = p->out_channels / p->groups, kvol = dw_volume(ks);
    const int plane = dw_volume(in), positions = dw_volume(out);
    for (int q = q0; q < q1; ++q) {
        const int n = q / p->out_channels, m = q % p->out_channels;
        const float *xc = x + ((size_t)n * p->in_channels + m / multiplier) * plane;
        const float *wm = w + (size_t)m * kvol;
        float *ym = y + ((size_t)n * p->out_channels + m) * positions;
        const float b = bias ? bias[m] : 0.0f;
        for (int od = 0; od < out[0]; ++od) {
            for (int oh = 0; oh < out[1]; ++oh) {
                float *yrow = ym + ((size_t)od * out[1] + oh) * out[2];
                for (int ow = 0; ow < out[2]; ++ow)
                    yrow[ow] = b;
                for (int kd = 0; kd < ks[0]; ++kd) {
                    const int id = od * s[0] + kd * d[0] - pad[0];
                    if (id < 0 || id >= in[0])
                        continue;
                    for (int kh = 0; kh < ks[1]; ++kh) {
                        const int ih = oh * s[1] + kh * d[1] - pad[1];
                        if (ih < 0 || ih >= in[1])
                            continue;
                        const float *xrow = xc + ((size_t)id * in[1] + ih) * in[2];
                        for (int kw = 0; kw < ks[2]; ++kw) {
                            const float wv = wm[(kd * ks[1] + kh) * ks[2] + kw];
                            const int w_off = kw * d[2] - pad[2];
                            int lo, hi;
                            dw_valid_range(out[2], s[2], w_off, in[2], &lo, &hi);
                            if (s[2] == 1) {
                                for (int ow = lo; ow < hi; ++ow)
                                    yrow[ow] += wv * xrow[ow + w_off];
                            } else {
                                for (int ow = lo; ow < hi; ++ow)
                                    yrow[ow] += wv * xrow[ow * s[2] + w_off];
                            }
                        }
                    }
                }
            }
        }
    }
}

typedef struct {
    const nn_conv_params *p;
    const float *x, *w, *bias;
    float *y;
    int planes, tiles;
} depthwise_job;

/* The target's: planes of one task of conv_depthwise. */
static void depthwise_task(const void *ctx, int t, void *scratch);

/* Planes split into tasks (their number from the problem's size only). */
void NN_FN(conv_depthwise)(const nn_conv_params *p, const float *x, const float *w,
                           const float *bias, float *y)
{
    const int planes = p->batch * p->out_channels;
    const double flops = 2.0 * planes * (double)dw_volume(p->out_size) * dw_volume(p->kernel);
    const int tiles = nn_task_count(flops);
    const depthwise_job j = {p, x, w, bias, y, planes, tiles < planes ? tiles : planes};
    NN_FN(parallel_for)(j.tiles, depthwise_task, &j, NULL, 0);
}

#endif /* NN_DEPTHWISE_DRIVER_H */
