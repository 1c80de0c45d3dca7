/* Matrix products for the arm64-neon target; see nn_gemm.h for the packed layouts.
 *
 * The register tile is two vectors of A rows (8) times three vectors of B columns (12): each
 * k step loads 2 + 3 vectors and does 24 lane FMAs (vfmaq_laneq_f32), in a fixed order (k
 * ascending within a KC block, blocks in order), so results depend on the operands only. Tiles
 * with fewer rows or columns use only the vectors that hold data; a single column (a
 * matrix-vector product) has its own kernel. Threads (nn_pool.h) take ranges of columns (each
 * packing its own B) or, B packed once per block, ranges of rows; bounds are multiples of the
 * register tile, so every element's sum is the same at any thread count. */
#include "gemm.h"
#include "nn_gemm_driver.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>

typedef float32x4_t vec;
#define VL 4

#if MR != 2 * VL || NR != 3 * VL
#error "the arm64-neon micro-kernel is 2 x 3 vectors: NN_GEMM_MR 8, NN_GEMM_NR 12"
#endif

#define INLINE static inline __attribute__((always_inline))

/* --- packing ---------------------------------------------------------------------------------- */
/* r[t] = row t of the 4 x 4 block whose columns are c[0..3]. */
INLINE void transpose4(const vec c[4], vec r[4])
{
    const vec t0 = vtrn1q_f32(c[0], c[1]), t1 = vtrn2q_f32(c[0], c[1]);
    const vec t2 = vtrn1q_f32(c[2], c[3]), t3 = vtrn2q_f32(c[2], c[3]);
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

/* B from a strided matrix: element (p, j) at data[p * row_stride + j * col_stride]. */
static void pack_dense(const nn_gemm_source *src, int k0, int kc, int n0, int nc, float *panels)
{
    const ptrdiff_t rs = src->row_stride, cs = src->col_stride;
    const ptrdiff_t panel_step = (ptrdiff_t)kc * NR;
    const int full = nc / NR * NR;
    if (cs == 1) {                         /* rows in reading order: 3 vectors per panel row */
        for (int p = 0; p < kc; ++p) {
            const float *row = src->data + (k0 + p) * rs + n0;
            float *dst = panels + p * NR;
            for (int jr = 0; jr < full; jr += NR, dst += panel_step) {
                vst1q_f32(dst, vld1q_f32(row + jr));
                vst1q_f32(dst + VL, vld1q_f32(row + jr + VL));
                vst1q_f32(dst + 2 * VL, vld1q_f32(row + jr + 2 * VL));
            }
            for (int j = 0; j < NR && full < nc; ++j)
                dst[j] = full + j < nc ? row[full + j] : 0.0f;
        }
        return;
    }
    for (int jr = 0; jr < nc; jr += NR) {  /* columns in reading order (B^T row-major) */
        const int nr = min_int(NR, nc - jr);
        const float *b = src->data + k0 * rs + (n0 + jr) * cs;
        float *dst = panels + (size_t)jr * kc;
        int j_done = 0, p_done = 0;        /* 4 x 4 blocks of contiguous columns: transposed */
        if (rs == 1) {
            j_done = nr / VL * VL;
            p_done = kc / VL * VL;
            for (int j = 0; j < j_done; j += VL) {
                for (int p = 0; p < p_done; p += VL) {
                    const vec cols[4] = {vld1q_f32(b + j * cs + p), vld1q_f32(b + (j + 1) * cs + p),
                                         vld1q_f32(b + (j + 2) * cs + p),
                                         vld1q_f32(b + (j + 3) * cs + p)};
                    vec r[4];
                    transpose4(cols, r);
                    for (int u = 0; u < VL; ++u)
                        vst1q_f32(dst + (p + u) * NR + j, r[u]);
                }
            }
        }
        for (int j = 0; j < NR; ++j) {
            const int p0 = j < j_done ? p_done : 0;      /* what the blocks left */
            if (j < nr) {
                for (int p = p0; p < kc; ++p)
                    dst[p * NR + j] = b[p * rs + j * cs];
            } else {
                for (int p = p0; p < kc; ++p)
                    dst[p * NR + j] = 0.0f;
            }
        }
    }
}

/* --- micro-kernels ---------------------------------------------------------------------------- */
/* Columns 4q .. 4q + 3 of the tile: lane l of B vector bq times the nv vectors of A rows. */
#define FMA_LANES(q, bq)                                                         \
    do {                                                                         \
        acc[4 * (q) + 0][0] = vfmaq_laneq_f32(acc[4 * (q) + 0][0], a0, bq, 0);   \
        acc[4 * (q) + 1][0] = vfmaq_laneq_f32(acc[4 * (q) + 1][0], a0, bq, 1);   \
        acc[4 * (q) + 2][0] = vfmaq_laneq_f32(acc[4 * (q) + 2][0], a0, bq, 2);   \
        acc[4 * (q) + 3][0] = vfmaq_laneq_f32(acc[4 * (q) + 3][0], a0, bq, 3);   \
        if (nv > 1) {                                                            \
            acc[4 * (q) + 0][1] = vfmaq_laneq_f32(acc[4 * (q) + 0][1], a1, bq, 0); \
            acc[4 * (q) + 1][1] = vfmaq_laneq_f32(acc[4 * (q) + 1][1], a1, bq, 1); \
            acc[4 * (q) + 2][1] = vfmaq_laneq_f32(acc[4 * (q) + 2][1], a1, bq, 2); \
            acc[4 * (q) + 3][1] = vfmaq_laneq_f32(acc[4 * (q) + 3][1], a1, bq, 3); \
        }                                                                        \
    } while (0)

/* acc[j][v] = sum over p of A rows [4v, 4v + 4) times B column j, for the nv vectors of rows
 * and nb vectors of columns that hold data (the others stay zero). */
INLINE void kernel_tile(int kc, int nv, int nb, const float *restrict a,
                        const float *restrict b, vec out[NR][2])
{
    vec acc[NR][2];                       /* a local array: the compiler keeps it in registers */
    for (int j = 0; j < NR; ++j)
        acc[j][0] = acc[j][1] = vdupq_n_f32(0.0f);
    for (int p = 0; p < kc; ++p) {
        const vec a0 = vld1q_f32(a);
        const vec a1 = nv > 1 ? vld1q_f32(a + VL) : vdupq_n_f32(0.0f);
        const vec b0 = vld1q_f32(b);
        FMA_LANES(0, b0);
        if (nb > 1) {
            const vec b1 = vld1q_f32(b + VL);
            FMA_LANES(1, b1);
        }
        if (nb > 2) {
            const vec b2 = vld1q_f32(b + 2 * VL);
            FMA_LANES(2, b2);
        }
        a += MR;
        b += NR;
    }
    for (int j = 0; j < NR; ++j) {
        out[j][0] = acc[j][0];
        out[j][1] = acc[j][1];
    }
}

/* One column of B (a matrix-vector product): four partial sums over k mod 4 hide the FMA
 * latency; they are added in a fixed order. */
INLINE void kernel_column(int kc, int nv, const float *restrict a, const float *restrict b,
                          vec acc[NR][2])
{
    vec s[4][2];
    for (int u = 0; u < 4; ++u)
        s[u][0] = s[u][1] = vdupq_n_f32(0.0f);
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        for (int u = 0; u < 4; ++u) {
            const float bp = b[(p + u) * NR];
            s[u][0] = vfmaq_n_f32(s[u][0], vld1q_f32(a + (p + u) * MR), bp);
            if (nv > 1)
                s[u][1] = vfmaq_n_f32(s[u][1], vld1q_f32(a + (p + u) * MR + VL), bp);
        }
    }
    for (; p < kc; ++p) {
        const float bp = b[p * NR];
        s[0][0] = vfmaq_n_f32(s[0][0], vld1q_f32(a + p * MR), bp);
        if (nv > 1)
            s[0][1] = vfmaq_n_f32(s[0][1], vld1q_f32(a + p * MR + VL), bp);
    }
    for (int v = 0; v < 2; ++v)
        acc[0][v] = vaddq_f32(vaddq_f32(s[0][v], s[1][v]), vaddq_f32(s[2][v], s[3][v]));
}

