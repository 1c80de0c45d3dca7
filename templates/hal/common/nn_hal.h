/* The hardware interface: shared definitions for every kernel family.
 * Each family lives in <family>.h / <family>.c; every exported symbol is NN_FN(name), which
 * expands to <model prefix>_name so that several models link into one binary. */
#ifndef NN_HAL_H
#define NN_HAL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nn_config.h"   /* generated: #define NN_PREFIX <model prefix> */

#define NN_CAT_(a, b) a##_##b
#define NN_CAT(a, b) NN_CAT_(a, b)
#define NN_FN(name) NN_CAT(NN_PREFIX, name)

#define NN_MAX_RANK 8

#endif /* NN_HAL_H */
