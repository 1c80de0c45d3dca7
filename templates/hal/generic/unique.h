/* Unique: the distinct items of a list of key rows (ONNX Unique's elements or slices). */
#ifndef NN_UNIQUE_H
#define NN_UNIQUE_H

#include "nn_hal.h"

/* keys: n items, each a row of `width` keys compared lexicographically (floats: NaN after
 * every number, NaNs equal to each other; -0 equals 0). Finds the distinct items, in
 * ascending order (`sorted`) or in the order they first occur. For each distinct item u:
 * first[u] = the index of its first occurrence, counts[u] = how many items equal it; for
 * each item i: inverse[i] = the u it equals. Returns the number of distinct items.
 * order and tmp: scratch of n entries each; first, inverse, counts: n entries each. */
size_t NN_FN(unique_f64)(const double *keys, size_t n, size_t width, bool sorted,
                         size_t *order, size_t *tmp, int64_t *first, int64_t *inverse,
                         int64_t *counts);
size_t NN_FN(unique_i64)(const int64_t *keys, size_t n, size_t width, bool sorted,
                         size_t *order, size_t *tmp, int64_t *first, int64_t *inverse,
                         int64_t *counts);
size_t NN_FN(unique_u64)(const uint64_t *keys, size_t n, size_t width, bool sorted,
                         size_t *order, size_t *tmp, int64_t *first, int64_t *inverse,
                         int64_t *counts);

#endif /* NN_UNIQUE_H */
