/* Convolution and transposed convolution for the x86 targets; see conv.h.
 *
 * Conv runs one of four paths per image and group, by shape:
 * - 1x1, stride 1, unpadded, k in one KC block: position tiles over the image itself (RB
 *   channels x up to VMAX vectors of consecutive positions, weights broadcast from the packed
 *   A panels, NCHW vector stores);
 * - else, when bands of output rows of a zero-padded copy of the image fit the work buffer
 *   (the copy is made band by band, split over the pool): position tiles (stride 1, or 2
 *   with a short k: two vectors loaded, their even lanes kept) or channel tiles (MR
 *   channels x NR positions, the image broadcast), when they store enough of what they
 *   compute (direct_kind); a tile runs on across the output rows of a band;
 * - else the GEMM, over the image (1x1) or over implicit im2col panels.
 * Tiles sum each element in one accumulator over all of k (the bias its initial value) and
 * apply the fused epilogue (residual, Relu / Clip) as they store; the GEMM paths apply it in a
 * pass after. Every element's sum order is fixed by k alone: results do not depend on the
 * tiles, the bands or the thread count. */
#include "conv.h"

#include "gemm.h"
#include "nn_pool.h"
#include "nn_conv_driver.h"
#include "nn_x86_vec.h"

/* --- vectors ---------------------------------------------------------------------------------- */
#if defined(__AVX512F__)
typedef __mmask16 lanes;
#define vload_lanes(p, m) _mm512_maskz_loadu_ps((m), (p))
#define vstore_lanes(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
/* Lanes [lo, hi) of a vector. */
static lanes lane_range(int lo, int hi)
{
    return (lanes)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
#else
typedef __m256i lanes;
#define vload_lanes(p, m) _mm256_maskload_ps((p), (m))
#define vstore_lanes(p, m, v) _mm256_maskstore_ps((p), (m), (v))
static lanes lane_range(int lo, int hi)
{
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), i),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), i));
}
#endif
#define MR NN_GEMM_MR
#define KC NN_GEMM_KC
#define INLINE static inline __attribute__((always_inline))

/* --- the epilogue in the stores ------------------------------------------------------------- */
/* The clamps of epilogue_value (nn_conv_driver.h) on a vector, after the residual: maxps and
 * minps return their second operand when the comparison is false (NaN, equal zeros), so
 * max(v, 0), max(lo, v) and min(hi, v) are the selects v > 0 ? v : 0, v < lo ? lo : v and
 * v > hi ? hi : v exactly. */
INLINE vec clamp_vec(const nn_conv_epilogue *e, vec v)
{
    if (e->clamp & NN_CONV_RELU)
        v = vmax(v, vzero());
    if (e->clamp & NN_CONV_MIN)
        v = vmax(vset1(e->lo), v);
    if (e->clamp & NN_CONV_MAX)
        v = vmin(vset1(e->hi), v);
    return v;
}

static const nn_conv_epilogue no_epilogue = {NULL, 0, 0.0f, 0.0f};

/* --- how the output is walked ----------------------------------------------------------------- */
/* Output positions come in segments. A segment of the direct path is a band of output rows of
 * one depth slice (unit stride along h) or one output row, read from a zero-padded copy of the
 * band whose rows are `wide` positions apart: position q of a segment is output row q / wide,
 * column q % wide, and reads the copy q * s floats past the segment's start; columns >= out_w
 * (the padding between rows) are computed but not stored, so a tile runs on across rows (a
 * 7-wide row fills 7 of every 9 positions). A segment of a 1x1 kernel is a run of positions
 * of the image itself (wide = out_w = its length). Every output element is one sum: its bias,
 * then k ascending in one accumulator, then the epilogue; so the result depends on the
 * operands only, never on the tiles or the thread count. */
