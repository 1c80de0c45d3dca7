/* Convolution and transposed convolution for the x86 targets; see conv.h.
 *
 * The generic implementation, plus a direct path for Conv: when a zero-padded copy of one
 * group's image fits the GEMM's work buffer, the micro-kernel reads the GEMM's B operand
 * straight from that copy (one offset per row of cols, the taps of an output row are equally
 * spaced) instead of packing im2col panels; A is still the pre-packed weights. Output tiles are
 * NR consecutive positions of one output row. Sums run k ascending within KC blocks, blocks in
 * order: the result depends on the operands only. */
#include "conv.h"

#include <immintrin.h>

#include "gemm.h"
#include "nn_pool.h"
#include "nn_conv_driver.h"

/* --- direct tiles: B read from a zero-padded copy of the image ------------------------------ */
#if defined(__AVX512F__)
typedef __m512 vec;
#define VL 16
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vfma _mm512_fmadd_ps
#define vadd _mm512_add_ps
#define vzero _mm512_setzero_ps
#else
typedef __m256 vec;
#define VL 8
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vfma _mm256_fmadd_ps
#define vadd _mm256_add_ps
#define vzero _mm256_setzero_ps
#endif
#define MR NN_GEMM_MR
#define KC NN_GEMM_KC
#define MC NN_GEMM_MC
#define INLINE static inline __attribute__((always_inline))

/* The register tile is MR rows (2 vectors) x NR columns, one named accumulator pair per
 * column: its size is fixed at compile time, whatever the optimizer unrolls. A gemm.h of
 * another target (another vector width) must not compile. */
_Static_assert(MR == 2 * VL, "direct tiles hold NN_GEMM_MR rows as 2 vectors");
#if NR == 12
#define COLUMNS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif NR == 6
#define COLUMNS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#else
#error "direct tiles: no column list for this NN_GEMM_NR"
#endif

/* Floats of the padded image (per channel) that the outputs read, and its extents. */
static size_t padded_plane(const nn_conv_params *p, int ext[3])
{
    for (int i = 0; i < 3; ++i)
        ext[i] = (p->out_size[i] - 1) * p->strides[i] + (p->kernel[i] - 1) * p->dilations[i] + 1;
    return (size_t)ext[0] * ext[1] * ext[2];
}

/* Channels c of x, zero-padded: ext[0] x ext[1] rows of `rowlen` (>= ext[2]) floats each. */
static void pad_image(const nn_conv_params *p, int c, const float *x, const int ext[3],
                      int rowlen, float *xp)
{
    const int *in = p->in_size, *pad = p->pads;
    const int lo = min_int(pad[2], rowlen), hi = max_int(lo, min_int(pad[2] + in[2], rowlen));
    for (int ch = 0; ch < c; ++ch) {
        for (int a = 0; a < ext[0]; ++a) {
            for (int b = 0; b < ext[1]; ++b, xp += rowlen) {
                const int id = a - pad[0], ih = b - pad[1];
                if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1]) {
                    memset(xp, 0, sizeof(float) * (size_t)rowlen);
                    continue;
                }
                const float *row = x + (((size_t)ch * in[0] + id) * in[1] + ih) * in[2] - pad[2];
                memset(xp, 0, sizeof(float) * (size_t)lo);
                memcpy(xp + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
                memset(xp + hi, 0, sizeof(float) * (size_t)(rowlen - hi));
            }
        }
    }
}

/* How the direct path walks the output. The padded image has rows of `rowlen` floats (ext[2]
 * rounded up to the stride along w). Output positions come in segments: with unit stride along
 * h one output depth slice, its rows `wide` = rowlen / s[2] positions apart, else one output
 * row. Position q of a segment reads the image q * s[2] floats past the segment's start, so an
 * NR-column tile runs on across the rows of a segment: positions with ow >= out[2] (the
 * padding columns) are computed but not stored. A 7-wide row fills 7 of every 9 columns
 * instead of 7 of 12. */
typedef struct {
    int ext[3], rowlen, wide, seg_rows, seg_len, seg_tiles, segments;
    size_t plane;
} direct_geometry;

static void direct_layout(const nn_conv_params *p, direct_geometry *g)
{
    const int *out = p->out_size, *s = p->strides;
    padded_plane(p, g->ext);
    g->rowlen = (g->ext[2] + s[2] - 1) / s[2] * s[2];
    g->plane = (size_t)g->ext[0] * g->ext[1] * g->rowlen;
    g->wide = g->rowlen / s[2];
    g->seg_rows = s[1] == 1 ? out[1] : 1;
    g->seg_len = (g->seg_rows - 1) * g->wide + out[2];
    g->seg_tiles = (g->seg_len + NR - 1) / NR;
    g->segments = out[0] * out[1] / g->seg_rows;
}

