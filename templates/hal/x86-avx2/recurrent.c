/* The default LSTM cell for the x86 targets (AVX2 + FMA), 8 units per vector; see recurrent.h.
 * sigmoid and tanh: nn_vexp.h; the walk over the units and the padded tail: nn_lstm_driver.h. */
#include "recurrent.h"

#include "nn_vexp.h"

#define NN_LSTM_LANES 8

/* Units [j, j + 8) of the rows (x, r, c, h start at unit j; gates H apart). */
static inline void lstm_cell_vec(const float *x, const float *r, float *c, float *h, size_t H)
{
#define NN_GATE(k) _mm256_add_ps(_mm256_loadu_ps(x + (k) * H), _mm256_loadu_ps(r + (k) * H))
    const __m256 gi = nn_sigmoid8(NN_GATE(0)), go = nn_sigmoid8(NN_GATE(1));
    const __m256 gf = nn_sigmoid8(NN_GATE(2)), gc = nn_tanh8(NN_GATE(3));
#undef NN_GATE
    const __m256 cn = _mm256_fmadd_ps(gf, _mm256_loadu_ps(c), _mm256_mul_ps(gi, gc));
    _mm256_storeu_ps(c, cn);
    _mm256_storeu_ps(h, _mm256_mul_ps(go, nn_tanh8(cn)));
}

#include "nn_lstm_driver.h"
