/* Depthwise convolution for the arm64-neon target; see depthwise.h. The vector primitives of
 * nn_depthwise_driver.h's vector path (bands of rows split into stride phases, flattened small
 * planes): 4 floats, a row's last partial vector through a small stack copy, even/odd lanes by
 * vuzp. */
#include "depthwise.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>

#include "nn_pool.h"

typedef float32x4_t vec;
#define VL 4
#define vload vld1q_f32
#define vstore vst1q_f32
#define vset1 vdupq_n_f32

/* a * b + c, rounded once. */
static inline vec vfma(vec a, vec b, vec c) { return vfmaq_f32(c, a, b); }
#define vadd vaddq_f32
static inline vec vzero(void) { return vdupq_n_f32(0.0f); }

/* a > b ? a : b and a < b ? a : b lane by lane: b where the comparison is false (NaN, equal
 * zeros), as the epilogue's selects (NEON's vmaxq / vminq would return NaN for either). */
static inline vec vmax(vec a, vec b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
static inline vec vmin(vec a, vec b) { return vbslq_f32(vcltq_f32(a, b), a, b); }

/* x[0 .. min(n, VL)), zeros after (n > 0): reads nothing past x[n - 1]. */
static inline vec load_upto(const float *x, int n)
{
    if (n >= VL)
        return vld1q_f32(x);
    float t[VL] = {0.0f};
    for (int i = 0; i < n; ++i)
        t[i] = x[i];
    return vld1q_f32(t);
}

/* The first min(n, VL) lanes of v at p. */
static inline void store_upto(float *p, vec v, int n)
{
    if (n >= VL) {
        vst1q_f32(p, v);
        return;
    }
    float t[VL];
    vst1q_f32(t, v);
    for (int i = 0; i < n; ++i)
        p[i] = t[i];
}

/* The even and odd lanes of the 2 VL floats a, b. */
static inline void split_even_odd(vec a, vec b, vec *even, vec *odd)
{
    *even = vuzp1q_f32(a, b);
    *odd = vuzp2q_f32(a, b);
}

#define NN_DEPTHWISE_VECTOR
#include "nn_depthwise_driver.h"
