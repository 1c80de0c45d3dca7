/* Matrix products for the generic target; see nn_gemm.h for the packed layouts. */
#include "gemm.h"
#include "nn_gemm_driver.h"

/* --- packing ---------------------------------------------------------------------------------- */
/* B from a strided matrix: element (p, j) at data[p * row_stride + j * col_stride]. Rows are
 * read in order when they are contiguous (the image rows of a 1x1 convolution, say). */
static void pack_dense(const nn_gemm_source *src, int k0, int kc, int n0, int nc, float *panels)
{
    const ptrdiff_t rs = src->row_stride, cs = src->col_stride;
    const ptrdiff_t panel_step = (ptrdiff_t)kc * NR;
    const int full = nc / NR * NR;
    if (cs == 1) {
        for (int p = 0; p < kc; ++p) {
            const float *row = src->data + (k0 + p) * rs + n0;
            float *dst = panels + p * NR;
            for (int jr = 0; jr < full; jr += NR, dst += panel_step)
                for (int j = 0; j < NR; ++j)
                    dst[j] = row[jr + j];
            for (int j = 0; j < NR && full < nc; ++j)
                dst[j] = full + j < nc ? row[full + j] : 0.0f;
        }
        return;
    }
    for (int jr = 0; jr < nc; jr += NR) {
        const int nr = min_int(NR, nc - jr);
        const float *b = src->data + k0 * rs + (n0 + jr) * cs;
        float *dst = panels + (size_t)jr * kc;
        for (int p = 0; p < kc; ++p)
            for (int j = 0; j < NR; ++j)
                dst[p * NR + j] = j < nr ? b[p * rs + j * cs] : 0.0f;
    }
}

/* --- micro-kernels ---------------------------------------------------------------------------- */
/* C tile (mr x nr) = init + alpha * acc, acc holding rows of `acc_stride` floats. */
static void store_tile(int mr, int nr, const float *acc, int acc_stride, float alpha,
                       enum init init, const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    if (mr == MR && nr == NR && csc == 1 && acc_stride == NR) {
        for (int i = 0; i < MR; ++i) {
            float *row = c + i * rsc;
            const float *a = acc + i * NR;
            if (init == INIT_ADD) {
                for (int j = 0; j < NR; ++j)
                    row[j] += alpha * a[j];
            } else {
                const float b0 = init == INIT_BIAS ? bias[i] : 0.0f;
                for (int j = 0; j < NR; ++j)
                    row[j] = b0 + alpha * a[j];
            }
        }
        return;
    }
    for (int i = 0; i < mr; ++i) {
        const float b0 = init == INIT_BIAS ? bias[i] : 0.0f;
        for (int j = 0; j < nr; ++j) {
            float *out = c + i * rsc + j * csc;
            const float v = alpha * acc[i * acc_stride + j];
            *out = init == INIT_ADD ? *out + v : b0 + v;
        }
    }
}

/* C tile = init + alpha * (A panel x B panel): MR x NR independent sums, k ascending, held in a
 * local array that the compiler keeps in vector registers. */
static void kernel_tile(int kc, int mr, int nr, const float *restrict a, const float *restrict b,
                        float alpha, enum init init, const float *bias, float *c, ptrdiff_t rsc,
                        ptrdiff_t csc)
{
    float acc[MR * NR];
    for (int t = 0; t < MR * NR; ++t)
        acc[t] = 0.0f;
    for (int p = 0; p < kc; ++p) {
        float bp[NR];
        for (int j = 0; j < NR; ++j)
            bp[j] = b[j];
        for (int i = 0; i < MR; ++i) {
            const float ai = a[i];
            for (int j = 0; j < NR; ++j)
                acc[i * NR + j] += ai * bp[j];
        }
        a += MR;
        b += NR;
    }
    store_tile(mr, nr, acc, NR, alpha, init, bias, c, rsc, csc);
}

/* The same for one column j of the B panel (narrow B, e.g. a matrix-vector product). */
static void kernel_column(int kc, int mr, int j, const float *restrict a, const float *restrict b,
                          float alpha, enum init init, const float *bias, float *c,
                          ptrdiff_t rsc)
{
    float acc[MR];
    for (int i = 0; i < MR; ++i)
        acc[i] = 0.0f;
    for (int p = 0; p < kc; ++p) {
        const float bp = b[p * NR + j];
        for (int i = 0; i < MR; ++i)
            acc[i] += a[i] * bp;
        a += MR;
    }
    store_tile(mr, 1, acc, 1, alpha, init, bias, c, rsc, 1);
}

/* One MR x NR tile of C, column by column when B is narrow. */
static void tile(int kc, int mr, int nr, const float *a, const float *b, float alpha,
                 enum init init, const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                 const nn_gemm_epilogue *epi, const float *res, const char *pf, int pf_lines)
{
    prefetch_lines(pf, pf_lines);
    if (4 * nr <= NR) {
        for (int j = 0; j < nr; ++j)
            kernel_column(kc, mr, j, a, b, alpha, init, bias, c + j * csc, rsc);
    } else {
        kernel_tile(kc, mr, nr, a, b, alpha, init, bias, c, rsc, csc);
    }
    epilogue_tile(epi, mr, nr, c, rsc, csc, res);
}
