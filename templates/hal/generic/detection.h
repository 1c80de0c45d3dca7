/* Detection post-processing: non-maximum suppression. */
#ifndef NN_DETECTION_H
#define NN_DETECTION_H

#include "nn_hal.h"

/* Greedy NMS per batch and class (ONNX NonMaxSuppression). boxes: [batches, boxes, 4] as
 * (y1, x1, y2, x2) corners in either order, or (x centre, y centre, width, height) when
 * `center`; scores: [batches, classes, boxes]. A box is a candidate when its score exceeds
 * score_threshold (all are when !has_score_threshold); candidates are taken by descending score
 * (the lower index first among equals) unless their IoU with one already kept in the class
 * exceeds iou_threshold, at most max_per_class per class. The kept (batch, class, box) triples
 * are written to `selected` while fewer than `capacity` were; returns how many were kept.
 * `order` and `kept` are scratch of `boxes` entries each. */
int64_t NN_FN(nms_f32)(const float *boxes, const float *scores, size_t batches, size_t classes,
                       size_t boxes_per_batch, int64_t max_per_class, float iou_threshold,
                       bool has_score_threshold, float score_threshold, bool center,
                       size_t *order, size_t *kept, int64_t *selected, size_t capacity);

#endif /* NN_DETECTION_H */
