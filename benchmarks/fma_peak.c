/* The FMA peak of one core: NACC independent chains of vector fused multiply-adds (GCC/Clang
 * vector extensions; built with the target's flags and -ffp-contract=fast, so each update is
 * one vfmadd of the widest vectors the flags allow). Prints GFLOP/s, the best of many short runs. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef VEC_BYTES
#define VEC_BYTES 32
#endif
#define NACC 16
typedef float vec __attribute__((vector_size(VEC_BYTES)));
#define LANES (VEC_BYTES / 4)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
    const long iters = argc > 1 ? atol(argv[1]) : 1000000;
    volatile float seed = 1.0f;
    vec acc[NACC], mul, add;
    for (int l = 0; l < LANES; ++l) {
        mul[l] = 0.999999f * seed;
        add[l] = 1e-7f * seed;
    }
    for (int i = 0; i < NACC; ++i)
        acc[i] = mul * (float)i;
    double best = 0.0;
    for (int run = 0; run < 100; ++run) {   /* short runs: the best one was not preempted */
        const double start = now_s();
        for (long it = 0; it < iters; ++it)
#pragma GCC unroll 16
            for (int i = 0; i < NACC; ++i)
                acc[i] = acc[i] * mul + add;
        const double s = now_s() - start;
        const double gflops = 2.0 * LANES * NACC * (double)iters / s * 1e-9;
        if (gflops > best)
            best = gflops;
    }
    float sink = 0.0f;
    for (int i = 0; i < NACC; ++i)
        for (int l = 0; l < LANES; ++l)
            sink += acc[i][l];
    printf("%.2f %g\n", best, (double)sink);
    return 0;
}
