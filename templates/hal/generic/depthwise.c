/* Depthwise convolution for the generic target; see depthwise.h. */
#include "depthwise.h"

#include "nn_pool.h"
#include "nn_depthwise_driver.h"

/* One task of conv_depthwise (nn_depthwise_driver.h). */
static void depthwise_task(const void *ctx, int t, void *scratch)
{
    const depthwise_job *j = ctx;
    int q0, q1;
    (void)scratch;
    nn_tile_range(j->units, j->tiles, 1, t, &q0, &q1);
    if (q0 < q1)
        depthwise_planes(j->p, j->x, j->w, j->bias, j->e, j->y, q0, q1);
}
