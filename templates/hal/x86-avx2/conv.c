/* Convolution and transposed convolution for the x86 targets; see conv.h.
 *
 * Conv runs one of four paths per image and group, by shape:
 * - 1x1, stride 1, unpadded, k not long: position tiles over the image itself (RB
 *   channels x up to VMAX vectors of consecutive positions, weights broadcast from the packed
 *   A panels, NCHW vector stores);
 * - else, when bands of output rows of a zero-padded copy of the image fit the work buffer
 *   (the copy is made band by band, split over the pool, each phase of a strided dimension
 *   its own plane, so every tap reads consecutive floats): position tiles or channel tiles
 *   (MR channels x NR positions, the image broadcast), when they store enough of what they
 *   compute (direct_kind); a tile runs on across the output rows of a band;
 * - else the GEMM, over the image (1x1) or over implicit im2col panels.
 * Tiles sum each element in one accumulator over all of k (the bias its initial value; long
 * sums in spans, the accumulator saved and reloaded between them) and apply the fused epilogue
 * (residual, Relu / Clip) as they store; the GEMM paths apply it in their last stores. Every
 * element's sum order is fixed by k alone: results do not depend on the tiles, the spans, the
 * bands or the thread count. */
#include "conv.h"

#include "gemm.h"
#include "nn_pool.h"
#include "nn_conv_driver.h"
#include "nn_x86_vec.h"
#include "nn_conv_vclamp.h"

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
/* The residual added, then nn_conv_vclamp (nn_conv_vclamp.h): the clamps of
 * nn_conv_epilogue_value (conv.h) on a vector, bit for bit. */
static const nn_conv_epilogue no_epilogue = {NULL, 0, 0.0f, 0.0f};

/* --- how the output is walked ----------------------------------------------------------------- */
/* Output positions come in segments. A segment of the direct path is a band of output rows of
 * one depth slice, read from a zero-padded, phase-split copy of the band whose rows are `wide`
 * positions apart: position q of a segment is output row q / wide, column q % wide, and reads
 * the copy q floats past the segment's start (at any stride); columns >= out_w (the padding
 * between rows) are computed but not stored, so a tile runs on across rows (a 7-wide row
 * fills 7 of every 9 positions at stride 1, 7 of 8 at stride 2). A segment of a 1x1 kernel is a run of positions
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
    int wide, out_w;                 /* row pitch in positions, stored columns */
    bool exact;                      /* loads past a segment's end are masked (no padding) */
    int tile_w, seg_tiles, tiles_m, tiles_n;
} direct_job;

/* Rows per block: A's rows for a block (mcb x k floats) stay in L2 while the tiles run past.
 * With at most FEW_CHANNELS input channels (the stems) a tile reads few rows of the copy (a
 * 7x7/2 one 3 x 2 x 4 x 2 = 48 runs of about a tile's width for its 147 taps) and the block is
 * kept to DIRECT_A_L1_FLOATS, so that it stays in L1 beside them (measured, AVX-512, 7x7/2 3->64
 * at 224: blocks of 32 rows 4-5% faster at 1 thread, 13% at 2 than the whole 64; at k = 256 the
 * same L1 blocks were 19% slower: there the tile's image reads are k runs). */
#define DIRECT_A_FLOATS (1 << 16)
#define DIRECT_A_L1_FLOATS 6144
#define FEW_CHANNELS 4

static int direct_block_rows(int k, int c)
{
    const int budget = c <= FEW_CHANNELS ? DIRECT_A_L1_FLOATS : DIRECT_A_FLOATS;
    const int rows = budget / (k > 0 ? k : 1) / MR * MR;
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
 * another target (another vector width) must not compile. Used where position tiles would
 * fill less. */
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
        const vec b = vset1(xp[q]);                                                      \
        lo##q = vfma(a0, b, lo##q);                                                            \
        if (nv > 1)                                                                            \
            hi##q = vfma(a1, b, hi##q);                                                        \
    }
#define CH_SAVE(q) vstore(tile[q], lo##q); vstore(tile[q] + VL, hi##q);

