/* Matrix-vector products with a packed matrix, portable C; see gemv.h. The MR-wide inner loops
 * have a constant trip count, so the compiler vectorises them for the target. */
#include "gemm.h"
#include "nn_gemv_driver.h"

static void gemv_panel(int k, int mp, int i, const float *a_packed, const float *x, int rows,
                       float *y)
{
    float acc[MR];
    for (int r = 0; r < MR; ++r)
        acc[r] = 0.0f;
    for (int p0 = 0; p0 < k; p0 += KC) {
        const int kc = k - p0 < KC ? k - p0 : KC;
        const float *panel = a_packed + (size_t)p0 * mp + (size_t)i * kc;
        for (int p = 0; p < kc; ++p) {
            const float xp = x[p0 + p];
            for (int r = 0; r < MR; ++r)
                acc[r] += panel[p * MR + r] * xp;
        }
    }
    for (int r = 0; r < rows; ++r)
        y[r] = acc[r];
}
