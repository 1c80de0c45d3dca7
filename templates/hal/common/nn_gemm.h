/* The SGEMM interface every target shares; a target's gemm.h defines its blocking
 * (NN_GEMM_MR, NN_GEMM_NR, NN_GEMM_KC, NN_GEMM_MC, NN_GEMM_NC) and includes this.
 *
 * SGEMM computes  C = init + alpha * A B  for an m x k matrix A and a k x n matrix B, where
 * element (i, j) of C lives at c[i * rsc + j * csc] and init is C itself (accumulate), bias[i],
 * or 0. It is cache-blocked (KC x NC blocks of B, MC rows of A) around a target's MR x NR
 * register-blocked micro-kernel.
 *
 * A is used packed: for each block of KC rows of k (the last may be shorter, kc), MR-row panels
 * one after another, each stored k-major (kc x MR, rows past m zero), i.e. element (i, p) of A
 * is at  (p / KC) * KC * Mp + (i / MR) * MR * kc + (p % KC) * MR + i % MR,  Mp = m rounded up
 * to MR. Constant weights are packed at compile time (nnbuild/ops/linalg.py pack_a); others with
 * sgemm_pack_a into scratch. B is packed block by block into `work` as NR-column panels, either
 * from a strided matrix or by a caller's packer (Conv packs straight from the image).
 *
 * The accumulation order is fixed (k ascending within a KC block, blocks in order): results do
 * not depend on anything but the operands. Kernels never allocate. */
#ifndef NN_GEMM_API_H
#define NN_GEMM_API_H

#include "nn_hal.h"

/* What C gets after the product when a caller fuses a layer's epilogue (sgemm_epilogue,
 * sgemm_source_epilogue), as each element is stored for the last time, in this order: the
 * residual added (element (i, j) at residual[i * rsc + j * csc], C's strides; NULL for none),
 * then per `clamp` Relu (x > 0 ? x : 0), the lower bound (x < lo ? lo : x), the upper bound
 * (x > hi ? hi : x): the float operations of separate Add, Relu and Clip ops, bit for bit
 * (the fields and flags of Conv's nn_conv_epilogue). */
enum { NN_GEMM_RELU = 1, NN_GEMM_MIN = 2, NN_GEMM_MAX = 4 };
typedef struct {
    const float *residual;
    int clamp;
    float lo, hi;
} nn_gemm_epilogue;

/* Floats taken by a packed m x k A operand, and by sgemm's `work` for n columns. */
#define NN_GEMM_PACKED_A_FLOATS(m, k) \
    ((size_t)(((m) + NN_GEMM_MR - 1) / NN_GEMM_MR * NN_GEMM_MR) * (size_t)(k))
#define NN_GEMM_WORK_FLOATS(n) \
    ((size_t)NN_GEMM_KC * (size_t)((((n) < NN_GEMM_NC ? (n) : NN_GEMM_NC) + NN_GEMM_NR - 1) \
                                   / NN_GEMM_NR * NN_GEMM_NR))

/* Where B comes from: `pack` writes rows [k0, k0 + kc) x columns [n0, n0 + nc) of B as NR-wide
 * panels (panel q at panels + q * kc * NR, stored k-major, columns past nc zero). */
typedef struct nn_gemm_source nn_gemm_source;
struct nn_gemm_source {
    void (*pack)(const nn_gemm_source *src, int k0, int kc, int n0, int nc, float *panels);
    const float *data;              /* the matrix, or the image for an im2col packer */
    ptrdiff_t row_stride;           /* dense B: element (p, j) at data[p * row_stride + j * col_stride] */
    ptrdiff_t col_stride;
    const void *geometry;           /* what a custom packer needs besides `data` */
};

/* Pack the m x k matrix A (element (i, p) at a[i * rs + p * cs]) into `packed`. */
void NN_FN(sgemm_pack_a)(int m, int k, const float *a, ptrdiff_t rs, ptrdiff_t cs, float *packed);

/* C = init + alpha * A B with a packed A and a strided B (element (p, j) at b[p * rsb + j * csb]).
 * `work` holds NN_GEMM_WORK_FLOATS(n) floats. */
void NN_FN(sgemm)(int m, int n, int k, float alpha, const float *a_packed,
                  const float *b, ptrdiff_t rsb, ptrdiff_t csb,
                  const float *bias, bool accumulate, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                  float *work);

/* The same with B from any source. */
void NN_FN(sgemm_source)(int m, int n, int k, float alpha, const float *a_packed,
                         const nn_gemm_source *b, const float *bias, bool accumulate,
                         float *c, ptrdiff_t rsc, ptrdiff_t csc, float *work);

/* sgemm and sgemm_source, then the epilogue (NULL: none). */
void NN_FN(sgemm_epilogue)(int m, int n, int k, float alpha, const float *a_packed,
                           const float *b, ptrdiff_t rsb, ptrdiff_t csb, const float *bias,
                           bool accumulate, float *c, ptrdiff_t rsc, ptrdiff_t csc, float *work,
                           const nn_gemm_epilogue *epilogue);
void NN_FN(sgemm_source_epilogue)(int m, int n, int k, float alpha, const float *a_packed,
                                  const nn_gemm_source *b, const float *bias, bool accumulate,
                                  float *c, ptrdiff_t rsc, ptrdiff_t csc, float *work,
                                  const nn_gemm_epilogue *epilogue);

/* Floats of a whole k x n B operand packed for sgemm_packed. */
#define NN_GEMM_PACKED_B_FLOATS(k, n) \
    ((size_t)(k) * (size_t)(((n) + NN_GEMM_NR - 1) / NN_GEMM_NR * NN_GEMM_NR))

/* The same with B packed beforehand for the whole product (e.g. transformed weights kept in
 * this layout): per block of KC rows of k (the last may be shorter, kc), the NR-column panels
 * of all n columns, element (p, j) at (p / KC) * KC * Np + (j / NR) * NR * kc + (p % KC) * NR
 * + j % NR, Np = n rounded up to NR, columns past n zero. No work buffer. */
void NN_FN(sgemm_packed)(int m, int n, int k, float alpha, const float *a_packed,
                         const float *b_packed, const float *bias, bool accumulate,
                         float *c, ptrdiff_t rsc, ptrdiff_t csc);

/* Double precision, unpacked and unblocked: C = init + alpha * A B, every operand strided. */
void NN_FN(dgemm)(int m, int n, int k, double alpha,
                  const double *a, ptrdiff_t rsa, ptrdiff_t csa,
                  const double *b, ptrdiff_t rsb, ptrdiff_t csb,
                  const double *bias, bool accumulate, double *c, ptrdiff_t rsc, ptrdiff_t csc);

#endif /* NN_GEMM_API_H */
