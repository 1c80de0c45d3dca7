/* Pooling kernels: max and average over 1-D, 2-D and 3-D windows, and global pooling.
 * Tensors are NC<spatial>, contiguous; N * C independent planes are pooled one by one. */
#ifndef NN_POOL_H
#define NN_POOL_H

#include "nn_hal.h"

/* The geometry of one pooling window. Spatial extents are given as three dims; 1-D and 2-D
 * windows use leading extents of 1 (kernel, stride and dilation 1, no padding). */
typedef struct {
    size_t planes;        /* N * C */
    size_t in[3];         /* input extents */
    size_t out[3];        /* output extents (ceil_mode and auto_pad already applied) */
    size_t kernel[3];
    size_t stride[3];
    size_t dilation[3];
    size_t pad_begin[3];
    size_t pad_end[3];    /* only average pooling with count_include_pad reads these */
} nn_pool_window;

/* y = max over each window; where indices is not NULL it receives the flat position of the
 * (first) maximum in x, row-major (storage_order 0) or column-major (1) within a plane. */
void NN_FN(maxpool_f32)(const float *x, float *y, int64_t *indices, int storage_order,
                        const nn_pool_window *w);

/* y = mean over each window: a float sum in window order (d, h, w), divided by the number of
 * taps inside the input, or inside input and padding when count_include_pad. */
void NN_FN(avgpool_f32)(const float *x, float *y, bool count_include_pad,
                        const nn_pool_window *w);

/* y[p] = max / mean of the `size` elements of plane p (the mean: a double sum in 16 interleaved
 * lanes, combined in lane order). */
void NN_FN(global_maxpool_f32)(const float *x, float *y, size_t planes, size_t size);
void NN_FN(global_avgpool_f32)(const float *x, float *y, size_t planes, size_t size);

#endif /* NN_POOL_H */