typedef struct {
    int m, k, mp, mcb;               /* rows, depth, rows of the packed A, rows per block */
    const float *wg, *bias;
    const int *off;                  /* image offset of each row p of cols */
    const float *x;                  /* segment 0's image */
    float *y;                        /* segment 0's output */
    const float *res;                /* segment 0's residual, NULL without one */
    const nn_conv_epilogue *epi;
    ptrdiff_t ys;                    /* floats between output channels (of y and res) */
    ptrdiff_t x_step, y_step;        /* floats between segments */
    int segments, seg_len, last_len; /* positions per segment, of the last one */
    int wide, out_w, s;              /* row pitch in positions, stored columns, image stride */
    bool exact;                      /* loads past a segment's end are masked (no padding) */
    int tile_w, seg_tiles, tiles_m, tiles_n;
} direct_job;

/* Rows per block: A's rows for a block (mcb x k floats) stay in L2 while the tiles run past. */
#define DIRECT_A_FLOATS (1 << 16)

static int direct_block_rows(int k)
{
    const int rows = DIRECT_A_FLOATS / (k > 0 ? k : 1) / MR * MR;
    return rows > MR ? rows : MR;
}

static int segment_len(const direct_job *j, int r)
{
    return r == j->segments - 1 ? j->last_len : j->seg_len;
}

/* The packed A panel holding rows from `ir` for depth block pc (rows of one panel). */
INLINE const float *a_block(const direct_job *j, int pc, int kc, int ir)
{
    return j->wg + (size_t)pc * j->mp + (size_t)(ir / MR * MR) * kc + ir % MR;
}

/* --- channel tiles: MR output channels (2 vectors) x NR positions ----------------------------- */
/* The register tile is MR rows (2 vectors) x NR columns, one named accumulator pair per
 * column: its size is fixed at compile time, whatever the optimizer unrolls. A gemm.h of
 * another target (another vector width) must not compile. Used for strides along w above 2
 * and where position tiles would fill less. */
_Static_assert(MR == 2 * VL, "channel tiles hold NN_GEMM_MR rows as 2 vectors");
#if NR == 12
#define COLUMNS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif NR == 6
#define COLUMNS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#else
#error "channel tiles: no column list for this NN_GEMM_NR"
#endif

/* tile[q] (MR floats: rows ir..) = init + sum over all p of A rows times the image at
 * x + off[p] + q * s; nv = 1 when the rows fit one vector (the second stays 0). */
#define CH_DECLARE(q) vec lo##q = b0, hi##q = b1;
#define CH_STEP(q) {                                                                          \
        const vec b = vset1(xp[(q) * s]);                                                      \
        lo##q = vfma(a0, b, lo##q);                                                            \
        if (nv > 1)                                                                            \
            hi##q = vfma(a1, b, hi##q);                                                        \
    }
#define CH_SAVE(q) vstore(tile[q], lo##q); vstore(tile[q] + VL, hi##q);

INLINE void channel_kernel(const direct_job *j, int nv, int s, int ir, const float *init,
                           const float *restrict x, float tile[NR][MR])
{
    const vec b0 = vload(init), b1 = vload(init + VL);
    COLUMNS(CH_DECLARE)
    for (int pc = 0; pc < j->k; pc += KC) {
        const int kc = min_int(KC, j->k - pc);
        const float *restrict a = a_block(j, pc, kc, ir);
        const int *restrict off = j->off + pc;
        for (int p = 0; p < kc; ++p) {
            const vec a0 = vload(a), a1 = nv > 1 ? vload(a + VL) : vzero();
            const float *xp = x + off[p];
            COLUMNS(CH_STEP)
            a += MR;
        }
    }
    COLUMNS(CH_SAVE)
}

static void channel_tile(const direct_job *j, int mr, int ir, const float *init, const float *x,
                         float tile[NR][MR])
{
    if (mr > VL) {
        if (j->s == 1) channel_kernel(j, 2, 1, ir, init, x, tile);
        else channel_kernel(j, 2, j->s, ir, init, x, tile);
    } else {
        if (j->s == 1) channel_kernel(j, 1, 1, ir, init, x, tile);
        else channel_kernel(j, 1, j->s, ir, init, x, tile);
    }
}

/* Tiles [t0, t1) (tile t: segment t / seg_tiles, positions from t % seg_tiles * NR) x rows
 * [i0, i1) (i0 a multiple of MR). */
