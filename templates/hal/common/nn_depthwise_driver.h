/* What every target's depthwise.c shares (see depthwise.h): index helpers, the scalar loop
 * nest and the split of the planes over the pool (nn_pool.h), and the vector path of the SIMD
 * targets. A target's depthwise.c includes it
 * right after depthwise.h and nn_pool.h. The generic one defines what this header declares:
 *   depthwise_task - one task of conv_depthwise: planes [q0, q1) of a depthwise_job.
 * A SIMD one defines NN_DEPTHWISE_VECTOR and its vector primitives first (see "the vector
 * path" below); depthwise_task is then this header's.
 *
 * The vector path: one input channel at a time, in bands of output rows. The band's input rows
 * are copied, zero-padded, into a buffer on the stack, each row split into its s phases along
 * w (phase r holds padded columns r, r + s, r + 2s ...; s = stride along w). Tap kw of output
 * ow then reads phase (kw * d) % s at ow + (kw * d) / s: VL consecutive outputs are one
 * unit-stride vector load per tap, whatever the stride. Every output sums its taps in order
 * (depth, height, width) from the bias with one FMA each, VL outputs of a row at once; the
 * common kernels (2-D 3x3 and 5x5, equal strides 1 or 2, no dilation) are unrolled with their
 * weights in registers and RB output rows per pass, so input vectors loaded once serve several
 * rows. Small 2-D planes, whose rows would fill few lanes, go along the flattened plane instead
 * (flat_plan). Rows too wide for the buffer take the scalar loop nest. A target that also
 * defines NN_DEPTHWISE_CHANNELS (x86) computes narrow rows VL channels per vector instead (the
 * channel blocks, below). Every path applies the epilogue (conv.h) to the outputs it has just
 * computed. The path and each output's operations (its taps in order, one FMA each, its lane's
 * epilogue) depend on the shape only; bands and row blocks only group outputs, so a task that
 * starts its bands at another row gives the same bits: results are the same at every thread
 * count. */
#ifndef NN_DEPTHWISE_DRIVER_H
#define NN_DEPTHWISE_DRIVER_H

static int dw_min(int a, int b) { return a < b ? a : b; }
static int dw_max(int a, int b) { return a > b ? a : b; }

static int dw_volume(const int size[3]) { return size[0] * size[1] * size[2]; }

/* The epilogue (conv.h) on y[0 .. n) in place, r the residual at the same positions or NULL:
 * the float operations of the separate ops Add, Relu and Clip, in that order. */
static void dw_epilogue(const nn_conv_epilogue *e, float *y, const float *r, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; ++i)
        y[i] = nn_conv_epilogue_value(e, y[i], r ? r + i : NULL);
}

/* The residual's part at y's offset `at` (NULL for none). */
static const float *dw_residual(const nn_conv_epilogue *e, size_t at)
{
    return e && e->residual ? e->residual + at : NULL;
}

/* Indices i in [0, n) with 0 <= i * stride + offset < limit: the range [*lo, *hi). */
static void dw_valid_range(int n, int stride, int offset, int limit, int *lo, int *hi)
{
    const int first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    const int end = limit - offset <= 0 ? 0 : (limit - offset + stride - 1) / stride;
    *lo = dw_min(first, n);
    *hi = dw_max(dw_min(end, n), *lo);
}

/* Output planes [q0, q1) (plane q: image q / out_channels, channel q % out_channels), one
 * output row at a time: the row starts as the bias, then each kernel tap adds its weight times
 * the (shifted, strided) input row. */
static void depthwise_planes(const nn_conv_params *p, const float *x, const float *w,
                             const float *bias, const nn_conv_epilogue *e, float *y, int q0,
                             int q1)
{
    const int *in = p->in_size, *out = p->out_size, *ks = p->kernel;
    const int *s = p->strides, *d = p->dilations, *pad = p->pads;
    const int multiplier = p->out_channels / p->groups, kvol = dw_volume(ks);
    const int plane = dw_volume(in), positions = dw_volume(out);
    for (int q = q0; q < q1; ++q) {
        const int n = q / p->out_channels, m = q % p->out_channels;
        const float *xc = x + ((size_t)n * p->in_channels + m / multiplier) * plane;
        const float *wm = w + (size_t)m * kvol;
        float *ym = y + ((size_t)n * p->out_channels + m) * positions;
        const float b = bias ? bias[m] : 0.0f;
        for (int od = 0; od < out[0]; ++od) {
            for (int oh = 0; oh < out[1]; ++oh) {
                float *yrow = ym + ((size_t)od * out[1] + oh) * out[2];
                for (int ow = 0; ow < out[2]; ++ow)
                    yrow[ow] = b;
                for (int kd = 0; kd < ks[0]; ++kd) {
                    const int id = od * s[0] + kd * d[0] - pad[0];
                    if (id < 0 || id >= in[0])
                        continue;
                    for (int kh = 0; kh < ks[1]; ++kh) {
                        const int ih = oh * s[1] + kh * d[1] - pad[1];
                        if (ih < 0 || ih >= in[1])
                            continue;
                        const float *xrow = xc + ((size_t)id * in[1] + ih) * in[2];
                        for (int kw = 0; kw < ks[2]; ++kw) {
                            const float wv = wm[(kd * ks[1] + kh) * ks[2] + kw];
                            const int w_off = kw * d[2] - pad[2];
                            int lo, hi;
                            dw_valid_range(out[2], s[2], w_off, in[2], &lo, &hi);
                            if (s[2] == 1) {
                                for (int ow = lo; ow < hi; ++ow)
                                    yrow[ow] += wv * xrow[ow + w_off];
                            } else {
                                for (int ow = lo; ow < hi; ++ow)
                                    yrow[ow] += wv * xrow[ow * s[2] + w_off];
                            }
                        }
                    }
                }
            }
        }
        dw_epilogue(e, ym, dw_residual(e, (size_t)q * positions), (size_t)positions);
    }
}

