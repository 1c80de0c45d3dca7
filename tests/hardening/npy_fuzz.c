/* libFuzzer target for the generated app's .npy reader (templates/project/npy.h): any bytes
 * give either an array whose size matches its shape and dtype, or a one-line error. Built
 * with clang -fsanitize=fuzzer,address,undefined by tests/hardening/test_npy_fuzz.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/nnbuild-npy-fuzz-%d.npy", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    npy_array a;
    char err[256];
    if (npy_read(path, &a, err, sizeof err)) {
        size_t count = 1;
        for (int i = 0; i < a.rank; ++i) count *= (size_t)a.shape[i];
        size_t item = (size_t)strtol(a.descr + 2, NULL, 10);
        if (a.bytes != count * item || a.rank < 0 || a.rank > NPY_MAX_RANK) abort();
        volatile unsigned char sink = 0;
        for (size_t i = 0; i < a.bytes; ++i) sink ^= ((unsigned char *)a.data)[i];
        (void)sink;
        npy_free(a.data);
    } else if (!err[0] || strchr(err, '\n')) {
        abort();
    }
    return 0;
}
