/* Kernels over image patches: Col2Im sums columns of patches back into an image; DeformConv
 * gathers patches at learned fractional offsets and convolves them. Tensors are contiguous,
 * channels before the spatial dims. */
#ifndef NN_PATCHES_H
#define NN_PATCHES_H

#include "nn_hal.h"

/* The geometry of one Col2Im over `rank` spatial dims. The caller sets dilations, strides and
 * the leading pads; col2im_plan fills the rest from the run-time shape values. */
typedef struct {
    size_t rank;
    int64_t dilations[NN_MAX_RANK], strides[NN_MAX_RANK];
    int64_t pads[2 * NN_MAX_RANK];        /* begin values, then end values */
    int64_t image[NN_MAX_RANK], block[NN_MAX_RANK];
    int64_t blocks[NN_MAX_RANK];          /* block positions along each dim */
    int64_t block_size, image_size;       /* products of block[] and image[] */
} nn_col2im;

/* Copies the image and block shapes into g and works out the block positions; returns how many
 * positions there are in all (L), or -1 when a size is not positive or a block does not fit. */
int64_t NN_FN(col2im_plan)(nn_col2im *g, const int64_t *image, const int64_t *block);

/* y[p] (planes of image_size) = the sum of every column value of x[p] ([block_size, L] per
 * plane, block offsets row-major) at the image position it was taken from; positions in the
 * padding are dropped. */
void NN_FN(col2im_f32)(const float *x, float *y, size_t planes, const nn_col2im *g);

/* The geometry of one 2-D DeformConv. */
typedef struct {
    size_t batch, channels, height, width;          /* X */
    size_t out_channels, out_height, out_width;     /* Y */
    size_t kernel[2], stride[2], dilation[2], pad[2];   /* pad: leading pads (top, left) */
    size_t group, offset_group;
} nn_deform_conv;

/* y[n, o] = bias[o] + sum over the group's input channels c and kernel taps k of
 * w[o, c, k] * mask[n, g, k] * x[n, c] sampled bilinearly (zero outside the image) at
 * (oh * stride - pad + kh * dilation + dh, ow * stride - pad + kw * dilation + dw), where
 * (dh, dw) = offset[n, g, k] and g is c's offset group. bias and mask may be NULL (0 and 1).
 * columns: scratch of (channels / group) * kernel[0] * kernel[1] * out_height * out_width. */
void NN_FN(deform_conv_f32)(const float *x, const float *w, const float *offset,
                            const float *bias, const float *mask, float *y, float *columns,
                            const nn_deform_conv *g);

#endif /* NN_PATCHES_H */