typedef struct {
    const nn_conv_params *p;
    const float *x, *w, *bias;
    const nn_conv_epilogue *e;   /* NULL: none */
    float *y;
    int units, tiles;            /* units: planes, channel blocks (channel_blocks) or output
                                  * rows (by_rows) */
    bool by_rows;
} depthwise_job;

/* Planes of one task of conv_depthwise: the generic target's, or the vector path's below. */
static void depthwise_task(const void *ctx, int t, void *scratch);

/* Depthwise convolution runs about a quarter of the flops per second of the GEMM that the
 * pool's least task (NN_POOL_TASK_FLOPS) is sized for (a copy of the input, few taps per
 * load): its flops count this many times when choosing the number of tasks. */
#define DW_FLOP_COST 4.0

/* Blocks of channels the channel path (NN_DEPTHWISE_CHANNELS, below) computes this problem
 * in, or 0 where it does not apply (then the units of work are planes). */
static int channel_blocks(const nn_conv_params *p);

/* Whether the vector path's bands compute this problem (one image, 2-D): its tasks then take
 * ranges of output rows, every channel, instead of ranges of planes. The layer before split
 * its output by positions (a GEMM's columns, a conv's position tiles), and the pool runs the
 * same range of tasks on the same thread (nn_pool.h): each thread then reads mostly the rows
 * it has just written, from its own L2, rather than half of them from the other core's. */
static bool rows_split(const nn_conv_params *p);

/* Planes, channel blocks or output rows split into tasks (their number from the problem's size
 * and the thread count; each output is computed the same way whichever task holds it). */
void NN_FN(conv_depthwise)(const nn_conv_params *p, const float *x, const float *w,
                           const float *bias, float *y, const nn_conv_epilogue *epilogue)
{
    const int planes = p->batch * p->out_channels, blocks = channel_blocks(p);
    const bool by_rows = !blocks && rows_split(p);
    const int units = blocks ? blocks : by_rows ? p->out_size[1] : planes;
    const double flops = 2.0 * planes * (double)dw_volume(p->out_size) * dw_volume(p->kernel);
    const int most = nn_task_count(DW_FLOP_COST * flops), threads = NN_FN(pool_threads)();
    const int tiles = nn_balanced_tasks(units, by_rows && most > threads ? threads : most);
    const nn_conv_epilogue *e = epilogue && (epilogue->residual || epilogue->clamp) ? epilogue
                                                                                    : NULL;
    const depthwise_job j = {p, x, w, bias, e, y, units, tiles, by_rows};
    NN_FN(parallel_for)(j.tiles, depthwise_task, &j, NULL, 0);
}

#ifndef NN_DEPTHWISE_VECTOR
static bool rows_split(const nn_conv_params *p)
{
    (void)p;
    return false;
}
#endif

#ifndef NN_DEPTHWISE_CHANNELS
static int channel_blocks(const nn_conv_params *p)
{
    (void)p;
    return 0;
}
#endif

#ifdef NN_DEPTHWISE_VECTOR
/* --- the vector path ---------------------------------------------------------------------------
 * The target defines, before including this header, NN_DEPTHWISE_VECTOR, `vec` (VL floats),
 * vload / vstore (unaligned), vset1 (broadcast), vfma(a, b, c) = a * b + c rounded once,
 * load_upto(x, n) (x[0 .. min(n, VL)), zeros after; reads nothing past x[n - 1]),
 * store_upto(p, v, n) (the first min(n, VL) lanes of v; writes nothing else),
 * split_even_odd(a, b, &even, &odd) (lanes 0, 2, 4 ... and 1, 3, 5 ... of a then b), vzero,
 * vadd, and vmax(a, b) / vmin(a, b) as the selects a > b ? a : b and a < b ? a : b (NaN or
 * equal lanes: b, as x86's maxps / minps). */
#define DW_INLINE static inline __attribute__((always_inline))

#include "nn_conv_vclamp.h"

/* The epilogue (conv.h) on VL outputs of one channel about to be stored (n of them real; r:
 * the residual at the same positions, or NULL): the float operations of dw_epilogue, lane by
 * lane (nn_conv_vclamp's selects), so every path gives the same bits. */
DW_INLINE vec dw_vepilogue(const nn_conv_epilogue *e, vec v, const float *r, int n)
{
    if (!e)
        return v;
    if (r)
        v = vadd(v, load_upto(r, n));
    return nn_conv_vclamp(e, v);
}

#define BAND_FLOATS 4096      /* a band's buffer, when one output row needs less */
#define BUFFER_FLOATS 16384   /* the stack buffer: at most this (else the scalar loop nest) */
#define RB 4                  /* output rows per pass of the unrolled kernels */