INLINE void channel_kernel(const direct_job *j, int nv, int ir, const float *init,
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
    if (mr > VL)
        channel_kernel(j, 2, ir, init, x, tile);
    else
        channel_kernel(j, 1, ir, init, x, tile);
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
            const float *xt = j->x + r * j->x_step + q0;
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
                        yr[dst[c]] = nn_conv_epilogue_value(j->epi, tile[col[c]][i],
                                                    rr ? rr + dst[c] : NULL);
                    }
                }
            }
        }
    }
}

/* --- position tiles: RB output channels x up to VMAX vectors of positions ---------------------- */
/* A cols row is a run of the copy (or of the image): the tile is the other way round, RB
 * rows (weights broadcast from a packed A panel) times up to VMAX vectors of consecutive
 * positions, and its rows are vector stores into Y (masked where a vector crosses the padding
 * between rows or ends a segment). */
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

/* AVX-512 stores (and loads) lanes under a mask at the cost of a whole vector: a tile whose
 * vectors are one piece each (a row's last vector with the padding columns masked off) is
 * stored from its registers like a full one. AVX2's masked stores cost more: there only full
 * vectors are. */
#if VL == 16
#define MASKED_WHOLE 1
#else
#define MASKED_WHOLE 0
#endif

/* A tile's stores: its vectors' pieces (`whole`: each vector one piece, of all its lanes unless
 * MASKED_WHOLE), the output and residual rows of channel ir. */
typedef struct {
    const piece *pieces[VMAX];
    int count[VMAX];
    bool whole;
    float *y;
    const float *res;
} tile_out;

#if MASKED_WHOLE
/* Lanes `mask` of val (plus the residual's) stored at y: out of line, so that the masked
 * intrinsics are not inlined into every tile kernel (clang's ASan instruments each masked
 * access lane by lane: inlined, they took conv.c's sanitized compile from 21 to 101 s). */
static __attribute__((noinline)) void store_masked(const nn_conv_epilogue *e, float *y,
                                                   const float *res, lanes mask, vec val)
{
    if (res)
        val = vadd(val, vload_lanes(res, mask));
    vstore_lanes(y, mask, nn_conv_vclamp(e, val));
}
#else
#define store_masked(e, y, res, mask, val) ((void)0)       /* never reached: full vectors only */
#endif

/* Vector v of row r of a whole tile stored from its register: the residual added, the clamps
 * of e applied (a copy of the job's: the stores cannot change it). */
INLINE void store_whole(const direct_job *j, const nn_conv_epilogue *e, const tile_out *o, int r,
                        int v, vec val)
{
    const piece *pc = &o->pieces[v][0];
    const ptrdiff_t at = pc->at + r * j->ys;
    if (MASKED_WHOLE && !pc->full) {
        store_masked(e, o->y + at, o->res ? o->res + at : NULL, pc->mask, val);
        return;
    }
    if (o->res)
        val = vadd(val, vload(o->res + at));
    vstore(o->y + at, nn_conv_vclamp(e, val));
}

/* Rows [0, rows) of a tile that is not whole stored piece by piece from acc (a loop kept out of
 * the kernels: inlined in each, it made the stride-1 direct tiles 3-8% slower); a piece at a
 * time down the rows, the epilogue a local copy (the stores cannot change it). */
static void store_pieces(const direct_job *j, const tile_out *o, int rows, int nv,
                         vec acc[RB][VMAX])
{
    const nn_conv_epilogue e = *j->epi;
    const ptrdiff_t ys = j->ys;
    for (int v = 0; v < nv; ++v) {
        for (int n = 0; n < o->count[v]; ++n) {
            const piece pc = o->pieces[v][n];
            float *y = o->y + pc.at;
            const float *res = o->res ? o->res + pc.at : NULL;
            if (pc.full) {
                for (int r = 0; r < rows; ++r) {
                    vec t = acc[r][v];
                    if (res)
                        t = vadd(t, vload(res + r * ys));
                    vstore(y + r * ys, nn_conv_vclamp(&e, t));
                }
            } else {
                for (int r = 0; r < rows; ++r) {
                    vec t = acc[r][v];
                    if (res)
                        t = vadd(t, vload_lanes(res + r * ys, pc.mask));
                    vstore_lanes(y + r * ys, pc.mask, nn_conv_vclamp(&e, t));
                }
            }
        }
    }
}

/* Part of a tile's sum: k steps [p0, p1) onto the accumulators in `in` (NULL: the tile's
 * init), left in `out` (NULL: the sum is whole, stored through the tile's pieces). A float
 * accumulator saved and reloaded is the same float: a sum taken in spans is the sum taken at
 * once. */
