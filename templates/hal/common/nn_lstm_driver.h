/* The target-independent part of a SIMD target's LSTM cell (see recurrent.h): the walk over
 * the hidden units a vector at a time, the last hidden % lanes units through the same vector
 * code from a zero-padded copy. A target's recurrent.c defines, before including this header,
 *   NN_LSTM_LANES   units per vector
 *   static void lstm_cell_vec(const float *x, const float *r, float *c, float *h, size_t H)
 *                   units [j, j + NN_LSTM_LANES) (x, r, c, h start at unit j; gates H apart). */
#ifndef NN_LSTM_DRIVER_H
#define NN_LSTM_DRIVER_H

void NN_FN(lstm_cell_f32)(const float *x, const float *r, float *h, float *c, float *y,
                          size_t hidden)
{
    enum { L = NN_LSTM_LANES };
    const size_t H = hidden;
    size_t j = 0;
    for (; j + L <= H; j += L)
        lstm_cell_vec(x + j, r + j, c + j, h + j, H);
    if (j < H) {                             /* the tail, padded to one vector */
        float xs[4 * L] = {0}, rs[4 * L] = {0}, cs[L] = {0}, hs[L];
        const size_t n = H - j;
        for (size_t u = 0; u < n; ++u) {
            for (size_t k = 0; k < 4; ++k) {
                xs[L * k + u] = x[k * H + j + u];
                rs[L * k + u] = r[k * H + j + u];
            }
            cs[u] = c[j + u];
        }
        lstm_cell_vec(xs, rs, cs, hs, L);
        for (size_t u = 0; u < n; ++u) {
            c[j + u] = cs[u];
            h[j + u] = hs[u];
        }
    }
    if (y)
        for (j = 0; j < H; ++j)
            y[j] = h[j];
}

#endif /* NN_LSTM_DRIVER_H */
