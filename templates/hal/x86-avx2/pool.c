/* Pooling kernels for the x86 targets; see pool.h: nn_pool_driver.h's, with its vector
 * primitives: 2-D AveragePool and MaxPool in padded planes and vector rows. AVX-512
 * (x86-avx512): 16 floats, masked loads and stores at row ends, even/odd lanes and lane shifts
 * by permutes. AVX2 (x86-avx2): 8 floats, maskload / maskstore and blends; no MaxPool vector
 * rows there (they measured no faster than the interior runs: squeezenet's 3x3/2 ceil-mode
 * 54 -> 27 slower, a 64x112x112 3x3/2 235 -> 260 us). */
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
#define NN_POOL_MAX_ROWS
#else
POOL_INLINE __m256i pool_lanes(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

/* all ones in lanes below n */
POOL_INLINE __m256i pool_mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), pool_lanes()); }

POOL_INLINE vec pool_load_upto(const float *x, int n, vec fill)
{
    if (n >= VL)
        return vload(x);
    const __m256i m = pool_mask(n);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(x, m), _mm256_castsi256_ps(m));
}

POOL_INLINE void pool_store_upto(float *p, vec v, int n)
{
    if (n >= VL)
        vstore(p, v);
    else
        _mm256_maskstore_ps(p, pool_mask(n), v);
}

/* shuffles within 128-bit lanes (a0 a2 b0 b2 | a4 a6 b4 b6), then 64-bit pieces in order */
POOL_INLINE vec pool_even(vec a, vec b)
{
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)),
                                                  0xD8));
}

POOL_INLINE vec pool_odd(vec a, vec b)
{
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)),
                                                  0xD8));
}

POOL_INLINE vec pool_shift_up(vec v, int k, vec fill)
{
    const __m256i lane = pool_lanes();
    const vec moved = _mm256_permutevar8x32_ps(v, _mm256_sub_epi32(lane, _mm256_set1_epi32(k)));
    return _mm256_blendv_ps(moved, fill, _mm256_castsi256_ps(pool_mask(k)));
}

#define NN_POOL_VECTOR
#endif

#include "nn_pool_driver.h"
