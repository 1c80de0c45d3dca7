/* Convolution and transposed convolution for the generic target (NCHW, float).
 *
 * Conv is a matrix product per image and group: Y_g (M x P) = W_g (M x K) * cols (K x P), with
 * M output channels per group, P output positions and K = input channels per group times the
 * kernel volume. cols is never materialised: the GEMM packs its blocks straight from the image
 * (implicit im2col), or reads the image as it is for a 1x1, stride-1, unpadded kernel. Depthwise
 * convolution (one input channel per group) is the depthwise family (depthwise.h).
 *
 * ConvTranspose is the adjoint: cols (M*kernel x P_in) = W_g^T * X_g per block of input rows,
 * then scatter-added into Y (col2im).
 *
 * 1-D and 2-D problems are 3-D ones with leading spatial sizes of 1. */
#ifndef NN_CONV_H
#define NN_CONV_H

#include "nn_hal.h"

typedef struct {
    int batch;
    int in_channels, out_channels, groups;
    int in_size[3];        /* spatial size of X: D, H, W */
    int out_size[3];       /* spatial size of Y */
    int kernel[3];
    int strides[3];
    int dilations[3];
    int pads[3];           /* padding before each spatial dim (the end padding only sizes Y) */
} nn_conv_params;

/* What a Conv's output gets before it is stored (a fused epilogue), in this order: the residual
 * (same shape as Y; NULL for none) added, then per the `clamp` flags Relu (x > 0 ? x : 0), the
 * lower bound (x < lo ? lo : x), the upper bound (x > hi ? hi : x): the float operations of
 * the separate ops Add, Relu and Clip, so the result is theirs bit for bit. */
enum { NN_CONV_RELU = 1, NN_CONV_MIN = 2, NN_CONV_MAX = 4 };
typedef struct {
    const float *residual;
    int clamp;
    float lo, hi;
} nn_conv_epilogue;

/* One element after the epilogue: v the conv's value, r the residual's or NULL. */
static inline float nn_conv_epilogue_value(const nn_conv_epilogue *e, float v, const float *r)
{
    if (r)
        v = v + *r;
    if (e->clamp & NN_CONV_RELU)
        v = v > 0.0f ? v : 0.0f;
    if (e->clamp & NN_CONV_MIN)
        v = v < e->lo ? e->lo : v;
    if (e->clamp & NN_CONV_MAX)
        v = v > e->hi ? e->hi : v;
    return v;
}

/* W [out_channels, in_channels / groups, kernel] -> per group, the packed GEMM A operand. */
void NN_FN(conv_pack_weights)(const nn_conv_params *p, const float *w, float *packed);

/* Y = epilogue(conv(X, W) + bias) (bias and epilogue may be NULL). w_packed from
 * conv_pack_weights or compile time; work holds NN_GEMM_WORK_FLOATS(output positions) floats. */
void NN_FN(conv)(const nn_conv_params *p, const float *x, const float *w_packed,
                 const float *bias, float *y, float *work, const nn_conv_epilogue *epilogue);

/* W [in_channels, out_channels / groups, kernel] -> per group, W_g^T packed as GEMM A. */
void NN_FN(conv_transpose_pack_weights)(const nn_conv_params *p, const float *w, float *packed);

/* Y = conv_transpose(X, W) + bias. Input rows (D x H of X) are handled `chunk_rows` at a time;
 * work holds (out_channels / groups) * kernel volume * chunk_rows * in_size[2] floats for the
 * columns, then NN_GEMM_WORK_FLOATS(chunk_rows * in_size[2]) for the GEMM. */
void NN_FN(conv_transpose)(const nn_conv_params *p, const float *x, const float *w_packed,
                           const float *bias, float *y, int chunk_rows, float *work);

#endif /* NN_CONV_H */
