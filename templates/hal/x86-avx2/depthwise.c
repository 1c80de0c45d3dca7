/* Depthwise convolution for the x86 targets (AVX2, or AVX-512 when compiled for it); see
 * depthwise.h. */
#include "depthwise.h"

#include <immintrin.h>

#include "nn_pool.h"
#include "nn_depthwise_driver.h"

#if defined(__AVX512F__)
typedef __m512 vec;
#define VL 16
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vfma _mm512_fmadd_ps
#else
typedef __m256 vec;
#define VL 8
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vfma _mm256_fmadd_ps
#endif

/* Depthwise with unit stride along rows, one channel at a time through a zero-padded copy of
 * its image (on the stack, DEPTHWISE_PAD_FLOATS at most): VL outputs of a row at once, each
 * summing its kernel taps in order from the bias. */
#define DEPTHWISE_PAD_FLOATS 16384

static bool depthwise_fits(const nn_conv_params *p)
{
    int ext[3];
    return p->strides[2] == 1 && dw_padded_plane(p, ext) + VL <= DEPTHWISE_PAD_FLOATS;
}

/* Output planes [q0, q1) (plane q: image q / out_channels, channel q % out_channels). */
static void depthwise_direct(const nn_conv_params *p, const float *x, const float *w,
                             const float *bias, float *y, int q0, int q1)
{
    int ext[3];
    const size_t plane = dw_padded_plane(p, ext);
    const int *out = p->out_size, *ks = p->kernel, *s = p->strides, *d = p->dilations;
    float xp[DEPTHWISE_PAD_FLOATS];
    const int multiplier = p->out_channels / p->groups, kvol = dw_volume(ks);
    const int in_plane = dw_volume(p->in_size), positions = dw_volume(out);
    for (size_t t = plane; t < plane + VL; ++t)
        xp[t] = 0.0f;
    for (int q = q0; q < q1; ++q) {
        const int n = q / p->out_channels, m = q % p->out_channels;
        if (q == q0 || m % multiplier == 0) {
            const float *xc = x + ((size_t)n * p->in_channels + m / multiplier) * in_plane;
            dw_pad_channel(p, xc, ext, xp);
        }
        const float *wm = w + (size_t)m * kvol;
        float *ym = y + ((size_t)n * p->out_channels + m) * positions;
        const vec b = vset1(bias ? bias[m] : 0.0f);
        for (int od = 0; od < out[0]; ++od) {
            for (int oh = 0; oh < out[1]; ++oh) {
                float *yrow = ym + ((size_t)od * out[1] + oh) * out[2];
                const float *xrow = xp + ((size_t)od * s[0] * ext[1] +
                                          (size_t)oh * s[1]) * ext[2];
                for (int ow = 0; ow < out[2]; ow += VL) {
                    vec acc = b;
                    const float *wt = wm;
                    for (int kd = 0; kd < ks[0]; ++kd)
                        for (int kh = 0; kh < ks[1]; ++kh) {
                            const float *xt = xrow + ((size_t)kd * d[0] * ext[1] +
                                                      (size_t)kh * d[1]) * ext[2] + ow;
                            for (int kw = 0; kw < ks[2]; ++kw)
                                acc = vfma(vset1(*wt++), vload(xt + kw * d[2]), acc);
                        }
                    if (ow + VL <= out[2]) {
                        vstore(yrow + ow, acc);
                    } else {
                        float tail[VL];
                        vstore(tail, acc);
                        for (int j = 0; j < out[2] - ow; ++j)
                            yrow[ow + j] = tail[j];
                    }
                }
            }
        }
    }
}

/* One task of conv_depthwise (nn_depthwise_driver.h). */
static void depthwise_task(const void *ctx, int t, void *scratch)
{
    const depthwise_job *j = ctx;
    int q0, q1;
    (void)scratch;
    nn_tile_range(j->planes, j->tiles, 1, t, &q0, &q1);
    if (q0 < q1 && depthwise_fits(j->p))
        depthwise_direct(j->p, j->x, j->w, j->bias, j->y, q0, q1);
    else if (q0 < q1)
        depthwise_planes(j->p, j->x, j->w, j->bias, j->y, q0, q1);
}