/* out = init + r along a row of C: init is `*out` (add), the row's bias, or 0. */
INLINE void store_row(float *out, vec r, enum init init, float bias)
{
    if (init == INIT_ADD)
        r = vaddq_f32(vld1q_f32(out), r);
    else if (init == INIT_BIAS)
        r = vaddq_f32(vdupq_n_f32(bias), r);
    vst1q_f32(out, r);
}

/* C tile (mr x nr) = init + alpha * acc. Vector stores down the columns when C's columns are
 * contiguous (rsc == 1), along the rows through 4 x 4 transposes when its rows are (csc == 1),
 * for the whole vectors of the tile; the rest goes through a local buffer. */
static void store_tile(int mr, int nr, vec acc[NR][2], float alpha, enum init init,
                       const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    for (int j = 0; j < nr; ++j) {
        acc[j][0] = vmulq_n_f32(acc[j][0], alpha);
        acc[j][1] = vmulq_n_f32(acc[j][1], alpha);
    }
    int rows_done = 0, cols_done = 0;     /* the part of the tile stored with vectors */
    if (rsc == 1 && mr >= VL) {
        rows_done = mr / VL * VL;
        cols_done = nr;
        for (int j = 0; j < nr; ++j) {
            for (int v = 0; v < rows_done / VL; ++v) {
                float *out = c + j * csc + v * VL;
                vec r = acc[j][v];
                if (init == INIT_ADD)
                    r = vaddq_f32(vld1q_f32(out), r);
                else if (init == INIT_BIAS)
                    r = vaddq_f32(vld1q_f32(bias + v * VL), r);
                vst1q_f32(out, r);
            }
        }
    } else if (csc == 1 && mr >= VL && nr >= VL) {
        rows_done = mr / VL * VL;
        cols_done = nr / VL * VL;
        for (int v = 0; v < rows_done / VL; ++v) {
            for (int q = 0; q < cols_done / VL; ++q) {
                const vec cols[4] = {acc[4 * q][v], acc[4 * q + 1][v], acc[4 * q + 2][v],
                                     acc[4 * q + 3][v]};
                vec r[4];
                transpose4(cols, r);
                for (int t = 0; t < VL; ++t) {
                    const int i = v * VL + t;
                    store_row(c + i * rsc + 4 * q, r[t], init, init == INIT_BIAS ? bias[i] : 0.0f);
                }
            }
        }
    }
    if (rows_done == mr && cols_done == nr)
        return;
    float tile[NR][MR];
    for (int j = 0; j < nr; ++j) {
        vst1q_f32(tile[j], acc[j][0]);
        vst1q_f32(tile[j] + VL, acc[j][1]);
    }
    for (int i = 0; i < mr; ++i) {
        float *row = c + i * rsc;
        const int j0 = i < rows_done ? cols_done : 0;      /* what the vectors left */
        if (init == INIT_ADD) {
            for (int j = j0; j < nr; ++j)
                row[j * csc] += tile[j][i];
        } else {
            const float b0 = init == INIT_BIAS ? bias[i] : 0.0f;
            for (int j = j0; j < nr; ++j)
                row[j * csc] = b0 + tile[j][i];
        }
    }
}

