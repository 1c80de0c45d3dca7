/* The default LSTM cell for the arm64-neon target, 4 units per vector; see recurrent.h.
 * exp: n ln2 split in two constants and a degree-6 polynomial on |r| <= ln2 / 2 (about 1 ulp;
 * below -87.3 it gives 0). sigmoid(v) = 1 / (1 + exp(-v)). tanh: an odd polynomial for
 * |v| < 0.625, else 1 - 2 / (exp(2 |v|) + 1) with v's sign (a few ulp; absolute error below
 * 1e-7). The last hidden % 4 units go through the same vector code from a padded copy. */
#include "recurrent.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>

typedef float32x4_t vec;

static inline vec exp4(vec x)
{
    const uint32x4_t under = vcltq_f32(x, vdupq_n_f32(-87.33654f));
    x = vminq_f32(vdupq_n_f32(88.3762626647949f), vmaxq_f32(vdupq_n_f32(-88.3762626647949f), x));
    const vec n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));     /* NaN stays NaN */
    vec r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    vec p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const vec y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
}

static inline vec sigmoid4(vec v)
{
    const vec one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(v))));
}

static inline vec tanh4(vec v)
{
    const vec one = vdupq_n_f32(1.0f), a = vabsq_f32(v);
    const vec big = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(exp4(vaddq_f32(a, a)), one)));
    const vec z = vmulq_f32(v, v);
    vec p = vdupq_n_f32(-5.70498872745e-3f);
    p = vfmaq_f32(vdupq_n_f32(2.06390887954e-2f), p, z);
    p = vfmaq_f32(vdupq_n_f32(-5.37397155531e-2f), p, z);
    p = vfmaq_f32(vdupq_n_f32(1.33314422036e-1f), p, z);
    p = vfmaq_f32(vdupq_n_f32(-3.33332819422e-1f), p, z);
    const vec small = vfmaq_f32(v, vmulq_f32(p, z), v);
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x80000000u));
    const vec signed_big = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(big), sign));
    return vbslq_f32(vcltq_f32(a, vdupq_n_f32(0.625f)), small, signed_big);
}

/* Units [j, j + 4) of the rows (x, r, c, h start at unit j; gates H apart). */
static inline void cell4(const float *x, const float *r, float *c, float *h, size_t H)
{
#define NN_GATE(k) vaddq_f32(vld1q_f32(x + (k) * H), vld1q_f32(r + (k) * H))
    const vec gi = sigmoid4(NN_GATE(0)), go = sigmoid4(NN_GATE(1));
    const vec gf = sigmoid4(NN_GATE(2)), gc = tanh4(NN_GATE(3));
#undef NN_GATE
    const vec cn = vfmaq_f32(vmulq_f32(gi, gc), gf, vld1q_f32(c));
    vst1q_f32(c, cn);
    vst1q_f32(h, vmulq_f32(go, tanh4(cn)));
}

void NN_FN(lstm_cell_f32)(const float *x, const float *r, float *h, float *c, float *y,
                          size_t hidden)
{
    const size_t H = hidden;
    size_t j = 0;
    for (; j + 4 <= H; j += 4)
        cell4(x + j, r + j, c + j, h + j, H);
    if (j < H) {                             /* the tail, padded to one vector */
        float xs[16] = {0}, rs[16] = {0}, cs[4] = {0}, hs[4];
        const size_t n = H - j;
        for (size_t u = 0; u < n; ++u) {
            for (size_t k = 0; k < 4; ++k) {
                xs[4 * k + u] = x[k * H + j + u];
                rs[4 * k + u] = r[k * H + j + u];
            }
            cs[u] = c[j + u];
        }
        cell4(xs, rs, cs, hs, 4);
        for (size_t u = 0; u < n; ++u) {
            c[j + u] = cs[u];
            h[j + u] = hs[u];
        }
    }
    if (y)
        for (j = 0; j < H; ++j)
            y[j] = h[j];
}
