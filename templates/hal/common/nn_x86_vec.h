/* The vector type and operations of the x86 kernels (the x86-avx2 folder, shared by both x86 targets)
 * at the width the build's flags give: zmm, 16 floats, with -mavx512f (x86-avx512); ymm, 8
 * floats, with -mavx2 -mfma (x86-avx2). A kernel file adds its own masks and permutes. */
#ifndef NN_X86_VEC_H
#define NN_X86_VEC_H

#include <immintrin.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define VL 16
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vfma _mm512_fmadd_ps
#define vadd _mm512_add_ps
#define vmul _mm512_mul_ps
#define vmax _mm512_max_ps
#define vmin _mm512_min_ps
#define vzero _mm512_setzero_ps
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec;
#define VL 8
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vfma _mm256_fmadd_ps
#define vadd _mm256_add_ps
#define vmul _mm256_mul_ps
#define vmax _mm256_max_ps
#define vmin _mm256_min_ps
#define vzero _mm256_setzero_ps
#else
#error "the x86 kernels need -mavx2 -mfma (x86-avx2) or -mavx512f (x86-avx512)"
#endif

#endif /* NN_X86_VEC_H */
