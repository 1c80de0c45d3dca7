/* Sampling kernels: values read at fractional positions of an image (GridSample), with
 * nearest, linear or cubic interpolation. Tensors are NC<spatial>, contiguous. */
#ifndef NN_SAMPLING_H
#define NN_SAMPLING_H

#include "nn_hal.h"

enum { NN_SAMPLE_NEAREST = 0, NN_SAMPLE_LINEAR = 1, NN_SAMPLE_CUBIC = 2 };
enum { NN_PAD_ZEROS = 0, NN_PAD_BORDER = 1, NN_PAD_REFLECTION = 2 };

/* The geometry of one GridSample. */
typedef struct {
    size_t batch, channels;
    size_t rank;              /* spatial dims of the input: 1 to 3 */
    size_t in[3];             /* input extents, outermost first */
    size_t points;            /* output positions per plane (the grid's N-th slice / rank) */
    int mode;                 /* NN_SAMPLE_* */
    int padding;              /* NN_PAD_*: what a tap outside the input reads */
    bool align_corners;       /* -1 and 1 name the centres (true) or the edges (false) of the
                               * outer pixels */
} nn_grid_sample;

/* y[n, c, p] = x[n, c] interpolated at grid[n, p, :], whose last dim lists the normalised
 * coordinates innermost first (x, y, z). */
void NN_FN(grid_sample_f32)(const float *x, const float *grid, float *y, const nn_grid_sample *g);

#endif /* NN_SAMPLING_H */
