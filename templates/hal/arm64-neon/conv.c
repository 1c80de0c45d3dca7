/* Convolution and transposed convolution for the arm64-neon target; see conv.h.
 *
 * The generic implementation, plus NEON paths:
 * - Conv: when a zero-padded copy of one group's image fits the GEMM's work buffer, the 8 x 12
 *   micro-kernel reads its B operand straight from that copy (one offset per row of cols; the
 *   taps of an output row are equally spaced, so 12 positions are 3 vector loads at stride 1,
 *   3 de-interleaving loads at stride 2) instead of packing im2col panels; A is still the
 *   pre-packed weights. Output tiles are 12 consecutive positions of one output row, stored
 *   along the row through 4 x 4 register transposes. 1x1 unit-stride convolutions are a plain
 *   SGEMM on the image; the rest packs im2col panels for the SGEMM.
 * Sums run k ascending within KC blocks, blocks in order: the result depends on the operands
 * only. Threads (nn_pool.h) take output channel panels x output rows (Conv), a split that
 * depends on the problem's size only. Depthwise convolution is depthwise.c. */
#include "conv.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include <arm_neon.h>

#include "gemm.h"
#include "nn_pool.h"
#include "nn_conv_driver.h"

/* --- direct tiles: B read from a zero-padded copy of the image ------------------------------ */
typedef float32x4_t vec;
#define VL 4
#define MR NN_GEMM_MR
#define KC NN_GEMM_KC
#define MC NN_GEMM_MC
#define INLINE static inline __attribute__((always_inline))

#if MR != 2 * VL || NR != 3 * VL
#error "the arm64-neon conv tiles are 2 x 3 vectors: NN_GEMM_MR 8, NN_GEMM_NR 12"
#endif

/* Floats of the padded image (per channel) that the outputs read, and its extents. */
static size_t padded_plane(const nn_conv_params *p, int ext[3])
{
    for (int i = 0; i < 3; ++i)
        ext[i] = (p->out_size[i] - 1) * p->strides[i] + (p->kernel[i] - 1) * p->dilations[i] + 1;
    return (size_t)ext[0] * ext[1] * ext[2];
}

/* Work floats of the direct path: k tap offsets, c padded channels, a tail that the last
 * tile of a row may read past its end. */
static size_t direct_floats(const nn_conv_params *p, int c, int k)
{
    int ext[3];
    const size_t plane = padded_plane(p, ext);
    return (size_t)(k + 15) / 16 * 16 + (size_t)c * plane + (size_t)NR * p->strides[2];
}

/* xp (c channels of ext[0] x ext[1] x ext[2]) = X with its padding as zeros. */
static void pad_image(const nn_conv_params *p, int c, const float *x, const int ext[3], float *xp)
{
    const int *in = p->in_size, *pad = p->pads;
    for (int ch = 0; ch < c; ++ch) {
        for (int a = 0; a < ext[0]; ++a) {
            for (int b = 0; b < ext[1]; ++b, xp += ext[2]) {
                const int id = a - pad[0], ih = b - pad[1];
                if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1]) {
                    for (int w = 0; w < ext[2]; ++w)
                        xp[w] = 0.0f;
                    continue;
                }
                const float *row = x + (((size_t)ch * in[0] + id) * in[1] + ih) * in[2];
                for (int w = 0; w < ext[2]; ++w)
                    xp[w] = w >= pad[2] && w - pad[2] < in[2] ? row[w - pad[2]] : 0.0f;
            }
        }
    }
}

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

/* Vector q of the tile's B row: the image at x + (4q + l) * s for lanes l (s = 1: one load;
 * s = 2: the even lanes of a de-interleaving load; else lane by lane). */
INLINE vec load_taps(const float *x, int q, int s)
{
    if (s == 1)
        return vld1q_f32(x + 4 * q);
    if (s == 2)
        return vld2q_f32(x + 8 * q).val[0];
    const float *t = x + 4 * q * s;
    vec v = vdupq_n_f32(t[0]);
    v = vsetq_lane_f32(t[s], v, 1);
    v = vsetq_lane_f32(t[2 * s], v, 2);
    return vsetq_lane_f32(t[3 * s], v, 3);
}

/* out[j][v] = sum over p of A rows [4v, 4v + 4) times the image at x + off[p] + j * s, for
 * the nv vectors of rows and nb vectors of positions that hold data. */