/* Whether the stored positions fill at least half the tiles' columns. */
static bool direct_fills(const nn_conv_params *p)
{
    direct_geometry g;
    direct_layout(p, &g);
    return 2 * g.seg_rows * p->out_size[2] >= g.seg_tiles * NR;
}

/* Work floats of the direct path: k tap offsets, c padded channels, a tail that the last
 * tile may read past its end. */
static size_t direct_floats(const nn_conv_params *p, int c, int k)
{
    direct_geometry g;
    direct_layout(p, &g);
    return (size_t)(k + 15) / 16 * 16 + (size_t)c * g.plane + (size_t)NR * p->strides[2];
}

/* tile[j] (MR floats, rows of A) = sum over p of A rows times the image at x + off[p] + j * s;
 * nv = 1 when the rows fit one vector (the second stays 0). */
#define DIRECT_DECLARE(j) vec lo##j = vzero(), hi##j = vzero();
#define DIRECT_STEP(j) {                                                                      \
        const vec b = vset1(xp[(j) * s]);                                                      \
        lo##j = vfma(a0, b, lo##j);                                                            \
        if (nv > 1)                                                                            \
            hi##j = vfma(a1, b, hi##j);                                                        \
    }
#define DIRECT_SAVE(j) vstore(tile[j], lo##j); vstore(tile[j] + VL, hi##j);

INLINE void direct_kernel(int kc, int nv, int s, const float *restrict a,
                          const float *restrict x, const int *restrict off, float tile[NR][MR])
{
    COLUMNS(DIRECT_DECLARE)
    for (int p = 0; p < kc; ++p) {
        const vec a0 = vload(a), a1 = nv > 1 ? vload(a + VL) : vzero();
        const float *xp = x + off[p];
        COLUMNS(DIRECT_STEP)
        a += MR;
    }
    COLUMNS(DIRECT_SAVE)
}

static void direct_tile(int kc, int mr, int s, const float *a, const float *x, const int *off,
                        float tile[NR][MR])
{
    if (mr > VL) {
        if (s == 1)
            direct_kernel(kc, 2, 1, a, x, off, tile);
        else
            direct_kernel(kc, 2, s, a, x, off, tile);
    } else {
        if (s == 1)
            direct_kernel(kc, 1, 1, a, x, off, tile);
        else
            direct_kernel(kc, 1, s, a, x, off, tile);
    }
}

/* C rows [0, mr) (row stride rsc), column j at c[dst[j]] where dst[j] >= 0 = init + tile;
 * init is C (add), bias, or 0. */
static void store_rows(int mr, const float tile[NR][MR], const int dst[NR], bool add,
                       const float *bias, float *c, ptrdiff_t rsc)
{
    for (int i = 0; i < mr; ++i) {
        float *row = c + i * rsc;
        const float b0 = bias ? bias[i] : 0.0f;
        for (int j = 0; j < NR; ++j) {
            if (dst[j] >= 0)
                row[dst[j]] = (add ? row[dst[j]] : b0) + tile[j][i];
        }
    }
}

/* One direct convolution: tiles (segment, NR positions) x channel panels, split into
 * tiles_m x tiles_n tasks. */
typedef struct {
    const nn_conv_params *p;
    int m, k, mp, positions, tiles_m, tiles_n;
    direct_geometry g;
    const float *wg, *bias, *xp;
    const int *off;
    float *yg;
} direct_job;

/* Channels [i0, i1) (i0 a multiple of MR) of tiles [t0, t1) (tile t: segment t / seg_tiles,
 * positions from t % seg_tiles * NR). */
