/* What every target's conv.c shares (see conv.h): the index helpers, the implicit im2col
 * that packs GEMM B panels straight from the image, the packing of the weights and
 * ConvTranspose (GEMM then col2im). A target's conv.c includes it right after conv.h, gemm.h
 * and nn_pool.h, keeps its own micro-kernels and paths and defines NN_FN(conv), the choice
 * between its paths (pointwise, direct, im2col GEMM). Depthwise convolution is its own family
 * (depthwise.h, nn_depthwise_driver.h). */
#ifndef NN_CONV_DRIVER_H
#define NN_CONV_DRIVER_H

#define NR NN_GEMM_NR

static int min_int(int a, int b) { return a < b ? a : b; }
static int max_int(int a, int b) { return a > b ? a : b; }

static int volume(const int size[3]) { return size[0] * size[1] * size[2]; }

/* Indices i in [0, n) with 0 <= i * stride + offset < limit: the range [*lo, *hi). */
static void valid_range(int n, int stride, int offset, int limit, int *lo, int *hi)
{
    const int first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    const int end = limit - offset <= 0 ? 0 : (limit - offset + stride - 1) / stride;
    *lo = min_int(first, n);
    *hi = max_int(min_int(end, n), *lo);
}

/* --- implicit im2col: GEMM B blocks packed straight from the image ------------------------------ */
/* Columns of the implicit im2col gathered into a row at a time (a multiple of NR). */
#define IM2COL_CHUNK (24 * NR)

/* Row k of cols is input channel c at kernel offset (kd, kh, kw); column j is output position
 * (od, oh, ow). A chunk of a row is gathered into a local row as runs along ow (zeros where the
 * kernel tap falls into the padding, the (strided) image row elsewhere), then copied into the
 * panels NR values at a time. */
static void pack_im2col(const nn_gemm_source *src, int k0, int kc, int n0, int nc, float *panels)
{
    const nn_conv_params *p = src->geometry;
    const int *in = p->in_size, *out = p->out_size, *ks = p->kernel;
    const int *s = p->strides, *d = p->dilations, *pad = p->pads;
    const int kvol = volume(ks), plane = volume(in);
    float row[IM2COL_CHUNK];
    for (int c0 = 0; c0 < nc; c0 += IM2COL_CHUNK) {
        const int width = min_int(IM2COL_CHUNK, nc - c0);
        float *chunk = panels + (size_t)c0 * kc;
        const int ow0 = (n0 + c0) % out[2], oh0 = (n0 + c0) / out[2] % out[1];
        const int od0 = (n0 + c0) / out[2] / out[1];
        int c = k0 / kvol, kd = k0 % kvol / (ks[1] * ks[2]), kh = k0 % kvol / ks[2] % ks[1];
        int kw = k0 % kvol % ks[2];       /* row kk's channel and kernel offset, in step */
        for (int kk = 0; kk < kc; ++kk) {
            const int d_off = kd * d[0] - pad[0], h_off = kh * d[1] - pad[1];
            const int w_off = kw * d[2] - pad[2];
            const float *xc = src->data + (size_t)c * plane;
            int lo, hi;
            if (s[2] == 1) {
                lo = min_int(max_int(-w_off, 0), out[2]);
                hi = max_int(min_int(in[2] - w_off, out[2]), lo);
            } else {
                valid_range(out[2], s[2], w_off, in[2], &lo, &hi);
            }
            if (++kw == ks[2]) {
                kw = 0;
                if (++kh == ks[1]) {
                    kh = 0;
                    if (++kd == ks[0]) {
                        kd = 0;
                        ++c;
                    }
                }
            }
            int ow = ow0, oh = oh0, od = od0;
            for (int at = 0; at < width; ) {
                const int end = min_int(out[2], ow + width - at);
                float *dst = row + at;             /* dst[t - ow]: output column t of this row */
                const int id = od * s[0] + d_off, ih = oh * s[1] + h_off;
                int a = end, b = end;
                if (id >= 0 && id < in[0] && ih >= 0 && ih < in[1]) {
                    a = min_int(max_int(lo, ow), end);
                    b = min_int(max_int(hi, a), end);
                    const float *xs = xc + ((size_t)id * in[1] + ih) * in[2];
                    if (s[2] == 1) {
                        for (int t = a; t < b; ++t)
                            dst[t - ow] = xs[t + w_off];
                    } else {
                        for (int t = a; t < b; ++t)
                            dst[t - ow] = xs[t * s[2] + w_off];
                    }
                }
                for (int t = ow; t < a; ++t)
                    dst[t - ow] = 0.0f;
                for (int t = b; t < end; ++t)
                    dst[t - ow] = 0.0f;
                at += end - ow;
                ow = 0;
                if (++oh == out[1]) {
                    oh = 0;
                    ++od;
                }
            }
            for (int q = 0; q < width; q += NR) {
                float *panel = chunk + (size_t)q * kc + (size_t)kk * NR;
                if (width - q >= NR) {
                    for (int j = 0; j < NR; ++j)
                        panel[j] = row[q + j];
                } else {
                    for (int j = 0; j < NR; ++j)
                        panel[j] = q + j < width ? row[q + j] : 0.0f;
                }
            }
        }
    }
}

/* --- Conv ------------------------------------------------------------------------------------- */
/* The epilogue as a pass over Y_g (m rows of `positions`) for paths without it in their
 * stores; rows split over the pool. */
