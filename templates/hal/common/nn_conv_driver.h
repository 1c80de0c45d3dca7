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
/* Writes values one after another into NR-wide panels (next panel every NR values). */
typedef struct {
    float *at;             /* current panel row */
    int lane;
    ptrdiff_t panel_step;  /* kc * NR */
} panel_cursor;

static void advance(panel_cursor *c, int count)
{
    c->lane += count;
    if (c->lane == NR) {
        c->lane = 0;
        c->at += c->panel_step;
    }
}

static void put_zeros(panel_cursor *c, int count)
{
    while (count > 0) {
        const int run = min_int(count, NR - c->lane);
        for (int t = 0; t < run; ++t)
            c->at[c->lane + t] = 0.0f;
        advance(c, run);
        count -= run;
    }
}

static void put_run(panel_cursor *c, const float *src, int stride, int count)
{
    while (count > 0) {
        const int run = min_int(count, NR - c->lane);
        float *dst = c->at + c->lane;
        if (stride == 1) {
            for (int t = 0; t < run; ++t)
                dst[t] = src[t];
        } else {
            for (int t = 0; t < run; ++t)
                dst[t] = src[t * stride];
        }
        src += run * stride;
        advance(c, run);
        count -= run;
    }
}

/* Row k of cols is input channel c at kernel offset (kd, kh, kw); column j is output position
 * (od, oh, ow). Each row is written as runs along ow: zeros where the kernel tap falls into
 * the padding, the (strided) image row elsewhere. */
static void pack_im2col(const nn_gemm_source *src, int k0, int kc, int n0, int nc, float *panels)
{
    const nn_conv_params *p = src->geometry;
    const int *in = p->in_size, *out = p->out_size, *ks = p->kernel;
    const int *s = p->strides, *d = p->dilations, *pad = p->pads;
    const int kvol = volume(ks), plane = volume(in);
    for (int kk = 0; kk < kc; ++kk) {
        const int k = k0 + kk, c = k / kvol, r = k % kvol;
        const int kd = r / (ks[1] * ks[2]), kh = r / ks[2] % ks[1], kw = r % ks[2];
        const int d_off = kd * d[0] - pad[0], h_off = kh * d[1] - pad[1], w_off = kw * d[2] - pad[2];
        const float *xc = src->data + (size_t)c * plane;
        int lo, hi;
        valid_range(out[2], s[2], w_off, in[2], &lo, &hi);
        panel_cursor cur = {panels + (size_t)kk * NR, 0, (ptrdiff_t)kc * NR};
        int ow = n0 % out[2], row = n0 / out[2], left = nc;
        while (left > 0) {
            const int end = min_int(out[2], ow + left);
            const int id = row / out[1] * s[0] + d_off, ih = row % out[1] * s[1] + h_off;
            if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1]) {
                put_zeros(&cur, end - ow);
            } else {
                const float *xrow = xc + ((size_t)id * in[1] + ih) * in[2];
                const int a = min_int(max_int(lo, ow), end), b = min_int(max_int(hi, a), end);
                put_zeros(&cur, a - ow);
                if (b > a)
                    put_run(&cur, xrow + a * s[2] + w_off, s[2], b - a);
                put_zeros(&cur, end - b);
            }
            left -= end - ow;
            ow = 0;
            ++row;
        }
        if (nc % NR)
            put_zeros(&cur, NR - nc % NR);
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
