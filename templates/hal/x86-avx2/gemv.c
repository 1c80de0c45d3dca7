/* Matrix-vector products with a packed matrix for the x86 targets (AVX2 + FMA); see gemv.h.
 * A panel's MR rows are MR / 8 vectors: per k, one broadcast of x and MR / 8 multiply-adds
 * (x86-avx2 MR = 16, x86-avx512 MR = 32). */
#include "gemm.h"
#include "nn_gemv_driver.h"

#include <immintrin.h>

#define MV (NN_GEMM_MR / 8)              /* vectors per panel row */

static void gemv_panel(int k, int mp, int i, const float *a_packed, const float *x, int rows,
                       float *y)
{
    __m256 acc[MV];
    for (int v = 0; v < MV; ++v)
        acc[v] = _mm256_setzero_ps();
    for (int p0 = 0; p0 < k; p0 += KC) {
        const int kc = k - p0 < KC ? k - p0 : KC;
        const float *panel = a_packed + (size_t)p0 * mp + (size_t)i * kc;
        for (int p = 0; p < kc; ++p) {
            const __m256 xp = _mm256_broadcast_ss(x + p0 + p);
            for (int v = 0; v < MV; ++v)
                acc[v] = _mm256_fmadd_ps(_mm256_loadu_ps(panel + p * MR + 8 * v), xp, acc[v]);
        }
    }
    if (rows == MR) {
        for (int v = 0; v < MV; ++v)
            _mm256_storeu_ps(y + 8 * v, acc[v]);
    } else {
        float out[MR];
        for (int v = 0; v < MV; ++v)
            _mm256_storeu_ps(out + 8 * v, acc[v]);
        for (int r = 0; r < rows; ++r)
            y[r] = out[r];
    }
}
