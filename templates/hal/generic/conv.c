/* Convolution and transposed convolution for the generic target; see conv.h. */
#include "conv.h"

#include "gemm.h"
#include "nn_pool.h"
#include "nn_conv_driver.h"

/* --- Conv ------------------------------------------------------------------------------------- */
void NN_FN(conv)(const nn_conv_params *p, const float *x, const float *w_packed,
                 const float *bias, float *y, float *work, const nn_conv_epilogue *epilogue)
{
    const int groups = p->groups, m = p->out_channels / groups, c = p->in_channels / groups;
    const int k = c * volume(p->kernel), positions = volume(p->out_size), plane = volume(p->in_size);
    const bool pointwise = k == c && positions == plane && p->strides[0] == 1 &&
                           p->strides[1] == 1 && p->strides[2] == 1 && p->pads[0] == 0 &&
                           p->pads[1] == 0 && p->pads[2] == 0;
    for (int n = 0; n < p->batch; ++n) {
        for (int g = 0; g < groups; ++g) {
            const float *xg = x + ((size_t)n * p->in_channels + (size_t)g * c) * plane;
            const float *wg = w_packed + g * NN_GEMM_PACKED_A_FLOATS(m, k);
            const float *bg = bias ? bias + g * m : NULL;
            const size_t at = ((size_t)n * p->out_channels + (size_t)g * m) * positions;
            float *yg = y + at;
            if (pointwise) {      /* cols is the image itself: channels x positions */
                NN_FN(sgemm)(m, positions, k, 1.0f, wg, xg, plane, 1, bg, false,
                             yg, positions, 1, work);
            } else {
                const nn_gemm_source cols = {pack_im2col, xg, 0, 0, p};
                NN_FN(sgemm_source)(m, positions, k, 1.0f, wg, &cols, bg, false,
                                    yg, positions, 1, work);
            }
            epilogue_pass(epilogue, m, positions, yg,
                          epilogue && epilogue->residual ? epilogue->residual + at : NULL);
        }
    }
}
