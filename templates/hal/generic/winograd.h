/* Winograd convolution F(m x m, 3 x 3) for 3x3, stride-1, undilated 2-D Conv (NCHW, float).
 *
 * The output is cut into m x m tiles (m = 2 or 4; alpha = m + 2 is the input tile's side). With
 * the transforms B^T (alpha x alpha), G (alpha x 3) and A^T (m x alpha) of Lavin & Gray:
 *   U = G w G^T    per output and input channel: done at compile time (nnbuild/ops/winograd.py),
 *                  stored as alpha^2 * groups GEMM B operands U^T (in x out channels of one
 *                  group, element xi = (a, b) of the transformed kernel) in the packed panel
 *                  layout of nn_gemm.h, index xi * groups + g;
 *   V = B^T d B    per input channel and tile d (alpha x alpha, of the zero-padded image),
 *                  written as V^T (tiles x in channels) in the packed A layout of nn_gemm.h;
 *   M[xi]^T = V[xi]^T U[xi]^T   one GEMM (sgemm_packed) per element xi and group, over all
 *                  tiles of a chunk;
 *   Y = A^T M A + bias    per output channel and tile, cut at the image's edge.
 * Tiles (in the order image, tile row, tile column) are walked in chunks of `chunk_tiles` (a
 * multiple of NN_GEMM_MR where there is more than one chunk, so V^T fills whole panels), and V
 * and M of a chunk stay in cache. Split over the pool either per phase (transforms over
 * channels, GEMMs over (xi, group)) or, with `private_chunks`, chunk by chunk: one thread runs
 * a chunk's three phases in its own scratch (V and M stay in its core's caches). Every value is
 * computed the same way at any thread count and in any chunk. */
#ifndef NN_WINOGRAD_H
#define NN_WINOGRAD_H

#include "conv.h"     /* nn_conv_epilogue */
#include "nn_hal.h"

typedef struct {
    int batch, in_channels, out_channels, groups;
    int in_h, in_w, out_h, out_w;
    int pad_h, pad_w;      /* padding before the image (the end padding only sizes Y) */
    int m;                 /* output tile side: 2 or 4 */
    int tiles_h, tiles_w;  /* ceil(out_h / m), ceil(out_w / m) */
    int chunk_tiles;       /* tiles per chunk (the last may hold fewer) */
    int private_chunks;    /* 1: each chunk a task of its own (fits NN_POOL_SCRATCH_BYTES) */
} nn_winograd_params;

/* Y = epilogue(conv(X, W) + bias) (bias and epilogue may be NULL; the epilogue is conv.h's,
 * applied as the output transform stores), u_packed the transformed, packed weights. `work`
 * holds, with T = chunk_tiles rounded up to NN_GEMM_MR: V (alpha^2 elements of
 * in_channels x T floats each, rounded up to 16, plus 16), M (the same with out_channels), then
 * the larger of the input transform's scratch (in_w rounded up to 16, then alpha x (tiles_w * m
 * + 2 + NN_GEMM_MR) rounded up to 16) and the output transform's (tiles_w * m + 2 rounded up to
 * 16, then alpha^2 * tiles_w); nnbuild/ops/winograd.py work_floats says the same. */
void NN_FN(winograd_conv)(const nn_winograd_params *p, const float *x, const float *u_packed,
                          const float *bias, float *y, float *work,
                          const nn_conv_epilogue *epilogue);

#endif /* NN_WINOGRAD_H */
