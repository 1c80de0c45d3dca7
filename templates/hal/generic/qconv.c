/* Integer convolution, direct: one output element at a time, taps outside the image skipped. */
#include "qconv.h"

static int32_t q8_at(nn_q8 v, size_t i) {
    return v.is_signed ? (int32_t)((const int8_t *)v.data)[i]
                       : (int32_t)((const uint8_t *)v.data)[i];
}

void NN_FN(qconv_s32)(const nn_qconv *g, nn_q8 x, int32_t x_zero, nn_q8 w, const int32_t *w_zero,
                      size_t w_zero_step, int32_t *y) {
    const size_t cg = g->in_channels / g->groups, og = g->out_channels / g->groups;
    const size_t plane = g->in[0] * g->in[1] * g->in[2];
    const size_t taps = g->kernel[0] * g->kernel[1] * g->kernel[2];
    for (size_t n = 0; n < g->batch; ++n)
        for (size_t o = 0; o < g->out_channels; ++o) {
            const size_t first = o / og * cg;
            const int32_t wz = w_zero[o * w_zero_step];
            for (size_t od = 0; od < g->out[0]; ++od)
                for (size_t oh = 0; oh < g->out[1]; ++oh)
                    for (size_t ow = 0; ow < g->out[2]; ++ow) {
                        int32_t acc = 0;
                        for (size_t k = 0; k < taps; ++k) {
                            const size_t kd = k / (g->kernel[1] * g->kernel[2]);
                            const size_t kh = k / g->kernel[2] % g->kernel[1];
                            const size_t kw = k % g->kernel[2];
                            const ptrdiff_t d = (ptrdiff_t)(od * g->stride[0] + kd * g->dilation[0]) - (ptrdiff_t)g->pad[0];
                            const ptrdiff_t h = (ptrdiff_t)(oh * g->stride[1] + kh * g->dilation[1]) - (ptrdiff_t)g->pad[1];
                            const ptrdiff_t v = (ptrdiff_t)(ow * g->stride[2] + kw * g->dilation[2]) - (ptrdiff_t)g->pad[2];
                            if (d < 0 || h < 0 || v < 0 || (size_t)d >= g->in[0] ||
                                (size_t)h >= g->in[1] || (size_t)v >= g->in[2])
                                continue;
                            const size_t at = ((size_t)d * g->in[1] + (size_t)h) * g->in[2] + (size_t)v;
                            for (size_t c = 0; c < cg; ++c) {
                                const int32_t xv = q8_at(x, (n * g->in_channels + first + c) * plane + at);
                                const int32_t wv = q8_at(w, (o * cg + c) * taps + k);
                                acc += (xv - x_zero) * (wv - wz);
                            }
                        }
                        *y++ = acc;
                    }
        }
}
