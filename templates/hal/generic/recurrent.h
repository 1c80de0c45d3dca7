/* The LSTM cell with ONNX's default activations (sigmoid, tanh, tanh), no clip, no peepholes,
 * no input_forget: one batch row of one time step. Other cells are generated loops. */
#ifndef NN_RECURRENT_H
#define NN_RECURRENT_H

#include "nn_hal.h"

/* x, r: the row's input and recurrent gate pre-activations, 4 * hidden each in ONNX's order
 * i o f c. For each unit j:  c[j] = sig(f) c[j] + sig(i) tanh(c~),  h[j] = sig(o) tanh(c[j]);
 * y (may be NULL) gets h too. */
void NN_FN(lstm_cell_f32)(const float *x, const float *r, float *h, float *c, float *y,
                          size_t hidden);

#endif /* NN_RECURRENT_H */
