/* Kernels over image patches: Col2Im sums columns of patches back into an image. Tensors are
 * contiguous, channels before the spatial dims. */
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

#endif /* NN_PATCHES_H */