/* The band buffer: per kernel depth tap kd, `rows` padded rows of `rowlen` = s * R floats
 * (phase r of a row at r * R). R covers the outputs rounded up to VL plus the widest tap. */
typedef struct {
    int R, rowlen, band;      /* band: output rows per band */
    size_t slice;             /* floats per kd: rows_for(band) * rowlen */
} dw_layout;

static int rows_for(const nn_conv_params *p, int out_rows)
{
    return (out_rows - 1) * p->strides[1] + (p->kernel[1] - 1) * p->dilations[1] + 1;
}

static bool dw_plan(const nn_conv_params *p, dw_layout *L)
{
    const int s = p->strides[2], out2 = p->out_size[2];
    L->R = (out2 + VL - 1) / VL * VL + (p->kernel[2] - 1) * p->dilations[2] / s;
    L->rowlen = s * L->R;
    const size_t row_floats = (size_t)p->kernel[0] * L->rowlen;
    if (row_floats * rows_for(p, 1) > BUFFER_FLOATS)
        return false;
    int band = 1;
    while (band < p->out_size[1] && row_floats * rows_for(p, band + 1) <= BAND_FLOATS)
        ++band;
    if (band < p->out_size[1] && band >= RB)   /* several bands: whole row blocks each */
        band -= band % RB;
    L->band = band;
    L->slice = (size_t)rows_for(p, band) * L->rowlen;
    return true;
}

/* dst[j] = 0 for j in [j0, j1). */
static inline void zero_range(float *dst, int j0, int j1)
{
    for (int j = j0; j < j1; j += VL)
        store_upto(dst + j, vset1(0.0f), j1 - j);
}

/* One padded row, phase-split: dst[r * ps + j] = padded[j * s + r] = x[j * s + r - pad] for j
 * in [0, R) (zero outside the row). xrow NULL: a padding row. Nothing is written outside those
 * R floats of each phase. */
DW_INLINE void fill_row(const nn_conv_params *p, int R, int ps, const float *xrow, float *dst)
{
    const int s = p->strides[2], n = p->in_size[2], pad = p->pads[2];
    if (!xrow || s > 2) {
        for (int r = 0; r < s; ++r)
            zero_range(dst + r * ps, 0, R);
    }
    if (!xrow)
        return;
    if (s == 1) {                       /* dst[j] = x[j - pad] for j in [pad, pad + n) */
        const int lo = dw_min(pad, R), hi = dw_min(pad + n, R);
        zero_range(dst, 0, lo);
        for (int j = lo; j < hi; j += VL)
            store_upto(dst + j, load_upto(xrow + j - pad, hi - j), hi - j);
        zero_range(dst, hi, R);
    } else if (s == 2) {                /* from j0, dst[j] = x[c], dst[ps + j] = x[c + 1] */
        const int j0 = dw_min((pad + 1) / 2, R);     /* c = 2 j - pad: 0 or 1 at j0 */
        int j = j0;
        zero_range(dst, 0, j0);
        zero_range(dst + ps, 0, j0);
        if (pad % 2 == 1 && j0 - 1 < R)
            dst[ps + j0 - 1] = xrow[0]; /* the odd phase's x[0], one column earlier */
        for (; j < R && 2 * j - pad < n; j += VL) {
            const int c = 2 * j - pad;
            vec even, odd;
            split_even_odd(load_upto(xrow + c, n - c),
                           n - c > VL ? load_upto(xrow + c + VL, n - c - VL) : vset1(0.0f),
                           &even, &odd);
            store_upto(dst + j, even, R - j);
            store_upto(dst + ps + j, odd, R - j);
        }
        zero_range(dst, j, R);
        zero_range(dst + ps, j, R);
    } else {
        for (int r = 0; r < s; ++r)
            for (int j = 0; j < R; ++j) {
                const int c = j * s + r - pad;
                if (c >= 0 && c < n)
                    dst[r * ps + j] = xrow[c];
            }
    }
}

/* The band of output rows [oh0, oh0 + rows) at output depth od: for each kd, its padded rows. */
static void fill_band(const nn_conv_params *p, const dw_layout *L, const float *xc, int od,
                      int oh0, int rows, float *buf)
{
    const int *in = p->in_size;
    for (int kd = 0; kd < p->kernel[0]; ++kd) {
        const int id = od * p->strides[0] + kd * p->dilations[0] - p->pads[0];
        float *slice = buf + kd * L->slice;
        for (int i = 0; i < rows_for(p, rows); ++i) {
            const int ih = (oh0 * p->strides[1]) + i - p->pads[1];
            const bool inside = id >= 0 && id < in[0] && ih >= 0 && ih < in[1];
            fill_row(p, L->R, L->R, inside ? xc + ((size_t)id * in[1] + ih) * in[2] : NULL,
                     slice + (size_t)i * L->rowlen);
        }
    }
}

/* Output rows [r, r + NB) x VL columns from ow of the band, KH x KW taps, strides S1/S2 and
 * dilations D1/D2 all constants; wv the broadcast weights. x: the band's first row; y and res
 * (the residual, or NULL): the band's first output. Rows that several outputs read are the
 * same loads (same constant offsets): loaded once. The epilogue e on each vector stored. */