typedef struct {
    int p0, p1;
    vec (*in)[VMAX], (*out)[VMAX];
} k_span;

#define POS_DECLARE(r) vec acc##r##_0, acc##r##_1, acc##r##_2;                                \
    if (s->in) {                                                                               \
        acc##r##_0 = s->in[r][0]; acc##r##_1 = s->in[r][1]; acc##r##_2 = s->in[r][2];          \
    } else {                                                                                   \
        acc##r##_0 = acc##r##_1 = acc##r##_2 = vset1(init[r]);                                 \
    }
#define POS_STEP(r) {                                                                         \
        const vec w = vset1(a[r]);                                                             \
        acc##r##_0 = vfma(w, x0, acc##r##_0);                                                  \
        if (nv > 1)                                                                            \
            acc##r##_1 = vfma(w, x1, acc##r##_1);                                              \
        if (nv > 2)                                                                            \
            acc##r##_2 = vfma(w, x2, acc##r##_2);                                              \
    }
#define POS_STORE(r)                                                                           \
    if (r < rows) {                                                                            \
        store_whole(j, &epi, o, r, 0, acc##r##_0);                                             \
        if (nv > 1)                                                                            \
            store_whole(j, &epi, o, r, 1, acc##r##_1);                                         \
        if (nv > 2)                                                                            \
            store_whole(j, &epi, o, r, 2, acc##r##_2);                                         \
    }
#define POS_SAVE(r) acc[r][0] = acc##r##_0; acc[r][1] = acc##r##_1; acc[r][2] = acc##r##_2;

INLINE vec positions_load(const float *x, bool masked, lanes last)
{
    return masked ? vload_lanes(x, last) : vload(x);
}

/* Rows ir.. (`rows` of them) of the tile, k steps s->p0 .. s->p1: init[r] (or s->in) + the sum
 * of weight (ir + r, p) times positions [v VL, v VL + VL) at x + off[p], left in s->out or
 * stored through `o` (from the registers when the tile is whole, else through acc). With
 * `exact`, the last vector loads only the lanes of `last`. */
INLINE void positions_kernel(const direct_job *j, int nv, bool exact, lanes last, int ir,
                             int rows, const float *init, const float *restrict x,
                             const tile_out *o, const k_span *s)
{
    ROWS(POS_DECLARE)
    for (int pc = s->p0 / KC * KC; pc < s->p1; pc += KC) {
        const int kc = min_int(KC, j->k - pc), lo = max_int(s->p0, pc);
        const int n = min_int(s->p1, pc + kc) - lo;
        const float *restrict a = a_block(j, pc, kc, ir) + (size_t)(lo - pc) * MR;
        const int *restrict off = j->off + lo;
        for (int p = 0; p < n; ++p) {
            const float *xp = x + off[p];
            const vec x0 = positions_load(xp, exact && nv == 1, last);
            const vec x1 = nv > 1 ? positions_load(xp + VL, exact && nv == 2, last) : vzero();
            const vec x2 = nv > 2 ? positions_load(xp + 2 * VL, exact, last) : vzero();
            ROWS(POS_STEP)
            a += MR;
        }
    }
    if (s->out) {
        vec (*acc)[VMAX] = s->out;
        ROWS(POS_SAVE)
    } else if (o->whole) {
        const nn_conv_epilogue epi = *j->epi;
        ROWS(POS_STORE)
    } else {
        vec acc[RB][VMAX];
        ROWS(POS_SAVE)
        store_pieces(j, o, rows, nv, acc);
    }
}

INLINE void positions_tile(const direct_job *j, int nv, bool exact, lanes last, int ir,
                           int rows, const float *init, const float *x, const tile_out *o,
                           const k_span *s)
{
    if (exact) {            /* the image itself: the last vector ends it */
        if (nv == 1) positions_kernel(j, 1, true, last, ir, rows, init, x, o, s);
        else if (nv == 2) positions_kernel(j, 2, true, last, ir, rows, init, x, o, s);
        else positions_kernel(j, 3, true, last, ir, rows, init, x, o, s);
    } else {
        if (nv == 1) positions_kernel(j, 1, false, last, ir, rows, init, x, o, s);
        else if (nv == 2) positions_kernel(j, 2, false, last, ir, rows, init, x, o, s);
        else positions_kernel(j, 3, false, last, ir, rows, init, x, o, s);
    }
}

/* Sums longer than 2 K_SPAN run in spans of K_SPAN steps (the last up to 2 K_SPAN) over
 * SPAN_ROWS rows at a time, their partial sums in a buffer: a span's image reads stay in L1 for
 * all those rows instead of coming from L2 again for each group of RB. Measured (1 thread,
 * AVX-512, min CPU time): 3x3/2 64->128 @56 (k = 576) 4% and 1x1 512->128 @28 8% faster; on
 * AVX2 (tiles of 24 positions, k <= 320 on positions) not measured faster: off. */
#if VL == 16
#define K_SPAN 128
#else
#define K_SPAN (1 << 30)
#endif
#define SPAN_ROWS 32
#if SPAN_ROWS % RB != 0
#error "SPAN_ROWS: a multiple of RB"
#endif

/* Tiles [t0, t1) (tile t: segment t / seg_tiles, its vectors split into seg_tiles near-equal
 * runs of at most VMAX) x rows [i0, i1) (i0 a multiple of MR). */
static void positions_block(const direct_job *j, int i0, int i1, int t0, int t1)
{
    vec partial[SPAN_ROWS / RB][RB][VMAX];
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
            tile_out o;
            o.whole = true;
            for (int v = v0; v < v1; ++v) {
                o.count[v - v0] = vector_pieces(j, v * VL, len, pieces[v - v0]);
                o.pieces[v - v0] = pieces[v - v0];
                o.whole = o.whole && o.count[v - v0] == 1 &&
                          (MASKED_WHOLE || pieces[v - v0][0].full);
            }
            const float *xt = j->x + r * j->x_step + (ptrdiff_t)v0 * VL;
            float *yt = j->y + r * j->y_step;
            const float *rt = j->res ? j->res + r * j->y_step : NULL;
            const int span = j->k / 2 > K_SPAN ? K_SPAN : j->k;
            for (int is = ic; is < i_end; is += SPAN_ROWS) {
                const int is_end = min_int(is + SPAN_ROWS, i_end);
                for (int p0 = 0; p0 < j->k; p0 += span) {
                    const int p1 = (j->k - p0) / 2 < span ? j->k : p0 + span;
                    for (int ir = is; ir < is_end; ir += RB) {
                        const int rows = min_int(RB, j->m - ir), g = (ir - is) / RB;
                        const k_span s = {p0, p1, p0 > 0 ? partial[g] : NULL,
                                          p1 < j->k ? partial[g] : NULL};
                        float init[RB];
                        for (int i = 0; i < RB; ++i)
                            init[i] = j->bias && i < rows ? j->bias[ir + i] : 0.0f;
                        o.y = yt + ir * j->ys;
                        o.res = rt ? rt + ir * j->ys : NULL;
                        positions_tile(j, v1 - v0, exact, last, ir, rows, init, xt, &o, &s);
                    }
                    if (p1 == j->k)
                        break;
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

/* Tiles of NR positions (channel tiles) or of up to VMAX vectors (position tiles); c input
 * channels. */
static void direct_run(direct_job *j, bool by_positions, int c)
{
    const int positions = (j->segments - 1) * j->seg_len + j->last_len;
    j->tile_w = by_positions ? VMAX * VL : NR;
    j->seg_tiles = by_positions ? ((j->seg_len + VL - 1) / VL + VMAX - 1) / VMAX
                                : (j->seg_len + NR - 1) / NR;
    j->mcb = direct_block_rows(j->k, c);
    nn_plan_tiles(j->m, positions, j->k, MR, j->tile_w, &j->tiles_m, &j->tiles_n);
    NN_FN(parallel_for)(j->tiles_m * j->tiles_n, direct_task, j, NULL, 0);
}

/* --- the direct path: bands of output rows from a zero-padded, phase-split copy ------------- */
/* Along a dimension of stride s, a tap at t = tap * dilation reads input index o * s + t =
 * (o + t / s) * s + t % s of output index o: phase t % s of the input (the indices = t % s
 * modulo s), t / s places further on. The copy holds each phase some tap reads as its own
 * plane, so a tap reads consecutive floats for consecutive outputs at any stride, and a band
 * of output rows is one run of positions `wide` apart per row (see direct_job). A band is up
 * to band_rows output rows of one output depth slice; its copy holds, per input channel, for
 * each of the ext_d input slices, h phase and w phase kept, `rows` rows of `wide` floats. */
typedef struct {
    int ext_d, nh, nw, rows, wide;
    size_t phase, plane;           /* floats of one phase plane, of one channel */
} direct_geometry;

/* Whether a kernel of k taps d apart at stride s reads phase r. */
static bool phase_read(int k, int d, int s, int r)
{
    for (int t = 0; t < k; ++t) {
        if (t * d % s == r)
            return true;
    }
    return false;
}

/* The phases of [0, r) read: the slot of phase r in the copy (when it is read). */
static int phase_slot(int k, int d, int s, int r)
{
    int slot = 0;
    for (int q = 0; q < r; ++q)
        slot += phase_read(k, d, s, q);
    return slot;
}

static void direct_layout(const nn_conv_params *p, int band_rows, direct_geometry *g)
{
    const int *out = p->out_size, *s = p->strides, *ks = p->kernel, *d = p->dilations;
    g->ext_d = (ks[0] - 1) * d[0] + 1;
    g->nh = phase_slot(ks[1], d[1], s[1], s[1]);
    g->nw = phase_slot(ks[2], d[2], s[2], s[2]);
    g->rows = band_rows + (ks[1] - 1) * d[1] / s[1];
    g->wide = out[2] + (ks[2] - 1) * d[2] / s[2];
    g->phase = (size_t)g->rows * g->wide;
    g->plane = (size_t)g->ext_d * g->nh * g->nw * g->phase;
}

/* Floats a tile may read past the copy's last channel. */
#define DIRECT_TAIL (VMAX * VL + NR)

/* Work floats of the direct path with bands of `rows` output rows: k tap offsets, the band's
 * c channels and the tail. */
static size_t direct_floats(const nn_conv_params *p, int c, int k, int rows)
{
    direct_geometry g;
    direct_layout(p, rows, &g);
    return (size_t)(k + 15) / 16 * 16 + (size_t)c * g.plane + DIRECT_TAIL;
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

/* A band of `rows` rows is one segment: position q is output row q / wide, column q % wide. */
static void band_segment(const nn_conv_params *p, const direct_geometry *g, int rows,
                         direct_job *j)
{
    j->segments = 1;
    j->seg_len = j->last_len = (rows - 1) * g->wide + p->out_size[2];
    j->x_step = j->y_step = 0;
    j->wide = g->wide;
    j->out_w = p->out_size[2];
    j->exact = false;
}

/* Which tiles the direct path uses for bands of `rows` rows (measured, AVX-512, 1 thread):
 * - none (the GEMM) for images of fewer than DIRECT_MIN_POSITIONS output positions per depth
 *   slice (7x7: a 1x1/2 256->512 took 0.086 ms on the GEMM, 0.12-0.15 ms on the tiles; 3x3
 *   ones at 7x7 tie);
 * - none for a strided kernel of at least STRIDED_GEMM_MIN_ROWS output channels on at most
 *   STRIDED_GEMM_MAX_POSITIONS positions per slice: the GEMM reads the image from packed
 *   panels in L1 where the tiles read it from the phase planes in L2 once per 32 channels
 *   (GEMM / direct time, 1 thread: 3x3/2 256->256 at 14x14 0.73, at 16x16 0.79, at 20x20
 *   0.80; 1x1/2 512->1024 at 14x14 0.72, 256->256 0.82; 3x3/2 128->256, 160->256 at 14x14
 *   0.92, 0.91; 64->256 0.97; 28x28 a tie; with 64 to 160 channels the tiles are 2-50%
 *   faster);
 * - positions when k <= POSITIONS_MAX_K and they store at least half of what they compute
 *   (k = 64..432: 5-25% faster than channel tiles; k = 576 a tie: 64->64 at 56x56 5% faster,
 *   64->256 at 13x13 5% slower);
 * - channels when they store at least 3/4 of what they compute (k = 1152, 2304: 5-15% faster
 *   than position tiles; below 3/4 the GEMM is faster: a 1x1/2 256->512 at 28x28 with 14 of
 *   24 columns stored ran 1.7x slower);
 * - else positions when they store at least half, else none. */
enum { DIRECT_NONE, DIRECT_CHANNELS, DIRECT_POSITIONS };
#define DIRECT_MIN_POSITIONS 64
#define STRIDED_GEMM_MIN_ROWS 256
#define STRIDED_GEMM_MAX_POSITIONS 400
/* AVX2's position tiles (4 rows x 3 vectors of 8) load more per FMA: there channel tiles
 * catch up by k = 432 (measured, 1 thread: k = 144, 288 positions 10% faster; 432 a tie;
 * 576, 1152 channels 10% faster; a 1x1 512->128 at 28x28 4% slower on positions than on
 * the GEMM). */
#if VL == 16
#define POSITIONS_MAX_K 640
#else
#define POSITIONS_MAX_K 320
#endif

static int direct_kind(const nn_conv_params *p, int m, int k, int rows)
{
    direct_geometry g;
    direct_job j;
    direct_layout(p, rows, &g);
    band_segment(p, &g, rows, &j);
    const int stored = rows * p->out_size[2], slice = p->out_size[1] * p->out_size[2];
    const bool positions = 2 * stored >= (j.seg_len + VL - 1) / VL * VL;
    const bool strided = p->strides[0] > 1 || p->strides[1] > 1 || p->strides[2] > 1;
    if (slice < DIRECT_MIN_POSITIONS)
        return DIRECT_NONE;
    if (strided && m >= STRIDED_GEMM_MIN_ROWS && slice <= STRIDED_GEMM_MAX_POSITIONS)
        return DIRECT_NONE;
    if (positions && k <= POSITIONS_MAX_K)
        return DIRECT_POSITIONS;
    if (4 * stored >= 3 * ((j.seg_len + NR - 1) / NR * NR))
        return DIRECT_CHANNELS;
    return positions ? DIRECT_POSITIONS : DIRECT_NONE;
}

typedef struct {
    const nn_conv_params *p;
    const direct_geometry *g;
    const float *x;
    float *xb;
    int c, od, oh0, tasks;
} pad_job;

/* Every other lane of (a, b): a[0], a[2], ... b[VL - 2]. */
#if defined(__AVX512F__)
static vec even_lanes(vec a, vec b)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    return _mm512_permutex2var_ps(a, even, b);
}
#else
static vec even_lanes(vec a, vec b)
{
    const __m256 pairs = _mm256_shuffle_ps(a, b, 0x88);  /* 0 2 8 10 4 6 12 14 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(pairs), 0xD8));
}
#endif

/* n floats at dst set to zero / copied from src (vectors, the last one masked: rows are short,
 * a call of memset or memcpy per row cost more than the copy). */
static void zero_floats(float *dst, int n)
{
    int i = 0;
    for (; i + VL <= n; i += VL)
        vstore(dst + i, vzero());
    if (i < n)
        vstore_lanes(dst + i, lane_range(0, n - i), vzero());
}

static void copy_floats(float *dst, const float *src, int n)
{
    int i = 0;
    for (; i + VL <= n; i += VL)
        vstore(dst + i, vload(src + i));
    if (i < n) {
        const lanes m = lane_range(0, n - i);
        vstore_lanes(dst + i, m, vload_lanes(src + i, m));
    }
}

/* n floats at dst from every other float at src (reads src[0 .. 2 n - 2] only). */
static void copy_even(float *dst, const float *src, int n)
{
    int i = 0;
    for (; i + VL < n; i += VL)
        vstore(dst + i, even_lanes(vload(src + 2 * i), vload(src + 2 * i + VL)));
    for (; i < n; i += VL) {
        const int used = 2 * (n - i) - 1;   /* floats read from src + 2 i */
        const lanes lo = lane_range(0, min_int(used, VL));
        const lanes hi = lane_range(0, max_int(min_int(used - VL, VL), 0));
        const vec v = even_lanes(vload_lanes(src + 2 * i, lo), vload_lanes(src + 2 * i + VL, hi));
        vstore_lanes(dst + i, lane_range(0, min_int(n - i, VL)), v);
    }
}

/* One row of a phase plane: input row `row` (NULL: outside the image) at w phase pw. */
static void pad_row(const nn_conv_params *p, const direct_geometry *g, const float *row, int pw,
                    float *dst)
{
    const int sw = p->strides[2];
    int lo, hi;
    if (!row) {
        zero_floats(dst, g->wide);
        return;
    }
    valid_range(g->wide, sw, pw - p->pads[2], p->in_size[2], &lo, &hi);
    zero_floats(dst, lo);
    const float *src = row + (ptrdiff_t)lo * sw + pw - p->pads[2];
    if (sw == 1) {
        copy_floats(dst + lo, src, hi - lo);
    } else if (sw == 2) {
        copy_even(dst + lo, src, hi - lo);
    } else {
        for (int i = lo; i < hi; ++i, src += sw)
            dst[i] = *src;
    }
    zero_floats(dst + hi, g->wide - hi);
}

/* Rows of task t: units (channel, input slice a, band row r) in that order, every phase plane's
 * row r of them, zero outside the image. Units in order read the image's rows in order (each
 * once for all its w phases: the second phase's reads hit L1), and rows split the copy evenly
 * over the tasks however few the channels (a stem's 3). */
static void pad_task(const void *ctx, int t, void *scratch)
{
    const pad_job *j = ctx;
    const nn_conv_params *p = j->p;
    const direct_geometry *g = j->g;
    const int *in = p->in_size, *pad = p->pads, *s = p->strides, *ks = p->kernel;
    const int *d = p->dilations;
    int u0, u1;
    (void)scratch;
    nn_tile_range(j->c * g->ext_d * g->rows, j->tasks, 1, t, &u0, &u1);
    for (int u = u0; u < u1; ++u) {
        const int ch = u / (g->ext_d * g->rows), a = u / g->rows % g->ext_d, r = u % g->rows;
        const int id = j->od * s[0] - pad[0] + a;
        float *xr = j->xb + (size_t)ch * g->plane + (size_t)a * g->nh * g->nw * g->phase +
                    (size_t)r * g->wide;
        for (int ph = 0, sh = 0; ph < s[1]; ++ph) {
            if (!phase_read(ks[1], d[1], s[1], ph))
                continue;
            const int ih = (j->oh0 + r) * s[1] + ph - pad[1];
            const bool inside = id >= 0 && id < in[0] && ih >= 0 && ih < in[1];
            const float *row = inside ? j->x + (((size_t)ch * in[0] + id) * in[1] + ih) * in[2]
                                      : NULL;
            for (int pw = 0, sw = 0; pw < s[2]; ++pw) {
                if (!phase_read(ks[2], d[2], s[2], pw))
                    continue;
                pad_row(p, g, row, pw, xr + ((size_t)sh * g->nw + sw) * g->phase);
                ++sw;
            }
            ++sh;
        }
    }
}

/* Y_g (m x positions) = epilogue(bias + W_g cols), band by band, cols read through tap
 * offsets from the band's phase-split copy. */
static void conv_direct(const nn_conv_params *p, int m, int c, int k, int band_rows, int kind,
                        const float *xg, const float *wg, const float *bias, float *yg,
                        const float *resg, const nn_conv_epilogue *epi, float *work)
{
    const int *ks = p->kernel, *d = p->dilations, *s = p->strides, *out = p->out_size;
    const int kvol = volume(ks), positions = volume(out);
    direct_geometry g;
    direct_layout(p, band_rows, &g);
    int *off = (int *)work;
    float *xb = work + (size_t)(k + 15) / 16 * 16;
    memset(xb + (size_t)c * g.plane, 0, sizeof(float) * DIRECT_TAIL);
    for (int kk = 0; kk < k; ++kk) {
        const int ch = kk / kvol, r = kk % kvol;
        const int th = r / ks[2] % ks[1] * d[1], tw = r % ks[2] * d[2];
        const int slot = (r / (ks[1] * ks[2]) * d[0] * g.nh +
                          phase_slot(ks[1], d[1], s[1], th % s[1])) * g.nw +
                         phase_slot(ks[2], d[2], s[2], tw % s[2]);
        off[kk] = (int)((size_t)ch * g.plane + (size_t)slot * g.phase) + th / s[1] * g.wide +
                  tw / s[2];
    }
    const double band_flops = 2.0 * m * (double)k * band_rows * out[2];
    pad_job pj = {p, &g, xg, xb, c, 0, 0,
                  min_int(c * g.ext_d * g.rows, nn_task_count(band_flops))};
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
            band_segment(p, &g, rows, &j);
            direct_run(&j, kind == DIRECT_POSITIONS, c);
        }
    }
}

/* 1x1, stride 1, unpadded: cols is the image (channels x positions), read in place in segments
 * of at most POINTWISE_SEGMENT positions, as equal as whole vectors allow (the tasks split
 * segments' tiles: 196 positions as 192 + 4 gave one thread all the work, a 576->96 conv at
 * 14x14 no faster on 2 threads than on 1); work holds k offsets. */
#define POINTWISE_SEGMENT (4 * VMAX * VL)

static void conv_pointwise(int m, int k, int positions, const float *xg, const float *wg,
                           const float *bias, float *yg, const float *resg,
                           const nn_conv_epilogue *epi, int *off)
{
    const int parts = (positions + POINTWISE_SEGMENT - 1) / POINTWISE_SEGMENT;
    const int even = ((positions + parts - 1) / parts + VL - 1) / VL * VL;
    const int seg = min_int(even, positions), segments = (positions + seg - 1) / seg;
    direct_job j = {.m = m, .k = k, .mp = (m + MR - 1) / MR * MR, .wg = wg, .bias = bias,
                    .off = off, .x = xg, .y = yg, .res = resg, .epi = epi, .ys = positions,
                    .x_step = seg, .y_step = seg, .segments = segments, .seg_len = seg,
                    .last_len = positions - (segments - 1) * seg, .wide = seg, .out_w = seg,
                    .exact = true};
    for (int p = 0; p < k; ++p)
        off[p] = p * positions;
    direct_run(&j, true, k);
}

/* Pointwise convs on position tiles against the GEMM (measured, AVX-512, GEMM time / tiles
 * time at 1 | 2 threads): with few output channels per position the tiles win, 64->256 at
 * 56x56 1.55 | 1.43, 16->96 at 112x112 2.5 | 3.0, 384->64 at 14x14 1.50 | 1.05, 512->128 at
 * 28x28 1.30 | 1.06, 128->512 and 96->576 at 14x14 1.03 | 1.65 and 1.05 | 1.34; 512->512 at
 * 14x14 ties (0.95 | 1.01); from 4 channels per position on the GEMM does (its B panels stay
 * in L1 while the tiles re-read the image for every 32 channels): 256->1024 at 14x14 0.88 |
 * 0.90, 512->1000 at 13x13 0.89 | 0.94, 320->1280 at 8x8 0.97 | 1.04. */
#define POSITIONS_MAX_ROWS_PER_POSITION 4

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
    /* A 1x1 kernel with k <= POSITIONS_MAX_K on at least DIRECT_MIN_POSITIONS positions, and
     * fewer than POSITIONS_MAX_ROWS_PER_POSITION output channels per position: vectors along
     * positions (when they fill them). Others: direct tiles over bands of rows that fit the
     * work (direct_kind); else the GEMM, over the image or implicit im2col. */
    const bool by_positions = pointwise && k <= POSITIONS_MAX_K &&
                              positions >= DIRECT_MIN_POSITIONS && positions_fill(positions) &&
                              m < POSITIONS_MAX_ROWS_PER_POSITION * positions &&
                              (size_t)k <= work_floats;
    const int band_rows = pointwise ? 0 : direct_band_rows(p, c, k, work_floats);
    const int kind = band_rows ? direct_kind(p, m, k, band_rows) : DIRECT_NONE;
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
            /* the epilogue as the GEMM stores C for the last time (its fields and flags are
             * the conv's) */
            const nn_gemm_epilogue ge = {rg, e->clamp, e->lo, e->hi};
            const nn_gemm_epilogue *gemm_epi = rg || e->clamp ? &ge : NULL;
            if (pointwise) {      /* cols is the image itself: channels x positions */
                NN_FN(sgemm_epilogue)(m, positions, k, 1.0f, wg, xg, plane, 1, bg, false,
                                      yg, positions, 1, work, gemm_epi);
            } else {
                const nn_gemm_source cols = {pack_im2col, xg, 0, 0, p};
                NN_FN(sgemm_source_epilogue)(m, positions, k, 1.0f, wg, &cols, bg, false,
                                             yg, positions, 1, work, gemm_epi);
            }
        }
    }
}

