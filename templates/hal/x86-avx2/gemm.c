/* Matrix products for the x86 targets; see nn_gemm.h for the packed layouts.
 *
 * One source for x86-avx2 (ymm, 8 floats) and x86-avx512 (zmm, 16 floats): the vector width
 * follows the target's compile flags (__AVX512F__), the blocking follows its gemm.h. The
 * register tile is two vectors of A rows times NR broadcast B columns, accumulated with FMA in
 * a fixed order (k ascending within a KC block, blocks in order), so results depend on the
 * operands only. */
#include "gemm.h"
#include "nn_gemm_driver.h"

#include "nn_x86_vec.h"

#if MR != 2 * VL
#error "NN_GEMM_MR must be two vectors"
#endif

#define INLINE static inline __attribute__((always_inline))

/* --- packing ---------------------------------------------------------------------------------- */
/* B from a strided matrix: element (p, j) at data[p * row_stride + j * col_stride]. */
static void pack_dense(const nn_gemm_source *src, int k0, int kc, int n0, int nc, float *panels)
{
    const ptrdiff_t rs = src->row_stride, cs = src->col_stride;
    const ptrdiff_t panel_step = (ptrdiff_t)kc * NR;
    const int full = nc / NR * NR;
    if (cs == 1) {                         /* rows in reading order */
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
    for (int jr = 0; jr < nc; jr += NR) {  /* columns in reading order (B^T row-major) */
        const int nr = min_int(NR, nc - jr);
        const float *b = src->data + k0 * rs + (n0 + jr) * cs;
        float *dst = panels + (size_t)jr * kc;
        int j_done = 0, p_done = 0;        /* 4 x 4 blocks of contiguous columns: transposed */
        if (rs == 1) {
            j_done = nr / 4 * 4;
            p_done = kc / 4 * 4;
            for (int j = 0; j < j_done; j += 4) {
                const float *b0 = b + j * cs;
                const bool ahead = jr + j + 8 <= nc;     /* the next 4 columns exist */
                for (int p = 0; p < p_done; p += 4) {
                    if (ahead && p % 16 == 0)  /* their cache lines, while these are copied */
                        for (int u = 4; u < 8; ++u)
                            _mm_prefetch((const char *)(b0 + u * cs + p), _MM_HINT_T0);
                    __m128 r0 = _mm_loadu_ps(b0 + p), r1 = _mm_loadu_ps(b0 + cs + p);
                    __m128 r2 = _mm_loadu_ps(b0 + 2 * cs + p), r3 = _mm_loadu_ps(b0 + 3 * cs + p);
                    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                    _mm_storeu_ps(dst + (p + 0) * NR + j, r0);
                    _mm_storeu_ps(dst + (p + 1) * NR + j, r1);
                    _mm_storeu_ps(dst + (p + 2) * NR + j, r2);
                    _mm_storeu_ps(dst + (p + 3) * NR + j, r3);
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
/* Steps of k before the end of a tile at which its C is prefetched (from L2 or L3, where the
 * previous KC block left it), so that the loads of store_tile do not wait for it. */
#define C_PREFETCH_STEPS 32

/* acc[j][v] += A rows [v * VL, v * VL + VL) times B column j over `steps` values of k, for the
 * nv vectors of rows that hold data (nv = 1 when the tile has at most VL rows); advances a, b. */
INLINE void kernel_steps(int steps, int nv, const float *restrict *pa, const float *restrict *pb,
                         vec acc[NR][2])
{
    const float *restrict a = *pa, *restrict b = *pb;
    _Pragma("GCC unroll 4")
    for (int p = 0; p < steps; ++p) {
        const vec a0 = vload(a);
        const vec a1 = nv > 1 ? vload(a + VL) : vzero();
        for (int j = 0; j < NR; ++j) {
            const vec bj = vset1(b[j]);
            acc[j][0] = vfma(a0, bj, acc[j][0]);
            if (nv > 1)
                acc[j][1] = vfma(a1, bj, acc[j][1]);
        }
        a += MR;
        b += NR;
    }
    *pa = a;
    *pb = b;
}

/* The cache lines of an mr x nr tile of C. */
INLINE void prefetch_tile(int mr, int nr, const float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    if (rsc == 1) {
        for (int j = 0; j < nr; ++j) {
            _mm_prefetch((const char *)(c + j * csc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + j * csc + mr - 1), _MM_HINT_T0);
        }
    } else if (csc == 1) {
        for (int i = 0; i < mr; ++i) {
            _mm_prefetch((const char *)(c + i * rsc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + i * rsc + nr - 1), _MM_HINT_T0);
        }
    }
}

/* acc[j][v] = sum over p < kc of A rows [v * VL, v * VL + VL) times B column j, k ascending;
 * C's tile is prefetched C_PREFETCH_STEPS before the end. */
INLINE void kernel_tile(int kc, int nv, const float *restrict a, const float *restrict b,
                        vec acc[NR][2], int mr, int nr, const float *c, ptrdiff_t rsc,
                        ptrdiff_t csc)
{
    for (int j = 0; j < NR; ++j)
        acc[j][0] = acc[j][1] = vzero();
    const int early = kc > C_PREFETCH_STEPS ? kc - C_PREFETCH_STEPS : 0;
    kernel_steps(early, nv, &a, &b, acc);
    prefetch_tile(mr, nr, c, rsc, csc);
    kernel_steps(kc - early, nv, &a, &b, acc);
}

/* One column of B (a matrix-vector product): four partial sums over k mod 4 hide the FMA
 * latency; they are added in a fixed order. */
INLINE void kernel_column(int kc, int nv, const float *restrict a, const float *restrict b,
                          vec acc[NR][2])
{
    vec s[4][2];
    for (int u = 0; u < 4; ++u)
        s[u][0] = s[u][1] = vzero();
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        for (int u = 0; u < 4; ++u) {
            const vec bp = vset1(b[(p + u) * NR]);
            s[u][0] = vfma(vload(a + (p + u) * MR), bp, s[u][0]);
            if (nv > 1)
                s[u][1] = vfma(vload(a + (p + u) * MR + VL), bp, s[u][1]);
        }
    }
    for (; p < kc; ++p) {
        const vec bp = vset1(b[p * NR]);
        s[0][0] = vfma(vload(a + p * MR), bp, s[0][0]);
        if (nv > 1)
            s[0][1] = vfma(vload(a + p * MR + VL), bp, s[0][1]);
    }
    for (int v = 0; v < 2; ++v)
        acc[0][v] = vadd(vadd(s[0][v], s[1][v]), vadd(s[2][v], s[3][v]));
}

/* C tile (mr x nr) = init + alpha * acc. Columns of C are vector stores when C's rows are
 * contiguous (rsc == 1); otherwise the tile goes through a local buffer. */
static void store_tile(int mr, int nr, vec acc[NR][2], float alpha, enum init init,
                       const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    const vec va = vset1(alpha);
    if (rsc == 1 && mr == MR) {
        const vec b0 = init == INIT_BIAS ? vload(bias) : vzero();
        const vec b1 = init == INIT_BIAS ? vload(bias + VL) : vzero();
        for (int j = 0; j < nr; ++j) {
            float *col = c + j * csc;
            const vec r0 = vmul(va, acc[j][0]), r1 = vmul(va, acc[j][1]);
            if (init == INIT_ADD) {
                vstore(col, vadd(vload(col), r0));
                vstore(col + VL, vadd(vload(col + VL), r1));
            } else {
                vstore(col, vadd(b0, r0));
                vstore(col + VL, vadd(b1, r1));
            }
        }
        return;
    }
    float tile[NR][MR];
    for (int j = 0; j < nr; ++j) {
        vstore(tile[j], vmul(va, acc[j][0]));
        vstore(tile[j] + VL, vmul(va, acc[j][1]));
    }
    for (int i = 0; i < mr; ++i) {
        float *row = c + i * rsc;
        if (init == INIT_ADD) {
            for (int j = 0; j < nr; ++j)
                row[j * csc] += tile[j][i];
        } else {
            const float b0 = init == INIT_BIAS ? bias[i] : 0.0f;
            for (int j = 0; j < nr; ++j)
                row[j * csc] = b0 + tile[j][i];
        }
    }
}

/* One MR x NR tile of C from an A panel and a B panel. */
static void tile(int kc, int mr, int nr, const float *a, const float *b, float alpha,
                 enum init init, const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc)
{
    vec acc[NR][2];
    if (nr == 1) {
        if (mr > VL)
            kernel_column(kc, 2, a, b, acc);
        else
            kernel_column(kc, 1, a, b, acc);
    } else if (mr > VL) {
        kernel_tile(kc, 2, a, b, acc, mr, nr, c, rsc, csc);
    } else {
        kernel_tile(kc, 1, a, b, acc, mr, nr, c, rsc, csc);
    }
    store_tile(mr, nr, acc, alpha, init, bias, c, rsc, csc);
}