static void channel_block(const direct_job *j, int i0, int i1, int t0, int t1)
{
    for (int ic = i0; ic < i1; ic += j->mcb) {
        const int i_end = min_int(ic + j->mcb, i1);
        for (int t = t0; t < t1; ++t) {
            const int r = t / j->seg_tiles, q0 = t % j->seg_tiles * NR, len = segment_len(j, r);
            int col[NR], dst[NR], n = 0;
            for (int c = 0; c < NR && q0 + c < len; ++c) {
                const int q = q0 + c, row = q / j->wide, ow = q % j->wide;
                if (ow < j->out_w)
                    col[n] = c, dst[n++] = row * j->out_w + ow;
            }
            if (n == 0)
                continue;
            const float *xt = j->x + r * j->x_step + (ptrdiff_t)q0 * j->s;
            float *yt = j->y + r * j->y_step;
            const float *rt = j->res ? j->res + r * j->y_step : NULL;
            for (int ir = ic; ir < i_end; ir += MR) {
                const int mr = min_int(MR, j->m - ir);
                float init[MR], tile[NR][MR];
                for (int i = 0; i < MR; ++i)
                    init[i] = j->bias && i < mr ? j->bias[ir + i] : 0.0f;
                channel_tile(j, mr, ir, init, xt, tile);
                for (int i = 0; i < mr; ++i) {
                    float *yr = yt + (ir + i) * j->ys;
                    const float *rr = rt ? rt + (ir + i) * j->ys : NULL;
                    for (int c = 0; c < n; ++c) {
                        yr[dst[c]] = epilogue_value(j->epi, tile[col[c]][i],
                                                    rr ? rr + dst[c] : NULL);
                    }
                }
            }
        }
    }
}

/* --- position tiles: RB output channels x up to VMAX vectors of positions ---------------------- */
/* With stride 1 or 2 along w, a cols row is (every other float of) a run of the copy: the
 * tile is the other way round, RB rows (weights broadcast from a packed A panel) times up to VMAX vectors of
 * consecutive positions, and its rows are vector stores into Y (masked where a vector crosses
 * the padding between rows or ends a segment). */
#define RB (VL / 2)
#define VMAX 3
#if MR % RB != 0
#error "RB must divide NN_GEMM_MR"
#endif
#if RB == 8
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#elif RB == 4
#define ROWS(X) X(0) X(1) X(2) X(3)
#else
#error "position tiles: no row list for this vector width"
#endif
#if VMAX != 3
#error "position tiles: the kernel names 3 accumulators per row"
#endif
#define POS_DECLARE(r) vec acc##r##_0 = vset1(init[r]), acc##r##_1 = acc##r##_0,             \
                           acc##r##_2 = acc##r##_0;
#define POS_STEP(r) {                                                                         \
        const vec w = vset1(a[r]);                                                             \
        acc##r##_0 = vfma(w, x0, acc##r##_0);                                                  \
        if (nv > 1)                                                                            \
            acc##r##_1 = vfma(w, x1, acc##r##_1);                                              \
        if (nv > 2)                                                                            \
            acc##r##_2 = vfma(w, x2, acc##r##_2);                                              \
    }
#define POS_SAVE(r) acc[r][0] = acc##r##_0; acc[r][1] = acc##r##_1; acc[r][2] = acc##r##_2;

INLINE vec positions_load(const float *x, bool masked, lanes last)
{
    return masked ? vload_lanes(x, last) : vload(x);
}

