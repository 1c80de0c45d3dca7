/* Depthwise convolution (NCHW, float): Conv with one input channel per group
 * (in_channels == groups), out_channels / groups outputs per channel (the multiplier). Each
 * output plane is a direct loop nest over its input channel: every output starts as the bias
 * and adds its kernel taps in order (depth, height, width), so the result depends on the
 * operands only. 1-D and 2-D problems are 3-D ones with leading spatial sizes of 1. */
#ifndef NN_DEPTHWISE_H
#define NN_DEPTHWISE_H

#include "conv.h"    /* nn_conv_params */

/* Y = epilogue(conv(X, W) + bias) (bias and epilogue may be NULL; nn_conv_epilogue: conv.h)
 * for in_channels == groups, W in its ONNX layout [out_channels, 1, kernel]. */
void NN_FN(conv_depthwise)(const nn_conv_params *p, const float *x, const float *w,
                           const float *bias, float *y, const nn_conv_epilogue *epilogue);

#endif /* NN_DEPTHWISE_H */
