/* Kernels over image patches. A block offset and a block position are flat row-major indices
 * split into per-dim coordinates as they are used, so no rank-sized state outlives a step. */
#include "patches.h"

int64_t NN_FN(col2im_plan)(nn_col2im *g, const int64_t *image, const int64_t *block) {
    int64_t count = 1;
    g->block_size = 1;
    g->image_size = 1;
    for (size_t d = 0; d < g->rank; ++d) {
        const int64_t padded = image[d] + g->pads[d] + g->pads[g->rank + d];
        if (image[d] < 1 || block[d] < 1 || block[d] > padded) return -1;   /* no overflow below */
        g->image[d] = image[d];
        g->block[d] = block[d];
        const int64_t room = padded - (g->dilations[d] * (block[d] - 1) + 1);
        if (room < 0) return -1;
        g->blocks[d] = room / g->strides[d] + 1;
        count *= g->blocks[d];
        g->block_size *= block[d];
        g->image_size *= image[d];
    }
    return count;
}

/* The image offset of block offset k at block position l, or -1 inside the padding. */
static int64_t image_offset(const nn_col2im *g, int64_t k, int64_t l) {
    int64_t offset = 0, stride = 1;
    for (size_t d = g->rank; d-- > 0;) {
        const int64_t at = (l % g->blocks[d]) * g->strides[d] - g->pads[d] +
                           (k % g->block[d]) * g->dilations[d];
        if (at < 0 || at >= g->image[d]) return -1;
        offset += at * stride;
        stride *= g->image[d];
        l /= g->blocks[d];
        k /= g->block[d];
    }
    return offset;
}

void NN_FN(col2im_f32)(const float *x, float *y, size_t planes, const nn_col2im *g) {
    int64_t positions = 1;
    for (size_t d = 0; d < g->rank; ++d) positions *= g->blocks[d];
    for (size_t p = 0; p < planes; ++p) {
        float *out = y + p * (size_t)g->image_size;
        for (int64_t e = 0; e < g->image_size; ++e) out[e] = 0.0f;
        for (int64_t k = 0; k < g->block_size; ++k) {
            const float *column = x + (p * (size_t)g->block_size + (size_t)k) * (size_t)positions;
            for (int64_t l = 0; l < positions; ++l) {
                const int64_t at = image_offset(g, k, l);
                if (at >= 0) out[at] += column[l];
            }
        }
    }
}