/* Every other float from x: positions at stride 2 (x[0], x[2], ... x[2 VL - 2]). */
#if defined(__AVX512F__)
INLINE vec load_even(const float *x)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    return _mm512_permutex2var_ps(vload(x), even, vload(x + VL));
}
#else
INLINE vec load_even(const float *x)
{
    const __m256 pairs = _mm256_shuffle_ps(vload(x), vload(x + VL), 0x88);  /* 0 2 8 10 4 6 12 14 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(pairs), 0xD8));
}
#endif

/* Vector v of positions at x (s floats apart: 1 or 2). */
INLINE vec positions_vec(const float *x, int s, int v, bool masked, lanes last)
{
    return s == 2 ? load_even(x + 2 * v * VL) : positions_load(x + v * VL, masked, last);
}

/* acc[r][v] = init[r] + sum over all p of weight (ir + r, p) times positions [v VL, v VL + VL)
 * at x + off[p], s floats apart. With `exact`, the last vector loads only the lanes of `last`. */
INLINE void positions_kernel(const direct_job *j, int nv, int s, bool exact, lanes last, int ir,
                             const float *init, const float *restrict x, vec acc[RB][VMAX])
{
    ROWS(POS_DECLARE)
    for (int pc = 0; pc < j->k; pc += KC) {
        const int kc = min_int(KC, j->k - pc);
        const float *restrict a = a_block(j, pc, kc, ir);
        const int *restrict off = j->off + pc;
        for (int p = 0; p < kc; ++p) {
            const float *xp = x + off[p];
            const vec x0 = positions_vec(xp, s, 0, exact && nv == 1, last);
            const vec x1 = nv > 1 ? positions_vec(xp, s, 1, exact && nv == 2, last) : vzero();
            const vec x2 = nv > 2 ? positions_vec(xp, s, 2, exact, last) : vzero();
            ROWS(POS_STEP)
            a += MR;
        }
    }
    ROWS(POS_SAVE)
}

static void positions_tile(const direct_job *j, int nv, bool exact, lanes last, int ir,
                           const float *init, const float *x, vec acc[RB][VMAX])
{
    if (exact) {            /* the image itself, unit stride */
        if (nv == 1) positions_kernel(j, 1, 1, true, last, ir, init, x, acc);
        else if (nv == 2) positions_kernel(j, 2, 1, true, last, ir, init, x, acc);
        else positions_kernel(j, 3, 1, true, last, ir, init, x, acc);
    } else if (j->s == 2) {
        if (nv == 1) positions_kernel(j, 1, 2, false, last, ir, init, x, acc);
        else if (nv == 2) positions_kernel(j, 2, 2, false, last, ir, init, x, acc);
        else positions_kernel(j, 3, 2, false, last, ir, init, x, acc);
    } else {
        if (nv == 1) positions_kernel(j, 1, 1, false, last, ir, init, x, acc);
        else if (nv == 2) positions_kernel(j, 2, 1, false, last, ir, init, x, acc);
        else positions_kernel(j, 3, 1, false, last, ir, init, x, acc);
    }
}

/* Where a tile's vector goes: lanes `mask` of it at y + at (at most one piece per output row
 * it touches; `full`: one piece of all lanes). */
typedef struct {
    lanes mask;
    ptrdiff_t at;
    bool full;
} piece;

/* The pieces of the vector of positions [q, q + VL) of a segment of `len` positions. */
static int vector_pieces(const direct_job *j, int q, int len, piece *out)
{
    int n = 0, l = 0;
    while (l < VL && q + l < len) {
        const int row = (q + l) / j->wide, ow = (q + l) % j->wide;
        if (ow >= j->out_w) {
            l += j->wide - ow;
            continue;
        }
        const int run = min_int(min_int(j->out_w - ow, VL - l), len - q - l);
        out[n].mask = lane_range(l, l + run);
        out[n].at = (ptrdiff_t)q - (ptrdiff_t)row * (j->wide - j->out_w);
        out[n].full = l == 0 && run == VL;
        ++n;
        l += run;
    }
    return n;
}

/* Tiles [t0, t1) (tile t: segment t / seg_tiles, its vectors split into seg_tiles near-equal
 * runs of at most VMAX) x rows [i0, i1) (i0 a multiple of MR). */
static void positions_block(const direct_job *j, int i0, int i1, int t0, int t1)
{
    for (int ic = i0; ic < i1; ic += j->mcb) {
        const int i_end = min_int(ic + j->mcb, i1);
        for (int t = t0; t < t1; ++t) {
            const int r = t / j->seg_tiles, tt = t % j->seg_tiles, len = segment_len(j, r);
            const int nvec = (len + VL - 1) / VL, ntiles = (nvec + VMAX - 1) / VMAX;
            if (tt >= ntiles)
                continue;
            const int v0 = nvec * tt / ntiles, v1 = nvec * (tt + 1) / ntiles;
            const bool exact = j->exact && v1 == nvec && len % VL;
            const lanes last = lane_range(0, len % VL);
            piece pieces[VMAX][VL];
            int count[VMAX];
            for (int v = v0; v < v1; ++v)
                count[v - v0] = vector_pieces(j, v * VL, len, pieces[v - v0]);
            const float *xt = j->x + r * j->x_step + (ptrdiff_t)v0 * VL * j->s;
            float *yt = j->y + r * j->y_step;
            const float *rt = j->res ? j->res + r * j->y_step : NULL;
            for (int ir = ic; ir < i_end; ir += RB) {
                const int rows = min_int(RB, j->m - ir);
                float init[RB];
                vec acc[RB][VMAX];
                for (int i = 0; i < RB; ++i)
                    init[i] = j->bias && i < rows ? j->bias[ir + i] : 0.0f;
                positions_tile(j, v1 - v0, exact, last, ir, init, xt, acc);
                for (int i = 0; i < rows; ++i) {
                    float *yr = yt + (ir + i) * j->ys;
                    const float *rr = rt ? rt + (ir + i) * j->ys : NULL;
                    for (int v = 0; v < v1 - v0; ++v) {
                        for (int e = 0; e < count[v]; ++e) {
                            const piece *pc = &pieces[v][e];
                            vec val = acc[i][v];
                            if (pc->full) {
                                if (rr)
                                    val = vadd(val, vload(rr + pc->at));
                                vstore(yr + pc->at, clamp_vec(j->epi, val));
                            } else {
                                if (rr)
                                    val = vadd(val, vload_lanes(rr + pc->at, pc->mask));
                                vstore_lanes(yr + pc->at, pc->mask, clamp_vec(j->epi, val));
                            }
                        }
                    }
                }
            }
        }
    }
}

/* --- running a job over the pool -------------------------------------------------------------- */
static void direct_task(const void *ctx, int t, void *scratch)
{
    const direct_job *j = ctx;
    int i0, i1, t0, t1;
    (void)scratch;
    nn_tile_range(j->m, j->tiles_m, MR, t % j->tiles_m, &i0, &i1);
    nn_tile_range(j->segments * j->seg_tiles, j->tiles_n, 1, t / j->tiles_m, &t0, &t1);
    if (i0 >= i1 || t0 >= t1)
        return;
    if (j->tile_w == NR)
        channel_block(j, i0, i1, t0, t1);
    else
        positions_block(j, i0, i1, t0, t1);
}

/* Tiles of NR positions (channel tiles) or of up to VMAX vectors (position tiles). */
static void direct_run(direct_job *j, bool by_positions)
{
    const int positions = (j->segments - 1) * j->seg_len + j->last_len;
    j->tile_w = by_positions ? VMAX * VL : NR;
    j->seg_tiles = by_positions ? ((j->seg_len + VL - 1) / VL + VMAX - 1) / VMAX
                                : (j->seg_len + NR - 1) / NR;
    j->mcb = direct_block_rows(j->k);
    nn_plan_tiles(j->m, positions, j->k, MR, j->tile_w, &j->tiles_m, &j->tiles_n);
    NN_FN(parallel_for)(j->tiles_m * j->tiles_n, direct_task, j, NULL, 0);
}

/* --- the direct path: bands of output rows from a zero-padded copy ----------------------------- */
/* A band is up to band_rows output rows of one output depth slice; its copy holds, per input
 * channel, the ext_d x band_ext input rows those read, `rowlen` floats each (the row extent
 * rounded up to the stride along w), so `wide` = rowlen / s[2] positions per row. */
typedef struct {
    int ext_d, band_rows, band_ext, rowlen, wide;
    size_t plane;
} direct_geometry;

static void direct_layout(const nn_conv_params *p, int band_rows, direct_geometry *g)
{
    const int *out = p->out_size, *s = p->strides, *ks = p->kernel, *d = p->dilations;
    const int ext_w = (out[2] - 1) * s[2] + (ks[2] - 1) * d[2] + 1;
    g->ext_d = (ks[0] - 1) * d[0] + 1;
    g->band_rows = band_rows;
    g->band_ext = (band_rows - 1) * s[1] + (ks[1] - 1) * d[1] + 1;
    g->rowlen = (ext_w + s[2] - 1) / s[2] * s[2];
    g->wide = g->rowlen / s[2];
    g->plane = (size_t)g->ext_d * g->band_ext * g->rowlen;
}

/* Floats a tile may read past the copy's last channel. */
static size_t direct_tail(const nn_conv_params *p)
{
    return (size_t)(VMAX * VL + NR) * p->strides[2];
}

/* Work floats of the direct path with bands of `rows` output rows: k tap offsets, the band's
 * c padded channels and the tail. */
static size_t direct_floats(const nn_conv_params *p, int c, int k, int rows)
{
    direct_geometry g;
    direct_layout(p, rows, &g);
    return (size_t)(k + 15) / 16 * 16 + (size_t)c * g.plane + direct_tail(p);
}

/* Output rows per band: as many as the work holds, spread evenly; 0 when one row does not fit. */
static int direct_band_rows(const nn_conv_params *p, int c, int k, size_t work_floats)
{
    const int rows = p->out_size[1];
    int fit = rows;
    while (fit > 0 && direct_floats(p, c, k, fit) > work_floats)
        --fit;
    if (fit == 0)
        return 0;
    const int bands = (rows + fit - 1) / fit;
    return (rows + bands - 1) / bands;
}

/* Segments of a band of `rows` rows: the band itself (unit stride along h) or its rows. */
static void band_segments(const nn_conv_params *p, const direct_geometry *g, int rows,
                          direct_job *j)
{
    const int *out = p->out_size, *s = p->strides;
    const bool whole = s[1] == 1;
    j->segments = whole ? 1 : rows;
    j->seg_len = whole ? (rows - 1) * g->wide + out[2] : out[2];
    j->last_len = j->seg_len;
    j->x_step = whole ? 0 : (ptrdiff_t)s[1] * g->rowlen;
    j->y_step = whole ? 0 : out[2];
    j->wide = g->wide;
    j->out_w = out[2];
    j->s = s[2];
    j->exact = false;
}

/* Which tiles the direct path uses for bands of `rows` rows: positions (stride 1, storing at
 * least half of what they compute, or stride 2 for a short k) or channels (stride 2 and up),
 * those storing at least 3/4: below that the GEMM is faster (a 1x1/2 256->512 at 28x28, 14
 * of 24 columns stored: 1.7x slower than the GEMM); 0 for neither. At stride 2 the position tiles' lane shuffles cost more than the channel tiles'
 * scalar stores once k is long (measured, AVX-512, 1 thread: k = 64 and 147 (a 7x7 stem)
 * 13-15% faster, k = 256 and 576 7-9% slower). */
enum { DIRECT_NONE, DIRECT_CHANNELS, DIRECT_POSITIONS };
#define STRIDE2_POSITIONS_MAX_K 192

static int direct_kind(const nn_conv_params *p, int k, int rows)
{
    direct_geometry g;
    direct_job j;
    direct_layout(p, rows, &g);
    band_segments(p, &g, rows, &j);
    const int stored = (p->strides[1] == 1 ? rows : 1) * p->out_size[2];
    const bool shuffled = p->strides[2] == 2 && k <= STRIDE2_POSITIONS_MAX_K;
    const int lanes_computed = (j.seg_len + VL - 1) / VL * VL;
    if ((p->strides[2] == 1 && 2 * stored >= lanes_computed) ||
        (shuffled && 4 * stored >= 3 * lanes_computed))
        return DIRECT_POSITIONS;
    if (4 * stored >= 3 * ((j.seg_len + NR - 1) / NR * NR))
        return DIRECT_CHANNELS;
    return DIRECT_NONE;
}

typedef struct {
    const nn_conv_params *p;
    const direct_geometry *g;
    const float *x;
    float *xb;
    int c, od, oh0, tasks;
} pad_job;

/* Channels of task t: the band's input rows, zero outside the image. */
static void pad_task(const void *ctx, int t, void *scratch)
{
    const pad_job *j = ctx;
    const nn_conv_params *p = j->p;
    const direct_geometry *g = j->g;
    const int *in = p->in_size, *pad = p->pads, *s = p->strides;
    const int lo = min_int(pad[2], g->rowlen), hi = max_int(lo, min_int(pad[2] + in[2], g->rowlen));
    int c0, c1;
    (void)scratch;
    nn_tile_range(j->c, j->tasks, 1, t, &c0, &c1);
    for (int ch = c0; ch < c1; ++ch) {
        float *xp = j->xb + (size_t)ch * g->plane;
        for (int a = 0; a < g->ext_d; ++a) {
            for (int b = 0; b < g->band_ext; ++b, xp += g->rowlen) {
                const int id = j->od * s[0] - pad[0] + a, ih = j->oh0 * s[1] - pad[1] + b;
                if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1]) {
                    memset(xp, 0, sizeof(float) * (size_t)g->rowlen);
                    continue;
                }
                const float *row = j->x + (((size_t)ch * in[0] + id) * in[1] + ih) * in[2] - pad[2];
                memset(xp, 0, sizeof(float) * (size_t)lo);
                memcpy(xp + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
                memset(xp + hi, 0, sizeof(float) * (size_t)(g->rowlen - hi));
            }
        }
    }
}

