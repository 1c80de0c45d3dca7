/* Pooling kernels for the x86 targets; see pool.h: nn_pool_driver.h's. Compiled for AVX-512
 * (x86-avx512), with its vector rows and padded planes (2-D AveragePool and MaxPool): 16
 * floats, masked loads and stores at row ends, even/odd lanes and lane shifts by permutes. With AVX2 alone
 * (x86-avx2) the vector rows measured no faster than the interior runs (8 lanes: squeezenet's
 * 3x3/2 ceil-mode 54 -> 27 MaxPool slower): there it is the generic target's code. */
#include "pool.h"

#include "nn_pool.h"
#include "nn_x86_vec.h"

#define POOL_INLINE static inline __attribute__((always_inline))

#if defined(__AVX512F__)
POOL_INLINE __mmask16 pool_mask(int n) { return n <= 0 ? 0 : (__mmask16)((1u << n) - 1u); }

POOL_INLINE vec pool_load_upto(const float *x, int n, vec fill)
{
    return n >= VL ? vload(x) : _mm512_mask_loadu_ps(fill, pool_mask(n), x);
}

POOL_INLINE void pool_store_upto(float *p, vec v, int n)
{
    if (n >= VL)
        vstore(p, v);
    else
        _mm512_mask_storeu_ps(p, pool_mask(n), v);
}

POOL_INLINE vec pool_even(vec a, vec b)
{
    const __m512i e = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(a, e, b);
}

POOL_INLINE vec pool_odd(vec a, vec b)
{
    const __m512i o = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_permutex2var_ps(a, o, b);
}

POOL_INLINE vec pool_shift_up(vec v, int k, vec fill)
{
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_mask_permutexvar_ps(fill, (__mmask16)(0xFFFFu << k),
                                      _mm512_sub_epi32(lane, _mm512_set1_epi32(k)), v);
}

#define NN_POOL_VECTOR
#define NN_POOL_VECTOR_MAX
#endif

#include "nn_pool_driver.h"
