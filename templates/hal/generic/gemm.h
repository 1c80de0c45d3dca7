/* Matrix products for the generic target: portable C11, no intrinsics. The MR x NR
 * micro-kernel is written as small fixed-size loops that an -O3 compiler vectorizes. The
 * interface, packed layouts and accumulation order are every target's: nn_gemm.h. */
#ifndef NN_GEMM_H
#define NN_GEMM_H

/* Keep in step with GEMM_BLOCKING in nnbuild/ops/linalg.py (a test checks). */
#define NN_GEMM_MR 8      /* micro-kernel rows */
#define NN_GEMM_NR 8      /* micro-kernel columns */
#define NN_GEMM_KC 256    /* depth of one packed block */
#define NN_GEMM_MC 128    /* rows of A per L2 block (a multiple of MR) */
#define NN_GEMM_NC 1024   /* columns of B per packed block (a multiple of NR) */

#include "nn_gemm.h"

#endif /* NN_GEMM_H */