/* Y_g (m x positions) = epilogue(bias + W_g cols), band by band, cols read through tap
 * offsets from the band's padded copy. */
static void conv_direct(const nn_conv_params *p, int m, int c, int k, int band_rows, int kind,
                        const float *xg, const float *wg, const float *bias, float *yg,
                        const float *resg, const nn_conv_epilogue *epi, float *work)
{
    const int *ks = p->kernel, *d = p->dilations, *out = p->out_size;
    const int kvol = volume(ks), positions = volume(out);
    direct_geometry g;
    direct_layout(p, band_rows, &g);
    int *off = (int *)work;
    float *xb = work + (size_t)(k + 15) / 16 * 16;
    memset(xb + (size_t)c * g.plane, 0, sizeof(float) * direct_tail(p));
    for (int kk = 0; kk < k; ++kk) {
        const int ch = kk / kvol, r = kk % kvol;
        const int kd = r / (ks[1] * ks[2]), kh = r / ks[2] % ks[1], kw = r % ks[2];
        off[kk] = (int)((size_t)ch * g.plane) +
                  (kd * d[0] * g.band_ext + kh * d[1]) * g.rowlen + kw * d[2];
    }
    const double band_flops = 2.0 * m * (double)k * band_rows * out[2];
    pad_job pj = {p, &g, xg, xb, c, 0, 0, min_int(c, nn_task_count(band_flops))};
    for (int od = 0; od < out[0]; ++od) {
        for (int oh0 = 0; oh0 < out[1]; oh0 += band_rows) {
            const int rows = min_int(band_rows, out[1] - oh0);
            const size_t at = ((size_t)od * out[1] + oh0) * out[2];
            pj.od = od;
            pj.oh0 = oh0;
            NN_FN(parallel_for)(pj.tasks, pad_task, &pj, NULL, 0);
            direct_job j = {.m = m, .k = k, .mp = (m + MR - 1) / MR * MR, .wg = wg,
                            .bias = bias, .off = off, .x = xb, .y = yg + at,
                            .res = resg ? resg + at : NULL, .epi = epi, .ys = positions};
            band_segments(p, &g, rows, &j);
            direct_run(&j, kind == DIRECT_POSITIONS);
        }
    }
}

