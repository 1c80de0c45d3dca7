/* The default LSTM cell for the arm64-neon target, 4 units per vector; see recurrent.h.
 * sigmoid and tanh: nn_vexp.h; the walk over the units and the padded tail: nn_lstm_driver.h. */
#include "recurrent.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "the arm64-neon kernels need an AArch64 compiler (e.g. aarch64-linux-gnu-gcc with nnbuild's toolchains/aarch64-linux-gnu.cmake)"
#endif

#include "nn_vexp.h"

typedef float32x4_t vec;

#define NN_LSTM_LANES 4

/* Units [j, j + 4) of the rows (x, r, c, h start at unit j; gates H apart). */
static inline void lstm_cell_vec(const float *x, const float *r, float *c, float *h, size_t H)
{
#define NN_GATE(k) vaddq_f32(vld1q_f32(x + (k) * H), vld1q_f32(r + (k) * H))
    const vec gi = nn_sigmoid4(NN_GATE(0)), go = nn_sigmoid4(NN_GATE(1));
    const vec gf = nn_sigmoid4(NN_GATE(2)), gc = nn_tanh4(NN_GATE(3));
#undef NN_GATE
    const vec cn = vfmaq_f32(vmulq_f32(gi, gc), gf, vld1q_f32(c));
    vst1q_f32(c, cn);
    vst1q_f32(h, vmulq_f32(go, nn_tanh4(cn)));
}

#include "nn_lstm_driver.h"
