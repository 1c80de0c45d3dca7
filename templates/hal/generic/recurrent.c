/* The default LSTM cell, portable C with the C library's expf and tanhf; see recurrent.h. */
#include "recurrent.h"

#include <math.h>

static float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

void NN_FN(lstm_cell_f32)(const float *x, const float *r, float *h, float *c, float *y,
                          size_t hidden)
{
    const size_t H = hidden;
    for (size_t j = 0; j < H; ++j) {
        const float gi = sigmoid(x[j] + r[j]);
        const float gf = sigmoid(x[2 * H + j] + r[2 * H + j]);
        const float gc = tanhf(x[3 * H + j] + r[3 * H + j]);
        c[j] = gf * c[j] + gi * gc;
        h[j] = sigmoid(x[H + j] + r[H + j]) * tanhf(c[j]);
        if (y)
            y[j] = h[j];
    }
}