/* 1x1, stride 1, unpadded: cols is the image (channels x positions), read in place in segments
 * of POINTWISE_SEGMENT positions; work holds k offsets. */
#define POINTWISE_SEGMENT (4 * VMAX * VL)

static void conv_pointwise(int m, int k, int positions, const float *xg, const float *wg,
                           const float *bias, float *yg, const float *resg,
                           const nn_conv_epilogue *epi, int *off)
{
    const int seg = min_int(POINTWISE_SEGMENT, positions), segments = (positions + seg - 1) / seg;
    direct_job j = {.m = m, .k = k, .mp = (m + MR - 1) / MR * MR, .wg = wg, .bias = bias,
                    .off = off, .x = xg, .y = yg, .res = resg, .epi = epi, .ys = positions,
                    .x_step = seg, .y_step = seg, .segments = segments, .seg_len = seg,
                    .last_len = positions - (segments - 1) * seg, .wide = seg, .out_w = seg,
                    .s = 1, .exact = true};
    for (int p = 0; p < k; ++p)
        off[p] = p * positions;
    direct_run(&j, true);
}

/* Whether vectors of positions fill well enough: `width` positions per segment. */
static bool positions_fill(int width)
{
    return 4 * width >= 3 * ((width + VL - 1) / VL * VL);
}