typedef struct {
    const nn_conv_epilogue *e;
    int m, positions, tasks;
    float *y;
    const float *r;
} epilogue_job;

static void epilogue_task(const void *ctx, int t, void *scratch)
{
    const epilogue_job *j = ctx;
    int i0, i1;
    (void)scratch;
    nn_tile_range(j->m, j->tasks, 1, t, &i0, &i1);
    for (size_t i = (size_t)i0 * j->positions; i < (size_t)i1 * j->positions; ++i)
        j->y[i] = nn_conv_epilogue_value(j->e, j->y[i], j->r ? j->r + i : NULL);
}

static inline void epilogue_pass(const nn_conv_epilogue *e, int m, int positions,
                                 float *yg, const float *rg)
{
    if (!e || (!e->residual && !e->clamp))
        return;
    const epilogue_job j = {e, m, positions, min_int(m, nn_task_count(8.0 * m * positions)),
                            yg, rg};
    NN_FN(parallel_for)(j.tasks, epilogue_task, &j, NULL, 0);
}

void NN_FN(conv_pack_weights)(const nn_conv_params *p, const float *w, float *packed)
{
    const int m = p->out_channels / p->groups;
    const int k = p->in_channels / p->groups * volume(p->kernel);
    for (int g = 0; g < p->groups; ++g)
        NN_FN(sgemm_pack_a)(m, k, w + (size_t)g * m * k, k, 1,
                            packed + g * NN_GEMM_PACKED_A_FLOATS(m, k));
}

/* --- ConvTranspose ---------------------------------------------------------------------------- */
void NN_FN(conv_transpose_pack_weights)(const nn_conv_params *p, const float *w, float *packed)
{
    const int c = p->in_channels / p->groups;
    const int rows = p->out_channels / p->groups * volume(p->kernel);
    for (int g = 0; g < p->groups; ++g)
        NN_FN(sgemm_pack_a)(rows, c, w + (size_t)g * c * rows, 1, rows,
                            packed + g * NN_GEMM_PACKED_A_FLOATS(rows, c));
}

/* Y += cols for input rows [q0, q1): row (m, kd, kh, kw) of cols, column (input position)
 * (id, ih, iw) lands on output position (id * s - pad + kd * d, ...). */
static void col2im(const nn_conv_params *p, const float *cols, int q0, int q1, float *yg)
{
    const int *in = p->in_size, *out = p->out_size, *ks = p->kernel;
    const int *s = p->strides, *d = p->dilations, *pad = p->pads;
    const int m_count = p->out_channels / p->groups, positions = volume(out);
    const int ncols = (q1 - q0) * in[2];
    const float *crow = cols;
    for (int m = 0; m < m_count; ++m) {
        float *ym = yg + (size_t)m * positions;
        for (int kd = 0; kd < ks[0]; ++kd) {
            for (int kh = 0; kh < ks[1]; ++kh) {
                for (int kw = 0; kw < ks[2]; ++kw, crow += ncols) {
                    const int w_off = kw * d[2] - pad[2];
                    int lo, hi;
                    valid_range(in[2], s[2], w_off, out[2], &lo, &hi);
                    for (int q = q0; q < q1 && lo < hi; ++q) {
                        const int od = q / in[1] * s[0] + kd * d[0] - pad[0];
                        const int oh = q % in[1] * s[1] + kh * d[1] - pad[1];
                        if (od < 0 || od >= out[0] || oh < 0 || oh >= out[1])
                            continue;
                        float *yrow = ym + ((size_t)od * out[1] + oh) * out[2];
                        const float *src = crow + (size_t)(q - q0) * in[2];
                        for (int iw = lo; iw < hi; ++iw)
                            yrow[iw * s[2] + w_off] += src[iw];
                    }
                }
            }
        }
    }
}

void NN_FN(conv_transpose)(const nn_conv_params *p, const float *x, const float *w_packed,
                           const float *bias, float *y, int chunk_rows, float *work)
{
    const int groups = p->groups, m = p->out_channels / groups, c = p->in_channels / groups;
    const int rows = m * volume(p->kernel), plane = volume(p->in_size);
    const int positions = volume(p->out_size), in_rows = p->in_size[0] * p->in_size[1];
    float *cols = work;
    float *gemm_work = work + (size_t)rows * chunk_rows * p->in_size[2];
    for (int n = 0; n < p->batch; ++n) {
        for (int g = 0; g < groups; ++g) {
            const float *xg = x + ((size_t)n * p->in_channels + (size_t)g * c) * plane;
            const float *wg = w_packed + g * NN_GEMM_PACKED_A_FLOATS(rows, c);
            float *yg = y + ((size_t)n * p->out_channels + (size_t)g * m) * positions;
            for (int i = 0; i < m; ++i) {
                const float b = bias ? bias[g * m + i] : 0.0f;
                for (int j = 0; j < positions; ++j)
                    yg[(size_t)i * positions + j] = b;
            }
            for (int q0 = 0; q0 < in_rows; q0 += chunk_rows) {
                const int q1 = min_int(in_rows, q0 + chunk_rows), ncols = (q1 - q0) * p->in_size[2];
                NN_FN(sgemm)(rows, ncols, c, 1.0f, wg, xg + (size_t)q0 * p->in_size[2], plane, 1,
                             NULL, false, cols, ncols, 1, gemm_work);
                col2im(p, cols, q0, q1, yg);
            }
        }
    }
}

#endif /* NN_CONV_DRIVER_H */
