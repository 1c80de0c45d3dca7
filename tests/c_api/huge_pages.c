/* Reads how much of this process's anonymous memory is on transparent huge pages before and
 * after big_load_weights and big_run (the model's static workspace and weight blob are advised
 * for them; this program itself advises nothing) and prints the three counts in KiB, then the
 * workspace and weight sizes in bytes.
 *   huge_pages WEIGHTS_FILE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "big.h"

static long anon_huge_kib(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "AnonHugePages:", 14) == 0)
            kib = strtol(line + 14, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const long before = anon_huge_kib();
    if (big_load_weights(argv[1]) != BIG_OK) return 1;
    const long loaded = anon_huge_kib();
    void *inputs[2], *outputs[2];
    for (int i = 0; i < 2; ++i) {
        inputs[i] = calloc(1, big_input_info(i)->bytes);
        outputs[i] = malloc(big_output_info(i)->bytes);
        if (!inputs[i] || !outputs[i]) return 1;
    }
    if (big_run((const void *const *)inputs, outputs) != BIG_OK) return 1;
    printf("%ld %ld %ld %zu %zu\n", before, loaded, anon_huge_kib(), big_workspace_size(),
           big_weights_size());
    return 0;
}
