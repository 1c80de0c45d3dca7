/* Kernels over image patches. A block offset and a block position are flat row-major indices
 * split into per-dim coordinates as they are used, so no rank-sized state outlives a step. */
#include "patches.h"

int64_t NN_FN(col2im_plan)(nn_col2im *g, const int64_t *image, const int64_t *block) {
    int64_t count = 1;
    g->block_size = 1;
    g->image_size = 1;
    for (size_t d = 0; d < g->rank; ++d) {
        const int64_t padded = image[d] + g->pads[d] + g->pads[g->rank + d];
        if (image[d] < 1 || block[d] < 1 || block[d] > padded) return -1;   /* no overflow below */
        g->image[d] = image[d];
        g->block[d] = block[d];
        const int64_t room = padded - (g->dilations[d] * (block[d] - 1) + 1);
        if (room < 0) return -1;
        g->blocks[d] = room / g->strides[d] + 1;
        count *= g->blocks[d];
        g->block_size *= block[d];
        g->image_size *= image[d];
    }
    return count;
}

/* The image offset of block offset k at block position l, or -1 inside the padding. */
static int64_t image_offset(const nn_col2im *g, int64_t k, int64_t l) {
    int64_t offset = 0, stride = 1;
    for (size_t d = g->rank; d-- > 0;) {
        const int64_t at = (l % g->blocks[d]) * g->strides[d] - g->pads[d] +
                           (k % g->block[d]) * g->dilations[d];
        if (at < 0 || at >= g->image[d]) return -1;
        offset += at * stride;
        stride *= g->image[d];
        l /= g->blocks[d];
        k /= g->block[d];
    }
    return offset;
}

void NN_FN(col2im_f32)(const float *x, float *y, size_t planes, const nn_col2im *g) {
    int64_t positions = 1;
    for (size_t d = 0; d < g->rank; ++d) positions *= g->blocks[d];
    for (size_t p = 0; p < planes; ++p) {
        float *out = y + p * (size_t)g->image_size;
        for (int64_t e = 0; e < g->image_size; ++e) out[e] = 0.0f;
        for (int64_t k = 0; k < g->block_size; ++k) {
            const float *column = x + (p * (size_t)g->block_size + (size_t)k) * (size_t)positions;
            for (int64_t l = 0; l < positions; ++l) {
                const int64_t at = image_offset(g, k, l);
                if (at >= 0) out[at] += column[l];
            }
        }
    }
}

/* x (one plane of height x width) at the fractional position (h, w): bilinear over the four
 * neighbours, each outside the plane reading zero. */
static float bilinear_zero(const float *x, size_t height, size_t width, float h, float w) {
    const float fh = floorf(h), fw = floorf(w);
    const float th = h - fh, tw = w - fw;
    const long h0 = (long)fh, w0 = (long)fw;
    float sum = 0.0f;
    for (int i = 0; i < 2; ++i) {
        const long r = h0 + i;
        if (r < 0 || r >= (long)height) continue;
        const float wr = i ? th : 1.0f - th;
        for (int j = 0; j < 2; ++j) {
            const long c = w0 + j;
            if (c < 0 || c >= (long)width) continue;
            sum += wr * (j ? tw : 1.0f - tw) * x[(size_t)r * width + (size_t)c];
        }
    }
    return sum;
}

void NN_FN(deform_conv_f32)(const float *x, const float *w, const float *offset,
                            const float *bias, const float *mask, float *y, float *columns,
                            const nn_deform_conv *g) {
    const size_t taps = g->kernel[0] * g->kernel[1];
    const size_t points = g->out_height * g->out_width, plane = g->height * g->width;
    const size_t in_per_group = g->channels / g->group;
    const size_t out_per_group = g->out_channels / g->group;
    const size_t in_per_offset_group = g->channels / g->offset_group;
    const size_t rows = in_per_group * taps;
    for (size_t n = 0; n < g->batch; ++n) {
        const float *on = offset + n * g->offset_group * 2 * taps * points;
        const float *mn = mask ? mask + n * g->offset_group * taps * points : NULL;
        for (size_t grp = 0; grp < g->group; ++grp) {
            for (size_t ci = 0; ci < in_per_group; ++ci) {   /* gather the group's columns */
                const size_t c = grp * in_per_group + ci;
                const size_t og = c / in_per_offset_group;
                const float *xc = x + (n * g->channels + c) * plane;
                for (size_t k = 0; k < taps; ++k) {
                    const float *dh = on + (og * taps + k) * 2 * points, *dw = dh + points;
                    const float *m = mn ? mn + (og * taps + k) * points : NULL;
                    float *col = columns + (ci * taps + k) * points;
                    const size_t kh = k / g->kernel[1], kw = k % g->kernel[1];
                    for (size_t p = 0; p < points; ++p) {
                        const size_t oh = p / g->out_width, ow = p % g->out_width;
                        const float h = (float)((long)(oh * g->stride[0] + kh * g->dilation[0]) -
                                                (long)g->pad[0]) + dh[p];
                        const float v = (float)((long)(ow * g->stride[1] + kw * g->dilation[1]) -
                                                (long)g->pad[1]) + dw[p];
                        const float s = bilinear_zero(xc, g->height, g->width, h, v);
                        col[p] = m ? s * m[p] : s;
                    }
                }
            }
            for (size_t oi = 0; oi < out_per_group; ++oi) {       /* y = w x columns */
                const size_t o = grp * out_per_group + oi;
                const float *wo = w + o * rows;
                float *yo = y + (n * g->out_channels + o) * points;
                for (size_t p = 0; p < points; ++p) yo[p] = bias ? bias[o] : 0.0f;
                for (size_t r = 0; r < rows; ++r)
                    for (size_t p = 0; p < points; ++p) yo[p] += wo[r] * columns[r * points + p];
            }
        }
    }
}