static void direct_block(const direct_job *j, int i0, int i1, int t0, int t1)
{
    const nn_conv_params *p = j->p;
    const direct_geometry *g = &j->g;
    const int *out = p->out_size, *s = p->strides;
    const int per_slice = out[1] / g->seg_rows;
    for (int pc = 0; pc < j->k; pc += KC) {
        const int kc = min_int(KC, j->k - pc);
        for (int ic = i0; ic < i1; ic += MC) {
            const int i_end = min_int(ic + MC, i1);
            for (int t = t0; t < t1; ++t) {
                const int sg = t / g->seg_tiles, q0 = t % g->seg_tiles * NR;
                const int od = sg / per_slice, oh = sg % per_slice * g->seg_rows;
                const float *xt = j->xp + ((size_t)od * s[0] * g->ext[1] + (size_t)oh * s[1]) *
                                  g->rowlen + (size_t)q0 * s[2];
                float *yseg = j->yg + ((size_t)od * out[1] + oh) * out[2];
                int dst[NR];
                for (int c = 0; c < NR; ++c) {
                    const int q = q0 + c, row = q / g->wide, ow = q % g->wide;
                    dst[c] = q < g->seg_len && ow < out[2] ? row * out[2] + ow : -1;
                }
                for (int ir = ic; ir < i_end; ir += MR) {
                    float tile[NR][MR];
                    direct_tile(kc, min_int(MR, j->m - ir), s[2],
                                j->wg + (size_t)pc * j->mp + (size_t)ir * kc, xt, j->off + pc, tile);
                    store_rows(min_int(MR, j->m - ir), (const float (*)[MR])tile, dst, pc > 0,
                               j->bias ? j->bias + ir : NULL,
                               yseg + (size_t)ir * j->positions, j->positions);
                }
            }
        }
    }
}

static void direct_task(const void *ctx, int t, void *scratch)
{
    const direct_job *j = ctx;
    int i0, i1, t0, t1;
    (void)scratch;
    nn_tile_range(j->m, j->tiles_m, MR, t % j->tiles_m, &i0, &i1);
    nn_tile_range(j->g.segments * j->g.seg_tiles, j->tiles_n, 1, t / j->tiles_m, &t0, &t1);
    if (i0 < i1 && t0 < t1)
        direct_block(j, i0, i1, t0, t1);
}

/* Y_g (m x positions) = bias + W_g cols, cols read through tap offsets from the padded image. */
static void conv_direct(const nn_conv_params *p, int m, int c, int k, const float *xg,
                        const float *wg, const float *bias, float *yg, float *work)
{
    const int *ks = p->kernel, *d = p->dilations;
    const int kvol = volume(ks);
    direct_job j = {p, m, k, (m + MR - 1) / MR * MR, volume(p->out_size), 1, 1,
                    {{0, 0, 0}, 0, 0, 0, 0, 0, 0, 0}, wg, bias, NULL, NULL, yg};
    direct_layout(p, &j.g);
    const direct_geometry *g = &j.g;
    int *off = (int *)work;
    float *xp = work + (size_t)(k + 15) / 16 * 16;
    pad_image(p, c, xg, g->ext, g->rowlen, xp);
    memset(xp + (size_t)c * g->plane, 0, sizeof(float) * (size_t)NR * p->strides[2]);
    for (int kk = 0; kk < k; ++kk) {
        const int ch = kk / kvol, r = kk % kvol;
        const int kd = r / (ks[1] * ks[2]), kh = r / ks[2] % ks[1], kw = r % ks[2];
        off[kk] = (int)((size_t)ch * g->plane) +
                  (kd * d[0] * g->ext[1] + kh * d[1]) * g->rowlen + kw * d[2];
    }
    j.xp = xp;
    j.off = off;
    nn_plan_tiles(m, g->segments * g->seg_tiles * NR, k, MR, NR, &j.tiles_m, &j.tiles_n);
    NN_FN(parallel_for)(j.tiles_m * j.tiles_n, direct_task, &j, NULL, 0);
}

/* --- position tiles: vectors along output positions, stored straight into NCHW ------------- */
/* For a 1x1, stride-1, unpadded kernel cols is the image itself (channels x positions); Y_g =
 * W_g cols is then tiled the other way round from the GEMM: RB output channels (RB broadcast
 * weights of one packed A panel) times up to VMAX vectors of consecutive positions of one
 * segment of the image, so a tile's rows are vector stores into Y and nothing is packed. cols
 * row p of a segment is contiguous at x + off[p]. Each element sums k ascending within KC
 * blocks, blocks in order, as the tiles above. Used when k fits one KC block: there the
 * GEMM's transposed stores and B packing cost most relative to the sums (measured, AVX-512:
 * 1.4x-2.4x for k = 32..256; for longer k the packed GEMM's streaming wins). */
#define RB (VL / 2)
#define VMAX 3
#if MR % RB != 0
#error "RB must divide NN_GEMM_MR"
#endif

#if defined(__AVX512F__)
typedef __mmask16 lanes;
static lanes first_lanes(int n) { return (lanes)((1u << n) - 1u); }
#define vload_lanes(p, m) _mm512_maskz_loadu_ps((m), (p))
#define vstore_lanes(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#else
typedef __m256i lanes;
static lanes first_lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define vload_lanes(p, m) _mm256_maskload_ps((p), (m))
#define vstore_lanes(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#endif

