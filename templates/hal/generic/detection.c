/* Non-maximum suppression: a stable insertion sort of each class's candidates (lists are
 * short after the score threshold), then one IoU test against each box kept so far. */
#include "detection.h"

typedef struct {
    float x_min, x_max, y_min, y_max;
} nms_box;

static nms_box box_at(const float *b, bool center) {
    nms_box r;
    if (center) {
        r.x_min = b[0] - b[2] / 2.0f;
        r.x_max = b[0] + b[2] / 2.0f;
        r.y_min = b[1] - b[3] / 2.0f;
        r.y_max = b[1] + b[3] / 2.0f;
    } else {
        r.y_min = fminf(b[0], b[2]);
        r.y_max = fmaxf(b[0], b[2]);
        r.x_min = fminf(b[1], b[3]);
        r.x_max = fmaxf(b[1], b[3]);
    }
    return r;
}

/* IoU(a, b) > threshold; boxes that do not overlap or have no area never suppress. */
static bool suppresses(nms_box a, nms_box b, float threshold) {
    const float x_min = fmaxf(a.x_min, b.x_min), x_max = fminf(a.x_max, b.x_max);
    const float y_min = fmaxf(a.y_min, b.y_min), y_max = fminf(a.y_max, b.y_max);
    if (x_max <= x_min || y_max <= y_min) return false;
    const float inter = (x_max - x_min) * (y_max - y_min);
    const float area_a = (a.x_max - a.x_min) * (a.y_max - a.y_min);
    const float area_b = (b.x_max - b.x_min) * (b.y_max - b.y_min);
    const float uni = area_a + area_b - inter;
    if (inter <= 0.0f || area_a <= 0.0f || area_b <= 0.0f || uni <= 0.0f) return false;
    return inter / uni > threshold;
}

int64_t NN_FN(nms_f32)(const float *boxes, const float *scores, size_t batches, size_t classes,
                       size_t boxes_per_batch, int64_t max_per_class, float iou_threshold,
                       bool has_score_threshold, float score_threshold, bool center,
                       size_t *order, size_t *kept, int64_t *selected, size_t capacity) {
    size_t count = 0;
    if (max_per_class <= 0) return 0;
    for (size_t b = 0; b < batches; ++b) {
        const float *bb = boxes + b * boxes_per_batch * 4;
        for (size_t c = 0; c < classes; ++c) {
            const float *s = scores + (b * classes + c) * boxes_per_batch;
            size_t candidates = 0;
            for (size_t i = 0; i < boxes_per_batch; ++i) {
                if (has_score_threshold && !(s[i] > score_threshold)) continue;
                size_t at = candidates++;     /* insertion: descending score, stable */
                while (at > 0 && s[order[at - 1]] < s[i]) {
                    order[at] = order[at - 1];
                    --at;
                }
                order[at] = i;
            }
            size_t n_kept = 0;
            for (size_t k = 0; k < candidates && (int64_t)n_kept < max_per_class; ++k) {
                const nms_box box = box_at(bb + order[k] * 4, center);
                bool keep = true;
                for (size_t j = 0; j < n_kept && keep; ++j)
                    keep = !suppresses(box, box_at(bb + kept[j] * 4, center), iou_threshold);
                if (!keep) continue;
                kept[n_kept++] = order[k];
                if (count < capacity) {
                    selected[count * 3 + 0] = (int64_t)b;
                    selected[count * 3 + 1] = (int64_t)c;
                    selected[count * 3 + 2] = (int64_t)order[k];
                }
                ++count;
            }
        }
    }
    return (int64_t)count;
}
