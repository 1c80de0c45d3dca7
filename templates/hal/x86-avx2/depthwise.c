/* Depthwise convolution for the x86 targets (AVX2, or AVX-512 when compiled for it); see
 * depthwise.h. The vector primitives of nn_depthwise_driver.h's vector path (bands of rows
 * split into stride phases, flattened small planes) and channel blocks: 8 or 16 floats, masked
 * loads and stores at row ends, even/odd lanes by permutes, VL x VL transposes. */
#include "depthwise.h"

#include "nn_pool.h"
#include "nn_x86_vec.h"

#if defined(__AVX512F__)
typedef __mmask16 vmask;
static inline vmask tail_mask(int n) { return (vmask)((1u << n) - 1u); }
static inline void vstore_tail(float *p, vec v, vmask m) { _mm512_mask_storeu_ps(p, m, v); }
#else
typedef __m256i vmask;
static inline vmask tail_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline void vstore_tail(float *p, vec v, vmask m) { _mm256_maskstore_ps(p, m, v); }
#endif

/* x[0 .. min(n, VL)), zeros after (n > 0): a masked load at the end of a row. */
static inline vec load_upto(const float *x, int n)
{
    if (n >= VL)
        return vload(x);
#if defined(__AVX512F__)
    return _mm512_maskz_loadu_ps(tail_mask(n), x);
#else
    return _mm256_maskload_ps(x, tail_mask(n));
#endif
}

/* The even and odd lanes of the 2 VL floats a, b. */
static inline void split_even_odd(vec a, vec b, vec *even, vec *odd)
{
#if defined(__AVX512F__)
    const __m512i e = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    *even = _mm512_permutex2var_ps(a, e, b);
    *odd = _mm512_permutex2var_ps(a, _mm512_add_epi32(e, _mm512_set1_epi32(1)), b);
#else
    const __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xDD);
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8));
#endif
}

/* The first min(n, VL) lanes of v at p: a masked store at the end of a row. */
static inline void store_upto(float *p, vec v, int n)
{
    if (n >= VL)
        vstore(p, v);
    else
        vstore_tail(p, v, tail_mask(n));
}

/* The channel path's VL x VL transpose (nn_depthwise_driver.h): nn_x86_vec.h's. */
static inline void transpose_vl(vec r[VL]) { vtranspose(r); }

#define NN_DEPTHWISE_VECTOR
#define NN_DEPTHWISE_CHANNELS
#include "nn_depthwise_driver.h"
