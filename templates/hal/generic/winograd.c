/* Winograd convolution F(m x m, 3 x 3) for the generic target (see winograd.h): the portable
 * transforms of nn_winograd_driver.h for F(2x2) too; the products are the target's SGEMM. */
#include "winograd.h"

#include "nn_winograd_driver.h"

static void input_across2(int n, const float *s, float *d, ptrdiff_t ds)
{
    input_across(2, n, s, d, ds);
}

static void output_row2(const float *mo, ptrdiff_t plane, int tiles, int cols, float bias,
                        float *const y[2], const float *const res[2],
                        const nn_conv_epilogue *e, float *scratch)
{
    output_row(2, 4, mo, plane, tiles, cols, bias, y, res, e, scratch);
}