INLINE void direct_kernel(int kc, int nv, int nb, int s, const float *restrict a,
                          const float *restrict x, const int *restrict off, vec out[NR][2])
{
    vec acc[NR][2];                       /* a local array: the compiler keeps it in registers */
    for (int j = 0; j < NR; ++j)
        acc[j][0] = acc[j][1] = vdupq_n_f32(0.0f);
    for (int p = 0; p < kc; ++p) {
        const vec a0 = vld1q_f32(a);
        const vec a1 = nv > 1 ? vld1q_f32(a + VL) : vdupq_n_f32(0.0f);
        const float *xp = x + off[p];
        const vec b0 = load_taps(xp, 0, s);
        FMA_LANES(0, b0);
        if (nb > 1) {
            const vec b1 = load_taps(xp, 1, s);
            FMA_LANES(1, b1);
        }
        if (nb > 2) {
            const vec b2 = load_taps(xp, 2, s);
            FMA_LANES(2, b2);
        }
        a += MR;
    }
    for (int j = 0; j < NR; ++j) {
        out[j][0] = acc[j][0];
        out[j][1] = acc[j][1];
    }
}

#define DIRECT_STRIDES(nv, nb)                                                   \
    do {                                                                         \
        if (s == 1)                                                              \
            direct_kernel(kc, nv, nb, 1, a, x, off, acc);                        \
        else if (s == 2)                                                         \
            direct_kernel(kc, nv, nb, 2, a, x, off, acc);                        \
        else                                                                     \
            direct_kernel(kc, nv, nb, s, a, x, off, acc);                        \
    } while (0)

static void direct_tile(int kc, int mr, int nr, int s, const float *a, const float *x,
                        const int *off, vec acc[NR][2])
{
    const int nb = (nr + VL - 1) / VL;
    if (mr > VL) {
        if (nb == 3)
            DIRECT_STRIDES(2, 3);
        else if (nb == 2)
            DIRECT_STRIDES(2, 2);
        else
            DIRECT_STRIDES(2, 1);
    } else {
        if (nb == 3)
            DIRECT_STRIDES(1, 3);
        else if (nb == 2)
            DIRECT_STRIDES(1, 2);
        else
            DIRECT_STRIDES(1, 1);
    }
}

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

/* C rows [0, mr) x columns [0, nr) (row stride rsc) = init + acc; init is C (add), bias, or 0.
 * Whole 4 x 4 blocks are transposed in registers and stored along the rows; the rest goes
 * through a local buffer. */