DW_INLINE void tile(const float *x, const dw_layout *L, const vec *wv, vec b,
                    const nn_conv_epilogue *e, const float *res, float *y, int out2, int r,
                    int ow, int NB, int KH, int KW, int S1, int S2, int D1, int D2)
{
    const float *x0 = x + (size_t)r * S1 * L->rowlen + ow;
    vec acc[RB];
    for (int i = 0; i < NB; ++i)
        acc[i] = b;
    for (int kh = 0; kh < KH; ++kh)
        for (int kw = 0; kw < KW; ++kw) {
            const int a = kw * D2, column = (a % S2) * L->R + a / S2;
            for (int i = 0; i < NB; ++i)
                acc[i] = vfma(wv[kh * KW + kw],
                              vload(x0 + (size_t)(i * S1 + kh * D1) * L->rowlen + column),
                              acc[i]);
        }
    for (int i = 0; i < NB; ++i) {
        const size_t at = (size_t)(r + i) * out2 + ow;
        store_upto(y + at, dw_vepilogue(e, acc[i], res ? res + at : NULL, out2 - ow), out2 - ow);
    }
}

/* `rows` output rows of one plane (y, res: the band's first) from the band buffer x. */
DW_INLINE void band_fixed(const float *x, const dw_layout *L, const float *w, float bias,
                          const nn_conv_epilogue *e, const float *res, float *y, int out2,
                          int rows, int KH, int KW, int S1, int S2, int D1, int D2)
{
    vec wv[25];
    for (int t = 0; t < KH * KW; ++t)
        wv[t] = vset1(w[t]);
    const vec b = vset1(bias);
    int r = 0;
    for (; r + RB <= rows; r += RB)
        for (int ow = 0; ow < out2; ow += VL)
            tile(x, L, wv, b, e, res, y, out2, r, ow, RB, KH, KW, S1, S2, D1, D2);
    for (; r < rows; ++r)
        for (int ow = 0; ow < out2; ow += VL)
            tile(x, L, wv, b, e, res, y, out2, r, ow, 1, KH, KW, S1, S2, D1, D2);
}

/* Any kernel, strides and dilations: one output vector at a time, taps from memory. */
static void band_any(const nn_conv_params *p, const float *x, const dw_layout *L,
                     const float *w, float bias, const nn_conv_epilogue *e, const float *res,
                     float *y, int rows)
{
    const int *ks = p->kernel, *s = p->strides, *d = p->dilations, out2 = p->out_size[2];
    for (int r = 0; r < rows; ++r)
        for (int ow = 0; ow < out2; ow += VL) {
            vec acc = vset1(bias);
            const float *wt = w;
            for (int kd = 0; kd < ks[0]; ++kd)
                for (int kh = 0; kh < ks[1]; ++kh) {
                    const float *xr = x + kd * L->slice + (size_t)(r * s[1] + kh * d[1]) * L->rowlen;
                    for (int kw = 0; kw < ks[2]; ++kw) {
                        const int a = kw * d[2];
                        acc = vfma(vset1(*wt++), vload(xr + (a % s[2]) * L->R + a / s[2] + ow),
                                   acc);
                    }
                }
            const size_t at = (size_t)r * out2 + ow;
            store_upto(y + at, dw_vepilogue(e, acc, res ? res + at : NULL, out2 - ow), out2 - ow);
        }
}

/* Which unrolled kernel fits: 3 or 5 for a 2-D k x k kernel with equal strides 1 or 2 and no
 * dilation, else 0 (band_any). */
static int fixed_kernel(const nn_conv_params *p)
{
    const int *ks = p->kernel, *s = p->strides, *d = p->dilations;
    const bool plain = ks[0] == 1 && ks[1] == ks[2] && (ks[1] == 3 || ks[1] == 5) &&
                       s[1] == s[2] && (s[1] == 1 || s[1] == 2) && d[1] == 1 && d[2] == 1;
    return plain ? ks[1] : 0;
}

static void run_band(const nn_conv_params *p, int kind, const float *x, const dw_layout *L,
                     const float *w, float bias, const nn_conv_epilogue *e, const float *res,
                     float *y, int rows)
{
    const int out2 = p->out_size[2], s = p->strides[2];
    if (kind == 3 && s == 1)
        band_fixed(x, L, w, bias, e, res, y, out2, rows, 3, 3, 1, 1, 1, 1);
    else if (kind == 3)
        band_fixed(x, L, w, bias, e, res, y, out2, rows, 3, 3, 2, 2, 1, 1);
    else if (kind == 5 && s == 1)
        band_fixed(x, L, w, bias, e, res, y, out2, rows, 5, 5, 1, 1, 1, 1);
    else if (kind == 5)
        band_fixed(x, L, w, bias, e, res, y, out2, rows, 5, 5, 2, 2, 1, 1);
    else
        band_any(p, x, L, w, bias, e, res, y, rows);
}

/* Output rows [r0, r1) of planes [q0, q1) (plane q: image q / out_channels, channel q %
 * out_channels), in bands from r0: the planes of one input channel share each band's copy. */
