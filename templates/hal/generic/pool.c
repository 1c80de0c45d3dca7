/* Pooling kernels for the generic target (portable C; see pool.h): nn_pool_driver.h's. */
#include "pool.h"

#include "nn_pool.h"
#include "nn_pool_driver.h"
