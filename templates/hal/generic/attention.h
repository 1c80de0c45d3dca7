/* Scaled dot-product attention, one kernel for MatMul -> scale -> (+ mask) -> Softmax -> MatMul.
 * Dot products accumulate in float, the softmax sum in double. */
#ifndef NN_ATTENTION_H
#define NN_ATTENTION_H

#include "nn_hal.h"

/* Where the attention kernel finds its problem: layout[] holds the extents, then for each of
 * q [sq][d], kt [d][skv], v [skv][dv], mask [sq][skv] and y [sq][dv] four element strides
 * (outer, head, row, column); any stride may be zero (broadcast) or non-unit (a transposed
 * view), so the head split and merge around attention need no copies. */
enum {
    NN_ATT_OUTER, NN_ATT_HEADS, NN_ATT_SQ, NN_ATT_SKV, NN_ATT_D, NN_ATT_DV,
    NN_ATT_Q = 6, NN_ATT_KT = 10, NN_ATT_V = 14, NN_ATT_MASK = 18, NN_ATT_Y = 22,
    NN_ATT_LAYOUT = 26
};

/* For each of outer x heads problems:
 *   p[i][j] = softmax over j of (scale * (q[i] . kt[:, j]) + mask[i][j])
 *   y[i][c] = sum over j of p[i][j] * v[j][c]
 * mask may be NULL; scores: scratch of skv floats, plus d x skv when kt's column stride is not
 * 1 (its per-head copy with contiguous rows). */
void NN_FN(attention_f32)(const float *q, const float *kt, const float *v, const float *mask,
                          float *y, float *scores, const size_t *layout, float scale);

#endif /* NN_ATTENTION_H */
