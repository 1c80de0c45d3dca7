/* Matrix products for the x86-avx512 target: SGEMM micro-kernels with AVX-512F intrinsics
 * (x86-avx2/gemm.c at the zmm width). The MR x NR register tile holds 2 x NR = 24
 * accumulators: MR rows of A are 2 vectors of 16 floats, each column of B one broadcast (so C
 * is vectorised down its columns: the contiguous direction of a layer's transposed product
 * Y^T = W X^T, and of a matrix-vector product). The interface, packed layouts and
 * accumulation order are every target's: nn_gemm.h. */
#ifndef NN_GEMM_H
#define NN_GEMM_H

/* Keep in step with the x86-avx512 GemmBlocking in nnbuild/targets.py (a test checks). */
#define NN_GEMM_MR 32     /* micro-kernel rows: 2 vectors */
#define NN_GEMM_NR 12     /* micro-kernel columns */
#define NN_GEMM_KC 256    /* depth of one packed block */
#define NN_GEMM_MC 128    /* rows of A per L2 block (a multiple of MR) */
#define NN_GEMM_NC 1020   /* columns of B per packed block (a multiple of NR) */
#define NN_GEMM_MC_WIDE 512   /* rows of A per L2 block when B's block is wide (the driver) */

#include "nn_gemm.h"

#endif /* NN_GEMM_H */
