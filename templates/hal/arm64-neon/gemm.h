/* Matrix products for the arm64-neon target: SGEMM micro-kernels with AArch64 NEON intrinsics.
 * The MR x NR = 8 x 12 register tile holds 24 accumulators: MR rows of A are 2 vectors of 4
 * floats, the NR columns of B 3 vectors whose lanes multiply them (vfmaq_laneq_f32). C is
 * stored down its columns when they are contiguous (a layer's transposed product
 * Y^T = W X^T) and, through 4 x 4 register transposes, along its rows when those are (Conv's
 * output channels x positions). The interface, packed layouts and accumulation order are
 * every target's: nn_gemm.h. */
#ifndef NN_GEMM_H
#define NN_GEMM_H

/* Keep in step with the arm64-neon GemmBlocking in nnbuild/targets.py (a test checks). */
#define NN_GEMM_MR 8      /* micro-kernel rows: 2 vectors */
#define NN_GEMM_NR 12     /* micro-kernel columns: 3 vectors */
#define NN_GEMM_KC 256    /* depth of one packed block: a 12 KiB B panel, L1-resident */
#define NN_GEMM_MC 128    /* rows of A per L2 block (a multiple of MR): 128 KiB */
#define NN_GEMM_NC 1020   /* columns of B per packed block (a multiple of NR) */

#include "nn_gemm.h"

#endif /* NN_GEMM_H */