static void depthwise_bands(const nn_conv_params *p, const dw_layout *L, const float *x,
                            const float *w, const float *bias, const nn_conv_epilogue *e,
                            float *y, int q0, int q1, int r0, int r1)
{
    float buf[BUFFER_FLOATS];
    const int *out = p->out_size, kind = fixed_kernel(p);
    const int multiplier = p->out_channels / p->groups, kvol = dw_volume(p->kernel);
    const int in_plane = dw_volume(p->in_size), positions = dw_volume(out);
    for (int q = q0; q < q1;) {
        const int n = q / p->out_channels, m0 = q % p->out_channels;
        const int m1 = dw_min(m0 + q1 - q, (m0 / multiplier + 1) * multiplier);
        const float *xc = x + ((size_t)n * p->in_channels + m0 / multiplier) * in_plane;
        for (int od = 0; od < out[0]; ++od)
            for (int oh0 = r0; oh0 < r1; oh0 += L->band) {
                const int rows = dw_min(L->band, r1 - oh0);
                fill_band(p, L, xc, od, oh0, rows, buf);
                for (int m = m0; m < m1; ++m) {
                    const size_t at = ((size_t)n * p->out_channels + m) * positions +
                                      ((size_t)od * out[1] + oh0) * out[2];
                    run_band(p, kind, buf, L, w + (size_t)m * kvol, bias ? bias[m] : 0.0f, e,
                             dw_residual(e, at), y + at, rows);
                }
            }
        q += m1 - m0;
    }
}

/* --- small 2-D planes: the whole channel at once, outputs along a flattened plane ----------
 * Rows narrower than a few vectors waste most lanes (a 7-wide row fills 7 of 16). Here the
 * padded channel is split into its stride phases along h and w too: phase plane (rh, rw) row
 * i, column j holds padded[i * s1 + rh][j * s2 + rw], rows of Rf = out2 + reach floats. Output
 * (oh, ow) then reads, for every tap, plane position oh * Rf + ow plus a fixed offset: the
 * outputs are one run of out1 * Rf "virtual" positions (the Rf - out2 past each row computed and
 * dropped), NV vectors at a time into `virt`, then copied out row by row. */
#define NV 4
#define FLAT_TAPS 25

typedef struct {
    int Rf, Hf;               /* columns and rows of a phase plane */
    int vectors;              /* virtual outputs / VL, rounded up to NV */
    int taps, off[FLAT_TAPS]; /* where tap t reads, from the virtual position */
    size_t plane, input;      /* floats of a phase plane; of the input part of the buffer */
} flat_layout;

static bool flat_plan(const nn_conv_params *p, const dw_layout *L, flat_layout *F)
{
    const int *out = p->out_size, *ks = p->kernel, *s = p->strides, *d = p->dilations;
    F->taps = dw_volume(ks);
    if (p->in_size[0] != 1 || out[0] != 1 || ks[0] != 1 || F->taps > FLAT_TAPS)
        return false;
    F->Rf = out[2] + (ks[2] - 1) * d[2] / s[2];
    F->Hf = out[1] + (ks[1] - 1) * d[1] / s[1];
    F->plane = (size_t)F->Hf * F->Rf;
    const int virtual_vectors = (out[1] * F->Rf + VL - 1) / VL;
    F->vectors = (virtual_vectors + NV - 1) / NV * NV;
    int reach = 0;
    for (int kh = 0; kh < ks[1]; ++kh)
        for (int kw = 0; kw < ks[2]; ++kw) {
            const int a = kh * d[1], b = kw * d[2];
            const int t = kh * ks[2] + kw;
            F->off[t] = (int)(((a % s[1]) * s[2] + b % s[2]) * F->plane) + a / s[1] * F->Rf + b / s[2];
            reach = dw_max(reach, F->off[t]);
        }
    F->input = (size_t)reach + (size_t)F->vectors * VL;
    const size_t floats = F->input + (size_t)F->vectors * VL;
    const int row_vectors = out[1] * ((out[2] + VL - 1) / VL);   /* what the bands compute */
    return floats <= BUFFER_FLOATS && 4 * virtual_vectors <= 3 * row_vectors && L->band >= out[1];
}

/* The channel's phase planes (buffer zero past them, as far as the vectors read). */
static void fill_flat(const nn_conv_params *p, const flat_layout *F, const float *xc, float *buf)
{
    const int *in = p->in_size, s1 = p->strides[1], s2 = p->strides[2];
    for (int rh = 0; rh < s1; ++rh)
        for (int i = 0; i < F->Hf; ++i) {
            const int ih = i * s1 + rh - p->pads[1];
            float *dst = buf + (size_t)rh * s2 * F->plane + (size_t)i * F->Rf;
            fill_row(p, F->Rf, (int)F->plane, ih >= 0 && ih < in[1] ? xc + (size_t)ih * in[2] : NULL,
                     dst);
        }
    for (size_t t = (size_t)s1 * s2 * F->plane; t < F->input; t += VL)
        store_upto(buf + t, vset1(0.0f), (int)dw_min(VL, (int)(F->input - t)));
}

/* One output plane from the phase planes: NV vectors of virtual outputs per pass, each summing
 * the taps in order from the bias; the epilogue e (residual res) as its rows are copied out. */
