/* Matrix-vector products with a packed matrix for the x86 targets; see gemv.h.
 * A panel's MR rows are 2 vectors (ymm on x86-avx2: MR = 16, zmm on x86-avx512: MR = 32): per
 * k, 2 multiply-adds by one broadcast element of x. Four partial sums per vector (k mod 4, each
 * k-ascending) hide the multiply-add latency (8 independent chains) and are added in a fixed
 * order at the end of each KC block, so a row's sum depends on the operands only. */
#include "gemm.h"
#include "nn_gemv_driver.h"

#include "nn_x86_vec.h"

#if MR != 2 * VL
#error "the x86 GEMV reads panels of 2 vectors: NN_GEMM_MR 16 (x86-avx2) or 32 (x86-avx512)"
#endif

/* acc[v] += rows [v * VL, v * VL + VL) of one KC block of a panel times x[0 .. kc). */
static inline void panel_block(int kc, const float *restrict panel, const float *restrict x,
                               vec acc[2])
{
    vec s[4][2];
    for (int u = 0; u < 4; ++u)
        s[u][0] = s[u][1] = vzero();
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        for (int u = 0; u < 4; ++u) {
            const vec xp = vset1(x[p + u]);
            const float *a = panel + (p + u) * MR;
            s[u][0] = vfma(vload(a), xp, s[u][0]);
            s[u][1] = vfma(vload(a + VL), xp, s[u][1]);
        }
    }
    for (; p < kc; ++p) {
        const vec xp = vset1(x[p]);
        s[0][0] = vfma(vload(panel + p * MR), xp, s[0][0]);
        s[0][1] = vfma(vload(panel + p * MR + VL), xp, s[0][1]);
    }
    for (int v = 0; v < 2; ++v)
        acc[v] = vadd(acc[v], vadd(vadd(s[0][v], s[1][v]), vadd(s[2][v], s[3][v])));
}

static void gemv_panel(int k, int mp, int i, const float *a_packed, const float *x, int rows,
                       float *y)
{
    vec acc[2] = {vzero(), vzero()};
    for (int p0 = 0; p0 < k; p0 += KC) {
        const int kc = k - p0 < KC ? k - p0 : KC;
        panel_block(kc, a_packed + (size_t)p0 * mp + (size_t)i * kc, x + p0, acc);
    }
    if (rows == MR) {
        vstore(y, acc[0]);
        vstore(y + VL, acc[1]);
    } else {
        float out[MR];
        vstore(out, acc[0]);
        vstore(out + VL, acc[1]);
        for (int r = 0; r < rows; ++r)
            y[r] = out[r];
    }
}