/* acc[r][v] = sum over p of weight (r, p) times cols row p, positions [v * VL, v * VL + VL).
 * a: the tile's first row in a packed A panel (row r, tap p at a[p * MR + r]). With `exact`,
 * the last vector loads only its first `last` lanes (a segment that ends at the image's end).
 * The RB x VMAX accumulators are named variables (a register tile of fixed size), acc is
 * written once at the end. */
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
#define POS_DECLARE(r) vec acc##r##_0 = vzero(), acc##r##_1 = vzero(), acc##r##_2 = vzero();
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

INLINE void positions_kernel(int kc, int nv, bool exact, lanes last, const float *restrict a,
                             const float *restrict x, const int *restrict off,
                             vec acc[RB][VMAX])
{
    ROWS(POS_DECLARE)
    for (int p = 0; p < kc; ++p) {
        const float *xp = x + off[p];
        const vec x0 = positions_load(xp, exact && nv == 1, last);
        const vec x1 = nv > 1 ? positions_load(xp + VL, exact && nv == 2, last) : vzero();
        const vec x2 = nv > 2 ? positions_load(xp + 2 * VL, exact, last) : vzero();
        ROWS(POS_STEP)
        a += MR;
    }
    ROWS(POS_SAVE)
}

static void positions_tile(int kc, int nv, bool exact, lanes last, const float *a,
                           const float *x, const int *off, vec acc[RB][VMAX])
{
    if (exact) {
        if (nv == 1) positions_kernel(kc, 1, true, last, a, x, off, acc);
        else if (nv == 2) positions_kernel(kc, 2, true, last, a, x, off, acc);
        else positions_kernel(kc, 3, true, last, a, x, off, acc);
    } else {
        if (nv == 1) positions_kernel(kc, 1, false, last, a, x, off, acc);
        else if (nv == 2) positions_kernel(kc, 2, false, last, a, x, off, acc);
        else positions_kernel(kc, 3, false, last, a, x, off, acc);
    }
}

/* Rows [0, rows) of Y (row stride rs) x positions [0, width) = init + acc; init is Y (add),
 * bias or 0. */
static void store_positions(int rows, int width, vec acc[RB][VMAX], bool add, const float *bias,
                            float *y, ptrdiff_t rs)
{
    const int full = width / VL, rest = width % VL;
    const lanes tail = first_lanes(rest);
    for (int r = 0; r < rows; ++r) {
        float *yr = y + r * rs;
        const vec b = vset1(bias ? bias[r] : 0.0f);
        for (int v = 0; v < full; ++v)
            vstore(yr + v * VL, vadd(add ? vload(yr + v * VL) : b, acc[r][v]));
        if (rest)
            vstore_lanes(yr + full * VL, tail,
                         vadd(add ? vload_lanes(yr + full * VL, tail) : b, acc[r][full]));
    }
}

/* One product over segments: segment r covers positions [r * width, r * width + width) of Y
 * (the last may be shorter) and of the image x. */
typedef struct {
    int m, k, mp, positions, segments, width, tiles_m, tiles_r;
    const float *wg, *bias, *x;
    const int *off;
    float *yg;
} positions_job;

/* Channels [i0, i1) (i0 a multiple of MR) of segments [r0, r1). The last vector of the
 * image's end loads only the lanes inside it. */
static void positions_block(const positions_job *j, int i0, int i1, int r0, int r1)
{
    for (int pc = 0; pc < j->k; pc += KC) {
        const int kc = min_int(KC, j->k - pc);
        for (int ic = i0; ic < i1; ic += MC) {
            const int i_end = min_int(ic + MC, i1);
            for (int r = r0; r < r1; ++r) {
                const int start = r * j->width, width = min_int(j->width, j->positions - start);
                const int nvec = (width + VL - 1) / VL, ntiles = (nvec + VMAX - 1) / VMAX;
                const lanes last = first_lanes(width % VL);
                for (int t = 0; t < ntiles; ++t) {
                    const int v0 = nvec * t / ntiles, v1 = nvec * (t + 1) / ntiles;
                    const int tw = min_int(width, v1 * VL) - v0 * VL;
                    const bool exact = v1 == nvec && width % VL;
                    const int pos = start + v0 * VL;
                    for (int ir = ic; ir < i_end; ir += RB) {
                        vec acc[RB][VMAX];
                        positions_tile(kc, v1 - v0, exact, last,
                                       j->wg + (size_t)pc * j->mp + (size_t)(ir / MR * MR) * kc +
                                       ir % MR, j->x + pos, j->off + pc, acc);
                        store_positions(min_int(RB, j->m - ir), tw, acc, pc > 0,
                                        j->bias ? j->bias + ir : NULL,
                                        j->yg + (size_t)ir * j->positions + pos, j->positions);
                    }
                }
            }
        }
    }
}