static void store_rows(int mr, int nr, vec acc[NR][2], bool add, const float *bias, float *c,
                       ptrdiff_t rsc)
{
    const int rows_done = mr / VL * VL, cols_done = nr / VL * VL;
    for (int v = 0; v < rows_done / VL; ++v) {
        for (int q = 0; q < cols_done / VL; ++q) {
            const vec cols[4] = {acc[4 * q][v], acc[4 * q + 1][v], acc[4 * q + 2][v],
                                 acc[4 * q + 3][v]};
            vec r[4];
            transpose4(cols, r);
            for (int t = 0; t < VL; ++t) {
                float *out = c + (v * VL + t) * rsc + 4 * q;
                const vec init = add ? vld1q_f32(out)
                                     : vdupq_n_f32(bias ? bias[v * VL + t] : 0.0f);
                vst1q_f32(out, vaddq_f32(init, r[t]));
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
        if (add) {
            for (int j = j0; j < nr; ++j)
                row[j] += tile[j][i];
        } else {
            const float b0 = bias ? bias[i] : 0.0f;
            for (int j = j0; j < nr; ++j)
                row[j] = b0 + tile[j][i];
        }
    }
}

/* One direct convolution: output rows x channel panels, split into tiles_m x tiles_r tasks. */
typedef struct {
    const nn_conv_params *p;
    int m, k, mp, positions, rows, tiles_m, tiles_r;
    int ext[3];
    const float *wg, *bias, *xp;
    const int *off;
    float *yg;
} direct_job;

/* Channels [i0, i1) (i0 a multiple of MR) of output rows [r0, r1) (a row: od, oh). */
static void direct_block(const direct_job *j, int i0, int i1, int r0, int r1)
{
    const int *out = j->p->out_size, *s = j->p->strides, *ext = j->ext;
    for (int pc = 0; pc < j->k; pc += KC) {
        const int kc = min_int(KC, j->k - pc);
        for (int ic = i0; ic < i1; ic += MC) {
            const int i_end = min_int(ic + MC, i1);
            for (int r = r0; r < r1; ++r) {
                const int od = r / out[1], oh = r % out[1];
                const float *xrow = j->xp + ((size_t)od * s[0] * ext[1] +
                                             (size_t)oh * s[1]) * ext[2];
                float *yrow = j->yg + (size_t)r * out[2];
                for (int ow = 0; ow < out[2]; ow += NR) {
                    const int nr = min_int(NR, out[2] - ow);
                    for (int ir = ic; ir < i_end; ir += MR) {
                        const int mr = min_int(MR, j->m - ir);
                        vec acc[NR][2];
                        direct_tile(kc, mr, nr, s[2], j->wg + (size_t)pc * j->mp + (size_t)ir * kc,
                                    xrow + (size_t)ow * s[2], j->off + pc, acc);
                        store_rows(mr, nr, acc, pc > 0, j->bias ? j->bias + ir : NULL,
                                   yrow + (size_t)ir * j->positions + ow, j->positions);
                    }
                }
            }
        }
    }
}

static void direct_task(const void *ctx, int t, void *scratch)
{
    const direct_job *j = ctx;
    int i0, i1, r0, r1;
    (void)scratch;
    nn_tile_range(j->m, j->tiles_m, MR, t % j->tiles_m, &i0, &i1);
    nn_tile_range(j->rows, j->tiles_r, 1, t / j->tiles_m, &r0, &r1);
    if (i0 < i1 && r0 < r1)
        direct_block(j, i0, i1, r0, r1);
}

/* Y_g (m x positions) = bias + W_g cols, cols read through tap offsets from the padded image
 * (made once, in `work`, then read by every task). */
static void conv_direct(const nn_conv_params *p, int m, int c, int k, const float *xg,
                        const float *wg, const float *bias, float *yg, float *work)
{
    const int *ks = p->kernel, *d = p->dilations, *out = p->out_size;
    const int kvol = volume(ks);
    direct_job j = {p, m, k, (m + MR - 1) / MR * MR, volume(out), out[0] * out[1], 1, 1,
                    {0, 0, 0}, wg, bias, NULL, NULL, yg};
    const size_t plane = padded_plane(p, j.ext);
    const int *ext = j.ext;
    int *off = (int *)work;
    float *xp = work + (size_t)(k + 15) / 16 * 16;
    pad_image(p, c, xg, ext, xp);
    for (int t = 0; t < NR * p->strides[2]; ++t)
        xp[(size_t)c * plane + t] = 0.0f;
    for (int kk = 0; kk < k; ++kk) {
        const int ch = kk / kvol, r = kk % kvol;
        const int kd = r / (ks[1] * ks[2]), kh = r / ks[2] % ks[1], kw = r % ks[2];
        off[kk] = (int)((size_t)ch * plane) + (kd * d[0] * ext[1] + kh * d[1]) * ext[2] + kw * d[2];
    }
    j.xp = xp;
    j.off = off;
    nn_plan_tiles(m, j.positions, k, MR, out[2], &j.tiles_m, &j.tiles_r);
    NN_FN(parallel_for)(j.tiles_m * j.tiles_r, direct_task, &j, NULL, 0);
}

/* --- Conv ------------------------------------------------------------------------------------- */
void NN_FN(conv)(const nn_conv_params *p, const float *x, const float *w_packed,
                 const float *bias, float *y, float *work, const nn_conv_epilogue *epilogue)
{
    const int groups = p->groups, m = p->out_channels / groups, c = p->in_channels / groups;
    const int k = c * volume(p->kernel), positions = volume(p->out_size), plane = volume(p->in_size);
    const bool pointwise = k == c && positions == plane && p->strides[0] == 1 &&
                           p->strides[1] == 1 && p->strides[2] == 1 && p->pads[0] == 0 &&
                           p->pads[1] == 0 && p->pads[2] == 0;
    /* Direct tiles when rows fill at least half a tile and the padded image fits the work. */
    const bool direct = !pointwise && 2 * p->out_size[2] >= NR &&
                        direct_floats(p, c, k) <= NN_GEMM_WORK_FLOATS(positions);
    for (int n = 0; n < p->batch; ++n) {
        for (int g = 0; g < groups; ++g) {
            const float *xg = x + ((size_t)n * p->in_channels + (size_t)g * c) * plane;
            const float *wg = w_packed + g * NN_GEMM_PACKED_A_FLOATS(m, k);
            const float *bg = bias ? bias + g * m : NULL;
            const size_t at = ((size_t)n * p->out_channels + (size_t)g * m) * positions;
            float *yg = y + at;
            if (direct) {
                conv_direct(p, m, c, k, xg, wg, bg, yg, work);
            } else if (pointwise) {      /* cols is the image itself: channels x positions */
                NN_FN(sgemm)(m, positions, k, 1.0f, wg, xg, plane, 1, bg, false,
                             yg, positions, 1, work);
            } else {
                const nn_gemm_source cols = {pack_im2col, xg, 0, 0, p};
                NN_FN(sgemm_source)(m, positions, k, 1.0f, wg, &cols, bg, false,
                                    yg, positions, 1, work);
            }
            epilogue_pass(epilogue, m, positions, yg,
                          epilogue && epilogue->residual ? epilogue->residual + at : NULL);
        }
    }
}