static void plane_flat(const nn_conv_params *p, const flat_layout *F, const float *buf,
                       float *virt, const float *w, float bias, const nn_conv_epilogue *e,
                       const float *res, float *y)
{
    const int *out = p->out_size;
    for (int v = 0; v < F->vectors * VL; v += NV * VL) {
        vec acc[NV];
        for (int i = 0; i < NV; ++i)
            acc[i] = vset1(bias);
        for (int t = 0; t < F->taps; ++t) {
            const vec wt = vset1(w[t]);
            const float *x = buf + F->off[t] + v;
            for (int i = 0; i < NV; ++i)
                acc[i] = vfma(wt, vload(x + i * VL), acc[i]);
        }
        for (int i = 0; i < NV; ++i)
            vstore(virt + v + i * VL, acc[i]);
    }
    for (int oh = 0; oh < out[1]; ++oh)
        for (int ow = 0; ow < out[2]; ow += VL) {
            const size_t at = (size_t)oh * out[2] + ow;
            const int n = out[2] - ow;
            const vec v = load_upto(virt + (size_t)oh * F->Rf + ow, n);
            store_upto(y + at, dw_vepilogue(e, v, res ? res + at : NULL, n), n);
        }
}

static void depthwise_flat(const nn_conv_params *p, const flat_layout *F, const float *x,
                           const float *w, const float *bias, const nn_conv_epilogue *e,
                           float *y, int q0, int q1)
{
    float buf[BUFFER_FLOATS];
    const int multiplier = p->out_channels / p->groups, kvol = dw_volume(p->kernel);
    const int in_plane = dw_volume(p->in_size), positions = dw_volume(p->out_size);
    for (int q = q0; q < q1; ++q) {
        const int n = q / p->out_channels, m = q % p->out_channels;
        if (q == q0 || m % multiplier == 0)
            fill_flat(p, F, x + ((size_t)n * p->in_channels + m / multiplier) * in_plane, buf);
        const size_t at = (size_t)q * positions;
        plane_flat(p, F, buf, buf + F->input, w + (size_t)m * kvol, bias ? bias[m] : 0.0f, e,
                   dw_residual(e, at), y + at);
    }
}

static bool rows_split(const nn_conv_params *p)
{
    dw_layout L;
    flat_layout F;
    return p->batch == 1 && p->in_size[0] == 1 && p->out_size[0] == 1 && dw_plan(p, &L) &&
           !flat_plan(p, &L, &F);
}

#ifdef NN_DEPTHWISE_CHANNELS
/* --- channel blocks: one vector holds VL channels at one position -------------------------------
 * The target defines, besides the above, NN_DEPTHWISE_CHANNELS and transpose_vl(r) (the
 * VL x VL floats r[0 .. VL) transposed in place). Output rows narrower
 * than two vectors (7 and 14 wide at 16 lanes) fill few lanes along w, and the copies and
 * phase splits around them cost more than their taps. For them (one output per channel, at
 * least VL / 2 channels, a 2-D or 1-D kernel; strided rows only below CH_STRIDED_ROW), VL
 * channels (a block; the last one of an image may hold fewer, its missing lanes read the
 * block's last channel again and are never stored) are transposed, a band of rows at a time, into a zero-padded buffer of (row, column,
 * channel) vectors. An output position's taps are then one vector load each at fixed offsets,
 * VL channels at once, and any plane shape fills every lane: the outputs are taken VL flat
 * positions of the band at a time (across row ends), each summing its taps in order from the
 * bias with one FMA each (the same operations as the paths above), transposed back to VL
 * positions of each channel, the epilogue applied and stored. Bands and blocks depend on the
 * shape only. */
#define CH_BUFFER_FLOATS 16384   /* a band's input: 64 KiB on the stack */
#define CH_TAPS 49
#define CH_GROUP 8               /* outputs whose taps are summed together */
#define CH_POSITIONS 1024        /* most outputs per band */
#define CH_INPUTS 2048           /* most input positions per band */
/* Strided rows of at least this many outputs take the bands: a stride-s block transposes s^2
 * inputs per output, which costs about what the bands' idle lanes do (16 lanes, 1 thread, user
 * CPU, 56x56 -> 28x28 3x3/2: 32 and 48 channels, full blocks, 2-4% faster in bands; 24, a
 * half-empty last block, 24.5 -> 18 us, 5x5/2 36 -> 32 us; 32 -> 16: equal). */
#define CH_STRIDED_ROW 16

typedef struct {
    int Wb;                      /* padded columns the buffer holds (those read and the input's) */
    int band;                    /* output rows per band */
    int taps;                    /* kernel taps (at most CH_TAPS) */
} ch_layout;

/* Whether channel blocks compute this problem, and their layout. */
static int ch_wp(const nn_conv_params *p)
{
    return (p->out_size[2] - 1) * p->strides[2] + (p->kernel[2] - 1) * p->dilations[2] + 1;
}

