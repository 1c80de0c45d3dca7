/* Matrix products for the x86 targets; see nn_gemm.h for the packed layouts.
 *
 * One source for x86-avx2 (ymm, 8 floats) and x86-avx512 (zmm, 16 floats): the vector width
 * follows the target's compile flags (__AVX512F__), the blocking follows its gemm.h. The
 * register tile is two vectors of A rows times NR broadcast B columns, accumulated with FMA in
 * a fixed order (k ascending within a KC block, blocks in order), so results depend on the
 * operands only. */
#include "gemm.h"

/* A last panel of B of one column is folded into the tile of the panel before (nn_gemm_driver.h
 * folded_tail) where the registers allow: 2 x (NR + 1) accumulators, 2 vectors of A and a
 * broadcast fit AVX-512's 32 (29 of them), not AVX2's 16. */
#if defined(__AVX512F__)
#define TAIL_COLUMNS 1
#endif
#include "nn_gemm_driver.h"

#include "nn_x86_vec.h"

#if MR != 2 * VL
#error "NN_GEMM_MR must be two vectors"
#endif
#if NR % 3 != 0
#error "NN_GEMM_NR must be a multiple of 3 (narrow panels run in thirds of it)"
#endif

#define INLINE static inline __attribute__((always_inline))

#define NT (NR + TAIL_COLUMNS)   /* most columns of a register tile */

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
 * nv vectors of rows that hold data (nv = 1 when the tile has at most VL rows) and the first
 * nj columns (a constant at each call: NR, or fewer for the last panel of B, or NR plus a
 * folded tail's columns, those from the next panel, at b + kc * NR); advances a, b. */
INLINE void kernel_steps(int steps, int nv, int nj, ptrdiff_t next_panel,
                         const float *restrict *pa, const float *restrict *pb, vec acc[NT][2])
{
    const float *restrict a = *pa, *restrict b = *pb;
    _Pragma("GCC unroll 4")
    for (int p = 0; p < steps; ++p) {
        const vec a0 = vload(a);
        const vec a1 = nv > 1 ? vload(a + VL) : vzero();
        for (int j = 0; j < nj; ++j) {
            const vec bj = vset1(j < NR ? b[j] : b[next_panel + j - NR]);
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

/* Steps of k in one chunk of a tile's k loop: between two chunks a slice of the next block of
 * A is prefetched (and C's tile once, C_PREFETCH_STEPS before the end). */
#define CHUNK_STEPS 32

/* acc[j][v] = sum over p < kc of A rows [v * VL, v * VL + VL) times B column j (j < nj), k
 * ascending, in chunks of CHUNK_STEPS (a constant count: no remainder code but after the
 * last): before each, a slice of the pf_lines lines at pf is prefetched (all of them by
 * C_PREFETCH_STEPS before the end), and C's tile is, once, C_PREFETCH_STEPS before the end. */
INLINE void kernel_tile(int kc, int nv, int nj, const float *restrict a, const float *restrict b,
                        vec acc[NT][2], int mr, int nr, const float *c, ptrdiff_t rsc,
                        ptrdiff_t csc, const char *pf, int pf_lines)
{
    const ptrdiff_t next_panel = (ptrdiff_t)kc * NR;
    for (int j = 0; j < NT; ++j)
        acc[j][0] = acc[j][1] = vzero();
    const int early = kc > C_PREFETCH_STEPS ? kc - C_PREFETCH_STEPS : 0;
    const int slices = early / CHUNK_STEPS;
    const int per_slice = slices > 1 ? (pf_lines + slices - 1) / slices : pf_lines;
    bool c_pending = true;
    int p = 0;
    for (; p + CHUNK_STEPS <= kc; p += CHUNK_STEPS) {
        if (c_pending && p >= early) {
            prefetch_tile(mr, nr, c, rsc, csc);
            c_pending = false;
        }
        if (pf_lines > 0) {
            const int n = min_int(per_slice, pf_lines);
            prefetch_lines(pf, n);
            pf += (size_t)n * 64;
            pf_lines -= n;
        }
        kernel_steps(CHUNK_STEPS, nv, nj, next_panel, &a, &b, acc);
    }
    if (c_pending)
        prefetch_tile(mr, nr, c, rsc, csc);
    prefetch_lines(pf, pf_lines);
    kernel_steps(kc - p, nv, nj, next_panel, &a, &b, acc);
}

/* One column of B (a matrix-vector product): four partial sums over k mod 4 hide the FMA
 * latency; they are added in a fixed order. */
INLINE void kernel_column(int kc, int nv, const float *restrict a, const float *restrict b,
                          vec acc[NT][2])
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

/* --- storing a tile --------------------------------------------------------------------------- */
#if defined(__AVX512F__)
typedef __mmask16 lanes;
#define vload_lanes(p, m) _mm512_maskz_loadu_ps((m), (p))
#define vstore_lanes(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
/* The first n lanes of a vector. */
static inline lanes first_lanes(int n)
{
    return (lanes)((1u << n) - 1u);
}
#else
typedef __m256i lanes;
#define vload_lanes(p, m) _mm256_maskload_ps((p), (m))
#define vstore_lanes(p, m, v) _mm256_maskstore_ps((p), (m), (v))
static inline lanes first_lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#if NT > VL
#error "a tile's row must fit one vector"
#endif

/* epilogue_value (nn_gemm_driver.h) on a vector, its residual's lanes `m` at res: maxps and
 * minps return their second operand when the comparison is false (NaN, equal zeros), so
 * max(v, 0), max(lo, v) and min(hi, v) are the selects v > 0 ? v : 0, v < lo ? lo : v and
 * v > hi ? hi : v exactly. */
INLINE vec epilogue_vec(const nn_gemm_epilogue *e, vec v, const float *res, lanes m, bool full)
{
    if (res)
        v = vadd(v, full ? vload(res) : vload_lanes(res, m));
    if (e->clamp & NN_GEMM_RELU)
        v = vmax(v, vzero());
    if (e->clamp & NN_GEMM_MIN)
        v = vmax(vset1(e->lo), v);
    if (e->clamp & NN_GEMM_MAX)
        v = vmin(vset1(e->hi), v);
    return v;
}

/* One vector of C (lanes `m` of it at c) = init + r, r = alpha * acc already; b is bias's value
 * or vector for the vector's lanes. The same float operations as the scalar form. */
INLINE void store_vec(float *c, lanes m, bool full, vec r, enum init init, vec b)
{
    const vec v = init == INIT_ADD ? vadd(full ? vload(c) : vload_lanes(c, m), r) : vadd(b, r);
    if (full)
        vstore(c, v);
    else
        vstore_lanes(c, m, v);
}

/* The epilogue e over an mr x nr tile of C just stored (in L1), its residual's tile at res:
 * vectors down C's columns (rsc == 1) or along its rows (csc == 1), else element by element. */
static void epilogue_stored(const nn_gemm_epilogue *e, int mr, int nr, float *c, ptrdiff_t rsc,
                            ptrdiff_t csc, const float *res)
{
    const bool by_columns = rsc == 1, by_rows = !by_columns && csc == 1;
    if (!by_columns && !by_rows) {
        epilogue_tile(e, mr, nr, c, rsc, csc, res);
        return;
    }
    const int lines = by_columns ? nr : mr, length = by_columns ? mr : nr;
    const ptrdiff_t step = by_columns ? csc : rsc;
    for (int l = 0; l < lines; ++l) {
        for (int at = 0; at < length; at += VL) {
            const int count = min_int(VL, length - at);
            const lanes m = first_lanes(count);
            float *p = c + l * step + at;
            const vec v = epilogue_vec(e, count == VL ? vload(p) : vload_lanes(p, m),
                                       res ? res + l * step + at : NULL, m, count == VL);
            if (count == VL)
                vstore(p, v);
            else
                vstore_lanes(p, m, v);
        }
    }
}

/* C tile (mr x nr) = init + alpha * acc, init the tile itself, bias[i] or 0, then the epilogue
 * e (NULL: none; its residual's tile at res). C's columns are vector stores when its rows are
 * contiguous (rsc == 1); when its columns are (csc == 1, a layer's Y = W X), the tile is
 * transposed in registers and its rows are stored (masked to nr columns); otherwise it goes
 * through a local buffer. */
INLINE void store_tile(int mr, int nr, vec acc[NT][2], float alpha, enum init init,
                       const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                       const nn_gemm_epilogue *e, const float *res)
{
    const vec va = vset1(alpha);
    if (rsc == 1) {
        for (int v = 0; v * VL < mr; ++v) {
            const int rows = min_int(VL, mr - v * VL);
            const lanes m = first_lanes(rows);
            const vec b = init == INIT_BIAS ? (rows == VL ? vload(bias + v * VL)
                                                          : vload_lanes(bias + v * VL, m))
                                            : vzero();
            for (int j = 0; j < nr; ++j)
                store_vec(c + j * csc + v * VL, m, rows == VL, vmul(va, acc[j][v]), init, b);
        }
        if (e)
            epilogue_stored(e, mr, nr, c, rsc, csc, res);
        return;
    }
    if (csc == 1 && nr > 1) {
        const lanes m = first_lanes(nr);
        for (int v = 0; v * VL < mr; ++v) {
            vec r[VL];
            for (int j = 0; j < VL; ++j)
                r[j] = j < NT ? acc[j][v] : vzero();
            vtranspose(r);
            for (int i = 0; i < min_int(VL, mr - v * VL); ++i) {
                const int row = v * VL + i;
                store_vec(c + row * rsc, m, nr == VL, vmul(va, r[i]), init,
                          vset1(init == INIT_BIAS ? bias[row] : 0.0f));
            }
        }
        if (e)
            epilogue_stored(e, mr, nr, c, rsc, csc, res);
        return;
    }
    float tile[NT][MR];
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
    epilogue_tile(e, mr, nr, c, rsc, csc, res);
}

/* One MR x NR tile of C from an A panel and a B panel. */
static void tile(int kc, int mr, int nr, const float *a, const float *b, float alpha,
                 enum init init, const float *bias, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                 const nn_gemm_epilogue *epi, const float *res, const char *pf, int pf_lines)
{
    vec acc[NT][2];
    if (nr == 1) {
        prefetch_lines(pf, pf_lines);
        if (mr > VL)
            kernel_column(kc, 2, a, b, acc);
        else
            kernel_column(kc, 1, a, b, acc);
    } else if (TAIL_COLUMNS > 0 && nr > NR) {                   /* a folded tail */
        if (mr > VL)
            kernel_tile(kc, 2, NT, a, b, acc, mr, nr, c, rsc, csc, pf, pf_lines);
        else
            kernel_tile(kc, 1, NT, a, b, acc, mr, nr, c, rsc, csc, pf, pf_lines);
    } else if (mr > VL) {                  /* columns in thirds of NR: a narrow last panel */
        if (3 * nr <= NR)                  /* of B runs a third of the FMAs */
            kernel_tile(kc, 2, NR / 3, a, b, acc, mr, nr, c, rsc, csc, pf, pf_lines);
        else if (3 * nr <= 2 * NR)
            kernel_tile(kc, 2, 2 * NR / 3, a, b, acc, mr, nr, c, rsc, csc, pf, pf_lines);
        else
            kernel_tile(kc, 2, NR, a, b, acc, mr, nr, c, rsc, csc, pf, pf_lines);
    } else {
        kernel_tile(kc, 1, NR, a, b, acc, mr, nr, c, rsc, csc, pf, pf_lines);
    }
    store_tile(mr, nr, acc, alpha, init, bias, c, rsc, csc, epi, res);
}
