/* Integer convolution (ConvInteger, QLinearConv): 8-bit operands less their zero points,
 * products summed in int32. Tensors are NC<spatial>, contiguous. */
#ifndef NN_QCONV_H
#define NN_QCONV_H

#include "nn_hal.h"

/* The geometry of one convolution; 1-D and 2-D images use leading extents of 1. */
typedef struct {
    size_t batch, in_channels, out_channels, groups;
    size_t in[3], out[3], kernel[3], stride[3], dilation[3], pad[3];   /* pad: leading pads */
} nn_qconv;

/* An 8-bit operand: int8_t elements when is_signed, else uint8_t. */
typedef struct {
    const void *data;
    bool is_signed;
} nn_q8;

/* y[n, o] = sum over the group's channels c and taps k of (x[n, c, at k] - x_zero) *
 * (w[o, c, k] - w_zero[o * w_zero_step]); taps in the padding add nothing. */
void NN_FN(qconv_s32)(const nn_qconv *g, nn_q8 x, int32_t x_zero, nn_q8 w, const int32_t *w_zero,
                      size_t w_zero_step, int32_t *y);

#endif /* NN_QCONV_H */
