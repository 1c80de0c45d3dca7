/* Matrix-vector products with a packed matrix for the arm64-neon target; see gemv.h.
 * A panel's MR = 8 rows are 2 vectors: per k, 2 multiply-adds by one element of x. Four
 * partial sums per vector (k mod 4, each k-ascending) hide the multiply-add latency and are
 * added in a fixed order at the end of each KC block, so a row's sum depends on the operands
 * only. */
#include "gemm.h"
#include "nn_gemv_driver.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>

#if MR != 8
#error "the arm64-neon GEMV reads panels of 2 vectors: NN_GEMM_MR 8"
#endif

/* acc[v] += rows [4v, 4v + 4) of one KC block of a panel times x[0 .. kc). */
static inline void panel_block(int kc, const float *restrict panel, const float *restrict x,
                               float32x4_t acc[2])
{
    float32x4_t s[4][2];
    for (int u = 0; u < 4; ++u)
        s[u][0] = s[u][1] = vdupq_n_f32(0.0f);
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        const float32x4_t xv = vld1q_f32(x + p);
        const float *a = panel + p * MR;
        s[0][0] = vfmaq_laneq_f32(s[0][0], vld1q_f32(a), xv, 0);
        s[0][1] = vfmaq_laneq_f32(s[0][1], vld1q_f32(a + 4), xv, 0);
        s[1][0] = vfmaq_laneq_f32(s[1][0], vld1q_f32(a + MR), xv, 1);
        s[1][1] = vfmaq_laneq_f32(s[1][1], vld1q_f32(a + MR + 4), xv, 1);
        s[2][0] = vfmaq_laneq_f32(s[2][0], vld1q_f32(a + 2 * MR), xv, 2);
        s[2][1] = vfmaq_laneq_f32(s[2][1], vld1q_f32(a + 2 * MR + 4), xv, 2);
        s[3][0] = vfmaq_laneq_f32(s[3][0], vld1q_f32(a + 3 * MR), xv, 3);
        s[3][1] = vfmaq_laneq_f32(s[3][1], vld1q_f32(a + 3 * MR + 4), xv, 3);
    }
    for (; p < kc; ++p) {
        s[0][0] = vfmaq_n_f32(s[0][0], vld1q_f32(panel + p * MR), x[p]);
        s[0][1] = vfmaq_n_f32(s[0][1], vld1q_f32(panel + p * MR + 4), x[p]);
    }
    for (int v = 0; v < 2; ++v)
        acc[v] = vaddq_f32(acc[v], vaddq_f32(vaddq_f32(s[0][v], s[1][v]),
                                             vaddq_f32(s[2][v], s[3][v])));
}

static void gemv_panel(int k, int mp, int i, const float *a_packed, const float *x, int rows,
                       float *y)
{
    float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int p0 = 0; p0 < k; p0 += KC) {
        const int kc = k - p0 < KC ? k - p0 : KC;
        panel_block(kc, a_packed + (size_t)p0 * mp + (size_t)i * kc, x + p0, acc);
    }
    if (rows == MR) {
        vst1q_f32(y, acc[0]);
        vst1q_f32(y + 4, acc[1]);
    } else {
        float out[MR];
        vst1q_f32(out, acc[0]);
        vst1q_f32(out + 4, acc[1]);
        for (int r = 0; r < rows; ++r)
            y[r] = out[r];
    }
}