static void positions_task(const void *ctx, int t, void *scratch)
{
    const positions_job *j = ctx;
    int i0, i1, r0, r1;
    (void)scratch;
    nn_tile_range(j->m, j->tiles_m, MR, t % j->tiles_m, &i0, &i1);
    nn_tile_range(j->segments, j->tiles_r, 1, t / j->tiles_m, &r0, &r1);
    if (i0 < i1 && r0 < r1)
        positions_block(j, i0, i1, r0, r1);
}

static void positions_run(positions_job *j)
{
    nn_plan_tiles(j->m, j->positions, j->k, MR, j->width, &j->tiles_m, &j->tiles_r);
    NN_FN(parallel_for)(j->tiles_m * j->tiles_r, positions_task, j, NULL, 0);
}

/* Whether vectors of positions fill well enough: `width` positions per segment. */
static bool positions_fill(int width)
{
    return 4 * width >= 3 * ((width + VL - 1) / VL * VL);
}

/* Positions per segment of a 1x1 kernel's run: a few tiles. */
#define POINTWISE_SEGMENT (4 * VMAX * VL)

/* 1x1, stride 1, unpadded: cols is the image (channels x positions); work holds k offsets. */
static void conv_pointwise(int m, int k, int positions, const float *xg, const float *wg,
                           const float *bias, float *yg, int *off)
{
    positions_job j = {m, k, (m + MR - 1) / MR * MR, positions,
                       (positions + POINTWISE_SEGMENT - 1) / POINTWISE_SEGMENT,
                       POINTWISE_SEGMENT, 1, 1, wg, bias, xg, off, yg};
    for (int p = 0; p < k; ++p)
        off[p] = p * positions;
    positions_run(&j);
}

/* --- Conv ------------------------------------------------------------------------------------- */
void NN_FN(conv)(const nn_conv_params *p, const float *x, const float *w_packed,
                 const float *bias, float *y, float *work)
{
    const int groups = p->groups, m = p->out_channels / groups, c = p->in_channels / groups;
    const int k = c * volume(p->kernel), positions = volume(p->out_size), plane = volume(p->in_size);
    const bool pointwise = k == c && positions == plane && p->strides[0] == 1 &&
                           p->strides[1] == 1 && p->strides[2] == 1 && p->pads[0] == 0 &&
                           p->pads[1] == 0 && p->pads[2] == 0;
    const size_t work_floats = NN_GEMM_WORK_FLOATS(positions);
    /* A 1x1 kernel with k in one KC block: vectors along positions (when they fill them).
     * Others: direct tiles when rows fill at least half a tile and the padded image fits the
     * work; else the GEMM over implicit im2col. */
    const bool by_positions = pointwise && k <= KC && positions_fill(positions) &&
                              (size_t)k <= work_floats;
    const bool direct = !pointwise && direct_fills(p) &&
                        direct_floats(p, c, k) <= work_floats;
    for (int n = 0; n < p->batch; ++n) {
        for (int g = 0; g < groups; ++g) {
            const float *xg = x + ((size_t)n * p->in_channels + (size_t)g * c) * plane;
            const float *wg = w_packed + g * NN_GEMM_PACKED_A_FLOATS(m, k);
            const float *bg = bias ? bias + g * m : NULL;
            float *yg = y + ((size_t)n * p->out_channels + (size_t)g * m) * positions;
            if (by_positions) {
                conv_pointwise(m, k, positions, xg, wg, bg, yg, (int *)work);
            } else if (direct) {
                conv_direct(p, m, c, k, xg, wg, bg, yg, work);
            } else if (pointwise) {      /* cols is the image itself: channels x positions */
                NN_FN(sgemm)(m, positions, k, 1.0f, wg, xg, plane, 1, bg, false,
                             yg, positions, 1, work);
            } else {
                const nn_gemm_source cols = {pack_im2col, xg, 0, 0, p};
                NN_FN(sgemm_source)(m, positions, k, 1.0f, wg, &cols, bg, false,
                                    yg, positions, 1, work);
            }
        }
    }
}
