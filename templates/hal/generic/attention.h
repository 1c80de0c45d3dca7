/* Scaled dot-product attention, one kernel for MatMul -> scale -> (+ mask) -> Softmax -> MatMul.
 * Dot products accumulate in float, the softmax sum in double. */
#ifndef NN_ATTENTION_H
#define NN_ATTENTION_H

#include "nn_hal.h"

/* For each of outer x heads problems (consecutive in q, kt, v and y):
 *   p[i][j] = softmax over j of (scale * (q[i] . kt[:, j]) + mask(o, h, i, j))
 *   y[i][c] = sum over j of p[i][j] * v[j][c]
 * q is [sq][d], kt [d][skv], v [skv][dv], y [sq][dv]. mask may be NULL; element (o, h, i, j)
 * is mask[o * ms_o + h * ms_h + i * ms_i + j * ms_j] (a zero stride broadcasts).
 * scores: skv floats of scratch. */
void NN_FN(attention_f32)(const float *q, const float *kt, const float *v, const float *mask,
                          float *y, float *scores, size_t outer, size_t heads, size_t sq,
                          size_t skv, size_t d, size_t dv, float scale, size_t ms_o,
                          size_t ms_h, size_t ms_i, size_t ms_j);

#endif /* NN_ATTENTION_H */
