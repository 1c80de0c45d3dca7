/* A C program that links one generated model library and checks the C API contract:
 *   - NULL pointers and out-of-range arguments return error codes (no crash);
 *   - no heap allocation on the inference path (COUNT_MALLOC: malloc/calloc/realloc are
 *     interposed and counted while <p>_run and <p>_run_ws execute, also with 3 threads; not
 *     under ASan, which owns malloc itself);
 *   - two threads, each with its own workspace, give results bit-identical to one run, while
 *     the model's pool has 3 threads (one run at a time uses it) and with 1 thread.
 * Compiled with -DNN_P=<prefix>; inputs are deterministic pseudo-random values (integers in
 * [0, 7), so index inputs stay in range). Prints one line per check; exit 0 when all hold. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NN_CAT2(a, b) a##_##b
#define NN_CAT(a, b) NN_CAT2(a, b)
#define FN(name) NN_CAT(NN_P, name)
#define NN_STR2(x) #x
#define NN_STR(x) NN_STR2(x)
#include NN_STR(NN_P.h)

typedef FN(tensor_info) tensor_info;

#ifdef COUNT_MALLOC
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static volatile int counting = 0;
static volatile long allocations = 0;
void *malloc(size_t n) {
    if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_SEQ_CST);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
    if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_SEQ_CST);
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
    if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_SEQ_CST);
    return __libc_realloc(p, n);
}
#endif

static int n_in, n_out;
static void **inputs, **reference;

static void fill(void *buf, const tensor_info *t) {
    size_t count = 1;
    for (int d = 0; d < t->rank; ++d) count *= (size_t)t->shape[d];
    for (size_t i = 0; i < count; ++i) {
        int v = (int)((i * 37u + 11u) % 7u);
        switch (t->dtype) {
        case 1: ((float *)buf)[i] = (float)v / 3.0f - 1.0f; break;
        case 11: ((double *)buf)[i] = (double)v / 3.0 - 1.0; break;
        case 7: ((int64_t *)buf)[i] = v; break;
        case 6: ((int32_t *)buf)[i] = v; break;
        case 9: ((unsigned char *)buf)[i] = (unsigned char)(v & 1); break;
        default: memset((char *)buf + i * (t->bytes / (count ? count : 1)), v,
                        t->bytes / (count ? count : 1));
        }
    }
}

static void **alloc_outputs(void) {
    void **outs = calloc((size_t)n_out + 1, sizeof(void *));
    for (int i = 0; i < n_out; ++i) outs[i] = calloc(FN(output_info)(i)->bytes + 1, 1);
    return outs;
}

static int same(void **outs) {
    for (int i = 0; i < n_out; ++i)
        if (memcmp(outs[i], reference[i], FN(output_info)(i)->bytes) != 0) return 0;
    return 1;
}

#define RUNS_PER_THREAD 8
static void *worker(void *arg) {
    int *ok = arg;
    void *ws = malloc(FN(workspace_size)());
    void **outs = alloc_outputs();
    *ok = 1;
    for (int r = 0; r < RUNS_PER_THREAD; ++r) {
        for (int i = 0; i < n_out; ++i) memset(outs[i], 0xA5, FN(output_info)(i)->bytes);
        if (FN(run_ws)(ws, (const void *const *)inputs, outs) != 0 || !same(outs)) *ok = 0;
    }
    for (int i = 0; i < n_out; ++i) free(outs[i]);
    free(outs);
    free(ws);
    return NULL;
}

#define CHECK(cond, what) do { if (!(cond)) { printf("FAIL %s\n", what); failures++; } \
                               else printf("ok %s\n", what); } while (0)

int main(int argc, char **argv) {
    int failures = 0;
    if (argc > 1) CHECK(FN(load_weights)(argv[1]) == 0, "load_weights");
    n_in = FN(num_inputs)();
    n_out = FN(num_outputs)();
    inputs = calloc((size_t)n_in + 1, sizeof(void *));
    for (int i = 0; i < n_in; ++i) {
        inputs[i] = calloc(FN(input_info)(i)->bytes + 1, 1);
        fill(inputs[i], FN(input_info)(i));
    }
    reference = alloc_outputs();

    /* NULL pointers and out-of-range arguments: error codes, never a crash */
    CHECK(FN(input_info)(-1) == NULL && FN(input_info)(n_in) == NULL, "input_info range");
    CHECK(FN(output_info)(-1) == NULL && FN(output_info)(n_out) == NULL, "output_info range");
    CHECK(FN(run)(NULL, (void *const *)reference) != 0, "run(NULL inputs)");
    CHECK(FN(run)((const void *const *)inputs, NULL) != 0, "run(NULL outputs)");
    CHECK(FN(run_ws)(NULL, (const void *const *)inputs, (void *const *)reference) != 0,
          "run_ws(NULL workspace)");
    if (n_in > 0) {
        void *keep = inputs[0];
        inputs[0] = NULL;
        CHECK(FN(run)((const void *const *)inputs, (void *const *)reference) != 0,
              "run(NULL input 0)");
        inputs[0] = keep;
    }
    CHECK(FN(set_num_threads)(0) != 0, "set_num_threads(0)");
    CHECK(FN(set_weights)(NULL, 0) != 0, "set_weights(NULL)");
    CHECK(FN(load_weights)(NULL) != 0, "load_weights(NULL)");
    CHECK(FN(strerror)(12345) != NULL && FN(strerror)(0) != NULL, "strerror");

    CHECK(FN(run)((const void *const *)inputs, (void *const *)reference) == 0, "reference run");

    void *ws = malloc(FN(workspace_size)());
    void **outs = alloc_outputs();
#ifdef COUNT_MALLOC
    counting = 1;
#endif
    int status = 0;
    for (int r = 0; r < 3; ++r) {
        status |= FN(run)((const void *const *)inputs, outs);
        status |= FN(run_ws)(ws, (const void *const *)inputs, outs);
    }
#ifdef COUNT_MALLOC
    counting = 0;
#endif
    CHECK(FN(set_num_threads)(3) == 0, "set_num_threads(3)");   /* starts workers: allocates */
#ifdef COUNT_MALLOC
    counting = 1;
#endif
    status |= FN(run_ws)(ws, (const void *const *)inputs, outs);
    status |= FN(run)((const void *const *)inputs, outs);
#ifdef COUNT_MALLOC
    counting = 0;
    printf("allocations during 8 runs (2 with 3 threads): %ld\n", (long)allocations);
    CHECK(allocations == 0, "no heap allocation on the inference path");
#endif
    CHECK(status == 0 && same(outs), "repeated runs identical, 1 and 3 threads");

    pthread_t threads[2];
    int ok[2] = {0, 0};
    for (int t = 0; t < 2; ++t) pthread_create(&threads[t], NULL, worker, &ok[t]);
    for (int t = 0; t < 2; ++t) pthread_join(threads[t], NULL);
    CHECK(ok[0] && ok[1], "two threads with their own workspaces, pool of 3: bit-identical");
    FN(set_num_threads)(1);
    for (int t = 0; t < 2; ++t) pthread_create(&threads[t], NULL, worker, &ok[t]);
    for (int t = 0; t < 2; ++t) pthread_join(threads[t], NULL);
    CHECK(ok[0] && ok[1], "two threads with their own workspaces, 1 thread: bit-identical");

    for (int i = 0; i < n_out; ++i) { free(outs[i]); free(reference[i]); }
    for (int i = 0; i < n_in; ++i) free(inputs[i]);
    free(outs); free(reference); free(inputs); free(ws);
    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}