/* --- Conv ------------------------------------------------------------------------------------- */
void NN_FN(conv)(const nn_conv_params *p, const float *x, const float *w_packed,
                 const float *bias, float *y, float *work, const nn_conv_epilogue *epi)
{
    const int groups = p->groups, m = p->out_channels / groups, c = p->in_channels / groups;
    const int k = c * volume(p->kernel), positions = volume(p->out_size), plane = volume(p->in_size);
    const bool pointwise = k == c && positions == plane && p->strides[0] == 1 &&
                           p->strides[1] == 1 && p->strides[2] == 1 && p->pads[0] == 0 &&
                           p->pads[1] == 0 && p->pads[2] == 0;
    const size_t work_floats = NN_GEMM_WORK_FLOATS(positions);
    const nn_conv_epilogue *e = epi ? epi : &no_epilogue;
    /* A 1x1 kernel with k in one KC block: vectors along positions (when they fill them).
     * Others: direct tiles over bands of rows that fit the work, when they store at least
     * half of what they compute; else the GEMM over implicit im2col. */
    const bool by_positions = pointwise && k <= KC && positions_fill(positions) &&
                              (size_t)k <= work_floats;
    const int band_rows = pointwise ? 0 : direct_band_rows(p, c, k, work_floats);
    const int kind = band_rows ? direct_kind(p, k, band_rows) : DIRECT_NONE;
    for (int n = 0; n < p->batch; ++n) {
        for (int g = 0; g < groups; ++g) {
            const size_t at = ((size_t)n * p->out_channels + (size_t)g * m) * positions;
            const float *xg = x + ((size_t)n * p->in_channels + (size_t)g * c) * plane;
            const float *wg = w_packed + g * NN_GEMM_PACKED_A_FLOATS(m, k);
            const float *bg = bias ? bias + g * m : NULL;
            const float *rg = e->residual ? e->residual + at : NULL;
            float *yg = y + at;
            if (by_positions) {
                conv_pointwise(m, k, positions, xg, wg, bg, yg, rg, e, (int *)work);
                continue;
            }
            if (kind != DIRECT_NONE) {
                conv_direct(p, m, c, k, band_rows, kind, xg, wg, bg, yg, rg, e, work);
                continue;
            }
            if (pointwise) {      /* cols is the image itself: channels x positions */
                NN_FN(sgemm)(m, positions, k, 1.0f, wg, xg, plane, 1, bg, false,
                             yg, positions, 1, work);
            } else {
                const nn_gemm_source cols = {pack_im2col, xg, 0, 0, p};
                NN_FN(sgemm_source)(m, positions, k, 1.0f, wg, &cols, bg, false,
                                    yg, positions, 1, work);
            }
            epilogue_pass(e, m, positions, yg, rg);
        }
    }
}

