/* Depthwise convolution for the arm64-neon target; see depthwise.h. 8 outputs of a row at a
 * time (two vectors) from a zero-padded copy of the channel, stride 1 or 2 along rows (2 with
 * de-interleaving loads); other strides take the scalar loop nest. */
#include "depthwise.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>

#include "nn_pool.h"
#include "nn_depthwise_driver.h"

typedef float32x4_t vec;
#define VL 4
#define INLINE static inline __attribute__((always_inline))

/* Depthwise with stride 1 or 2 along rows, one channel at a time through a zero-padded copy
 * of its image (on the stack, DEPTHWISE_PAD_FLOATS at most): DW outputs of a row at once (two
 * vectors), each summing its kernel taps in order from the bias. */
#define DEPTHWISE_PAD_FLOATS 16384
#define DW (2 * VL)

/* The image at x + (lane) * s for 4 lanes, s = 1 or 2. */
INLINE vec load_strided(const float *x, int s)
{
    return s == 1 ? vld1q_f32(x) : vld2q_f32(x).val[0];
}

INLINE void depthwise_rows(const nn_conv_params *p, int s, const float *xp, const int ext[3],
                           const float *wm, float b, float *ym)
{
    const int *out = p->out_size, *ks = p->kernel, *d = p->dilations, *st = p->strides;
    for (int od = 0; od < out[0]; ++od) {
        for (int oh = 0; oh < out[1]; ++oh) {
            float *yrow = ym + ((size_t)od * out[1] + oh) * out[2];
            const float *xrow = xp + ((size_t)od * st[0] * ext[1] + (size_t)oh * st[1]) * ext[2];
            for (int ow = 0; ow < out[2]; ow += DW) {
                vec acc0 = vdupq_n_f32(b), acc1 = acc0;
                const float *wt = wm;
                for (int kd = 0; kd < ks[0]; ++kd)
                    for (int kh = 0; kh < ks[1]; ++kh) {
                        const float *xt = xrow + ((size_t)kd * d[0] * ext[1] +
                                                  (size_t)kh * d[1]) * ext[2] + (size_t)ow * s;
                        for (int kw = 0; kw < ks[2]; ++kw) {
                            const float wv = *wt++;
                            acc0 = vfmaq_n_f32(acc0, load_strided(xt + kw * d[2], s), wv);
                            acc1 = vfmaq_n_f32(acc1, load_strided(xt + kw * d[2] + VL * s, s), wv);
                        }
                    }
                if (ow + DW <= out[2]) {
                    vst1q_f32(yrow + ow, acc0);
                    vst1q_f32(yrow + ow + VL, acc1);
                } else {
                    float tail[DW];
                    vst1q_f32(tail, acc0);
                    vst1q_f32(tail + VL, acc1);
                    for (int j = 0; j < out[2] - ow; ++j)
                        yrow[ow + j] = tail[j];
                }
            }
        }
    }
}

static bool depthwise_fits(const nn_conv_params *p)
{
    int ext[3];
    const int s = p->strides[2];
    return (s == 1 || s == 2) && dw_padded_plane(p, ext) + 2 * DW <= DEPTHWISE_PAD_FLOATS;
}

/* Output planes [q0, q1) (plane q: image q / out_channels, channel q % out_channels). */
static void depthwise_direct(const nn_conv_params *p, const float *x, const float *w,
                             const float *bias, float *y, int q0, int q1)
{
    int ext[3];
    const size_t plane = dw_padded_plane(p, ext);
    const int s = p->strides[2], tail = 2 * DW;     /* what the last vectors may read past */
    float xp[DEPTHWISE_PAD_FLOATS];
    const int multiplier = p->out_channels / p->groups, kvol = dw_volume(p->kernel);
    const int in_plane = dw_volume(p->in_size), positions = dw_volume(p->out_size);
    for (size_t t = plane; t < plane + tail; ++t)
        xp[t] = 0.0f;
    for (int q = q0; q < q1; ++q) {
        const int n = q / p->out_channels, m = q % p->out_channels;
        if (q == q0 || m % multiplier == 0) {
            const float *xc = x + ((size_t)n * p->in_channels + m / multiplier) * in_plane;
            dw_pad_channel(p, xc, ext, xp);
        }
        const float *wm = w + (size_t)m * kvol;
        float *ym = y + ((size_t)n * p->out_channels + m) * positions;
        const float b = bias ? bias[m] : 0.0f;
        if (s == 1)
            depthwise_rows(p, 1, xp, ext, wm, b, ym);
        else
            depthwise_rows(p, 2, xp, ext, wm, b, ym);
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