static bool ch_plan(const nn_conv_params *p, ch_layout *C)
{
    const int *out = p->out_size, *ks = p->kernel;
    C->taps = dw_volume(ks);
    if (p->out_channels != p->groups || p->in_size[0] != 1 || out[0] != 1 || ks[0] != 1 ||
        C->taps > CH_TAPS || p->groups < VL / 2 || out[2] >= 2 * VL ||
        (p->strides[2] > 1 && out[2] >= CH_STRIDED_ROW))
        return false;
    const int in2 = p->in_size[2], spare = (VL + in2 - 1) / in2 + 1;   /* ch_fill's zeros */
    C->Wb = dw_max(ch_wp(p), p->pads[2] + in2);
    const size_t row = (size_t)C->Wb * VL;
    if (row * (rows_for(p, 1) + spare) > CH_BUFFER_FLOATS || out[2] > CH_POSITIONS ||
        rows_for(p, 1) * in2 > CH_INPUTS)
        return false;
    int band = 1;
    while (band < out[1] && row * (rows_for(p, band + 1) + spare) <= CH_BUFFER_FLOATS &&
           (band + 1) * out[2] <= CH_POSITIONS && rows_for(p, band + 1) * in2 <= CH_INPUTS)
        ++band;
    C->band = band;
    return true;
}

/* The channel path's units of work: (block, band) pairs, a block's bands consecutive. */
static int channel_blocks(const nn_conv_params *p)
{
    ch_layout C;
    if (!ch_plan(p, &C))
        return 0;
    const int bands = (p->out_size[1] + C.band - 1) / C.band;
    return p->batch * ((p->out_channels + VL - 1) / VL) * bands;
}

/* The input rows of output rows [oh0, oh0 + rows), transposed: buf[(i * Wb + j) * VL + c] =
 * padded row i, column j of channel xc[c]. The band's input rows are one run of each plane,
 * taken VL positions at a time (across row ends; input position f of the run goes to
 * buf + inpos[f] past its first row); the run's last vectors, past its end, are zeros: they
 * land in bottom padding rows, rows the band does not read or the CH_SLACK past the buffer. */
static void ch_fill(const nn_conv_params *p, const ch_layout *C, const float *const *xc,
                    const int *inpos, int oh0, int rows, float *buf)
{
    const int in1 = p->in_size[1], in2 = p->in_size[2], pl = p->pads[2], Wb = C->Wb;
    const int ih0 = oh0 * p->strides[1] - p->pads[1], n_rows = rows_for(p, rows);
    const int r0 = dw_max(ih0, 0), r1 = dw_min(ih0 + n_rows, in1);
    for (int i = 0; i < n_rows; ++i) {
        float *dst = buf + (size_t)i * Wb * VL;
        const bool inside = ih0 + i >= 0 && ih0 + i < in1;
        for (int j = 0; j < Wb; ++j)
            if (!inside || j < pl || j >= pl + in2)
                vstore(dst + (size_t)j * VL, vzero());
    }
    if (r0 >= r1)
        return;
    float *base = buf + (size_t)(r0 - ih0) * Wb * VL;
    const int total = (r1 - r0) * in2;
    for (int f = 0; f < total; f += VL) {
        const int n = dw_min(VL, total - f);
        vec r[VL];
        for (int c = 0; c < VL; ++c)
            r[c] = load_upto(xc[c] + (size_t)r0 * in2 + f, n);
        transpose_vl(r);
        for (int j = 0; j < VL; ++j)
            vstore(base + inpos[f + j], r[j]);
    }
}

/* inpos of ch_fill: input position f of a band's run (row f / in2, column f % in2 of its
 * first row) in the buffer, for the band's input and VL past it. */
static void ch_inputs(const nn_conv_params *p, const ch_layout *C, int *inpos)
{
    const int in2 = p->in_size[2];
    for (int f = 0; f < rows_for(p, C->band) * in2 + VL; ++f)
        inpos[f] = (f / in2 * C->Wb + p->pads[2] + f % in2) * VL;
}

/* CH_GROUP outputs, each reading its first tap at src[i]: bias plus the KH x KW taps in
 * order, kernel rows rs floats apart, columns DW vectors apart. */
DW_INLINE void ch_group(const float *const *src, const vec *wv, vec bias, vec *out, int rs,
                        int KH, int KW, int DW)
{
    vec a[CH_GROUP];
    const float *x[CH_GROUP];
    for (int i = 0; i < CH_GROUP; ++i)
        a[i] = bias, x[i] = src[i];
    for (int kh = 0; kh < KH; ++kh, wv += KW) {
        for (int kw = 0; kw < KW; ++kw) {
            const vec wt = wv[kw];
            for (int i = 0; i < CH_GROUP; ++i)
                a[i] = vfma(wt, vload(x[i] + kw * DW * VL), a[i]);
        }
        for (int i = 0; i < CH_GROUP; ++i)
            x[i] += rs;
    }
    for (int i = 0; i < CH_GROUP; ++i)
        out[i] = a[i];
}

/* Output rows [oh0, oh0 + rows) of the block's nc channels (y + at[c]) from the buffer; output
 * k of the band reads its first tap at buf + pos[k] (pos: ch_positions). */
