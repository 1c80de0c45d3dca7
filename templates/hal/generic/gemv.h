/* Matrix-vector products with a packed matrix: the per-step product of a recurrent layer.
 *
 * A is packed as the target's SGEMM packs it (see nn_gemm.h: KC-deep blocks of MR-row panels, each
 * k-major), so constant weights packed once at compile time serve both kernels. A caller also
 * uses the gemm family (gemm.h gives the packing). For a few columns a GEMV streams A once per
 * column with one multiply-add per element, where SGEMM's MR x NR tile would spend NR - 1 of
 * its NR columns on padding. Each row sums k ascending within a block, blocks in order:
 * results depend on the operands only, whatever the thread count. Kernels never allocate. */
#ifndef NN_GEMV_H
#define NN_GEMV_H

#include "nn_hal.h"

/* For each of n columns j:  y[j * ldy + i] = sum over p of A(i, p) x[j * ldx + p],  i < m,
 * A m x k packed (NN_GEMM_PACKED_A_FLOATS(m, k) floats). */
void NN_FN(sgemv_packed)(int m, int k, int n, const float *a_packed, const float *x,
                         ptrdiff_t ldx, float *y, ptrdiff_t ldy);

#endif /* NN_GEMV_H */