/* One MR x NR tile of C from an A panel and a B panel. */
static void tile(int kc, int mr, int nr, const float *a, const float *b, float alpha,
                 enum init init, const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                 const nn_gemm_epilogue *epi, const float *res, const char *pf, int pf_lines)
{
    prefetch_lines(pf, pf_lines);
    vec acc[NR][2];
    const int nv = mr > VL ? 2 : 1, nb = (nr + VL - 1) / VL;
    if (nr == 1) {
        if (nv == 2)
            kernel_column(kc, 2, a, b, acc);
        else
            kernel_column(kc, 1, a, b, acc);
    } else if (nv == 2) {
        if (nb == 3)
            kernel_tile(kc, 2, 3, a, b, acc);
        else if (nb == 2)
            kernel_tile(kc, 2, 2, a, b, acc);
        else
            kernel_tile(kc, 2, 1, a, b, acc);
    } else {
        if (nb == 3)
            kernel_tile(kc, 1, 3, a, b, acc);
        else if (nb == 2)
            kernel_tile(kc, 1, 2, a, b, acc);
        else
            kernel_tile(kc, 1, 1, a, b, acc);
    }
    store_tile(mr, nr, acc, alpha, init, bias, c, rsc, csc);
    epilogue_tile(epi, mr, nr, c, rsc, csc, res);
}