static void ch_band(const nn_conv_params *p, int wb, const float *buf, const int *pos,
                    const vec *wv, vec bias, const nn_conv_epilogue *e, float *y,
                    const size_t *at, int nc, int oh0, int rows)
{
    const int *ks = p->kernel, *d = p->dilations, out2 = p->out_size[2];
    const int rs = d[1] * wb * VL, count = rows * out2;
    const bool k3 = ks[1] == 3 && ks[2] == 3 && d[2] == 1;
    const size_t first = (size_t)oh0 * out2;
    for (int q = 0; q < count; q += VL) {
        vec acc[VL];
        for (int g = 0; g < VL; g += CH_GROUP) {
            const float *src[CH_GROUP];
            for (int i = 0; i < CH_GROUP; ++i)
                src[i] = buf + pos[q + g + i];
            if (k3)
                ch_group(src, wv, bias, acc + g, rs, 3, 3, 1);
            else
                ch_group(src, wv, bias, acc + g, rs, ks[1], ks[2], d[2]);
        }
        transpose_vl(acc);
        const int n = dw_min(VL, count - q);
        for (int c = 0; c < nc; ++c) {
            const float *r = e && e->residual ? e->residual + at[c] + first + q : NULL;
            store_upto(y + at[c] + first + q, dw_vepilogue(e, acc[c], r, n), n);
        }
    }
}

/* Where output k of a band reads its first tap in the buffer, for k in [0, band * out2) and
 * past it, to the next multiple of VL, the last one again (outputs computed and dropped). */
static void ch_positions(const nn_conv_params *p, const ch_layout *C, int *pos)
{
    const int out2 = p->out_size[2], count = C->band * out2;
    for (int k = 0; k < (count + VL - 1) / VL * VL; ++k) {
        const int at = dw_min(k, count - 1);
        pos[k] = (at / out2 * p->strides[1] * C->Wb + at % out2 * p->strides[2]) * VL;
    }
}

/* Units [u0, u1) of conv_depthwise (channel_blocks: unit u is band u % bands of block
 * u / bands, block b of image b / blocks per image). */
static void depthwise_channels(const depthwise_job *j, int u0, int u1)
{
    const nn_conv_params *p = j->p;
    float buf[CH_BUFFER_FLOATS] __attribute__((aligned(64)));
    float wb[CH_TAPS * VL + VL] __attribute__((aligned(64)));
    int pos[CH_POSITIONS + VL], inpos[CH_INPUTS + VL];
    vec wv[CH_TAPS];
    ch_layout C;
    ch_plan(p, &C);
    ch_positions(p, &C, pos);
    ch_inputs(p, &C, inpos);
    const int per_image = (p->out_channels + VL - 1) / VL, kvol = C.taps;
    const int bands = (p->out_size[1] + C.band - 1) / C.band;
    const int in_plane = dw_volume(p->in_size), positions = dw_volume(p->out_size);
    const float *xc[VL];
    size_t at[VL];
    vec bias = vzero();
    int nc = 0;
    for (int u = u0; u < u1; ++u) {
        const int b = u / bands, oh0 = u % bands * C.band;
        const int rows = dw_min(C.band, p->out_size[1] - oh0);
        if (u > u0 && oh0 > 0) {     /* the block's weights and planes as for its last band */
            ch_fill(p, &C, xc, inpos, oh0, rows, buf);
            ch_band(p, C.Wb, buf, pos, wv, bias, j->e, j->y, at, nc, oh0, rows);
            continue;
        }
        const int n = b / per_image, c0 = b % per_image * VL;
        nc = dw_min(VL, p->out_channels - c0);
        for (int c = 0; c < VL; ++c) {
            const int m = c0 + dw_min(c, nc - 1);
            xc[c] = j->x + ((size_t)n * p->in_channels + m) * in_plane;
            at[c] = ((size_t)n * p->out_channels + m) * positions;
            for (int t = 0; t < kvol; ++t)
                wb[t * VL + c] = j->w[(size_t)m * kvol + t];
            wb[kvol * VL + c] = j->bias ? j->bias[m] : 0.0f;
        }
        for (int t = 0; t < kvol; ++t)
            wv[t] = vload(wb + t * VL);
        bias = vload(wb + kvol * VL);
        ch_fill(p, &C, xc, inpos, oh0, rows, buf);
        ch_band(p, C.Wb, buf, pos, wv, bias, j->e, j->y, at, nc, oh0, rows);
    }
}
#endif /* NN_DEPTHWISE_CHANNELS */

/* One task of conv_depthwise (nn_depthwise_driver.h). */
static void depthwise_task(const void *ctx, int t, void *scratch)
{
    const depthwise_job *j = ctx;
    dw_layout L;
    flat_layout F;
    int q0, q1;
    (void)scratch;
    nn_tile_range(j->units, j->tiles, 1, t, &q0, &q1);
    if (q0 >= q1)
        return;
    if (j->by_rows) {
        dw_plan(j->p, &L);
        depthwise_bands(j->p, &L, j->x, j->w, j->bias, j->e, j->y, 0, j->p->out_channels, q0,
                        q1);
        return;
    }
#ifdef NN_DEPTHWISE_CHANNELS
    if (channel_blocks(j->p)) {
        depthwise_channels(j, q0, q1);
        return;
    }
#endif
    if (dw_plan(j->p, &L) && flat_plan(j->p, &L, &F))
        depthwise_flat(j->p, &F, j->x, j->w, j->bias, j->e, j->y, q0, q1);
    else if (dw_plan(j->p, &L))
        depthwise_bands(j->p, &L, j->x, j->w, j->bias, j->e, j->y, q0, q1, 0, j->p->out_size[1]);
    else
        depthwise_planes(j->p, j->x, j->w, j->bias, j->e, j->y, q0, q1);
}
#endif /* NN_DEPTHWISE_VECTOR */

#endif /* NN_DEPTHWISE_DRIVER_H */
