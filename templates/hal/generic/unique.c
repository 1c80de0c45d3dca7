/* Unique: a stable bottom-up merge sort of item indices by their key rows, then one walk over
 * the sorted items grouping equal neighbours. Ties keep index order, so a group's first
 * sorted member is its first occurrence. */
#include "unique.h"

#include <string.h>

/* -1, 0 or 1: a number before NaN, NaNs equal. */
static int cmp_f64(double a, double b) {
    if (a != a || b != b)
        return (b != b) - (a != a);
    return (a > b) - (a < b);
}
static int cmp_i64(int64_t a, int64_t b) { return (a > b) - (a < b); }
static int cmp_u64(uint64_t a, uint64_t b) { return (a > b) - (a < b); }

#define NN_UNIQUE_KERNEL(NAME, T, CMP)                                                           \
    static int NAME##_rows(const T *keys, size_t width, size_t a, size_t b) {                    \
        const T *ra = keys + a * width, *rb = keys + b * width;                                  \
        for (size_t e = 0; e < width; ++e) {                                                     \
            const int c = CMP(ra[e], rb[e]);                                                     \
            if (c)                                                                               \
                return c;                                                                        \
        }                                                                                        \
        return 0;                                                                                \
    }                                                                                            \
    size_t NN_FN(NAME)(const T *keys, size_t n, size_t width, bool sorted, size_t *order,        \
                       size_t *tmp, int64_t *first, int64_t *inverse, int64_t *counts) {         \
        for (size_t i = 0; i < n; ++i)                                                           \
            order[i] = i;                                                                        \
        for (size_t run = 1; run < n; run *= 2) {                                                \
            for (size_t lo = 0; lo < n; lo += 2 * run) {                                         \
                const size_t mid = lo + run < n ? lo + run : n;                                  \
                const size_t hi = lo + 2 * run < n ? lo + 2 * run : n;                           \
                size_t i = lo, j = mid, k = lo;                                                  \
                while (i < mid && j < hi)                                                        \
                    tmp[k++] = NAME##_rows(keys, width, order[j], order[i]) < 0 ? order[j++]     \
                                                                                : order[i++];    \
                while (i < mid)                                                                  \
                    tmp[k++] = order[i++];                                                       \
                while (j < hi)                                                                   \
                    tmp[k++] = order[j++];                                                       \
            }                                                                                    \
            memcpy(order, tmp, n * sizeof(*order));                                              \
        }                                                                                        \
        size_t groups = 0;                                                                       \
        for (size_t s = 0; s < n; ++s) {                                                         \
            if (s == 0 || NAME##_rows(keys, width, order[s - 1], order[s]) != 0) {               \
                first[groups] = (int64_t)order[s];                                               \
                counts[groups++] = 0;                                                            \
            }                                                                                    \
            inverse[order[s]] = (int64_t)(groups - 1);                                           \
            counts[groups - 1] += 1;                                                             \
        }                                                                                        \
        if (sorted)                                                                              \
            return groups;                                                                       \
        /* renumber groups by first occurrence: tmp[sorted rank] = new rank */                   \
        size_t next = 0;                                                                         \
        for (size_t i = 0; i < n; ++i) {                                                         \
            const size_t g = (size_t)inverse[i];                                                 \
            if ((size_t)first[g] == i)                                                           \
                tmp[g] = next++;                                                                 \
        }                                                                                        \
        for (size_t g = 0; g < groups; ++g) { /* order: first and counts by new rank */          \
            order[tmp[g]] = (size_t)first[g];                                                    \
        }                                                                                        \
        for (size_t g = 0; g < groups; ++g)                                                      \
            first[g] = (int64_t)order[g];                                                        \
        for (size_t i = 0; i < n; ++i)                                                           \
            inverse[i] = (int64_t)tmp[inverse[i]];                                               \
        for (size_t g = 0; g < groups; ++g)                                                      \
            order[g] = 0;                                                                        \
        for (size_t i = 0; i < n; ++i)                                                           \
            order[inverse[i]] += 1;                                                              \
        for (size_t g = 0; g < groups; ++g)                                                      \
            counts[g] = (int64_t)order[g];                                                       \
        return groups;                                                                           \
    }

NN_UNIQUE_KERNEL(unique_f64, double, cmp_f64)
NN_UNIQUE_KERNEL(unique_i64, int64_t, cmp_i64)
NN_UNIQUE_KERNEL(unique_u64, uint64_t, cmp_u64)
