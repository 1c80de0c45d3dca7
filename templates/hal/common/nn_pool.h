/* The thread pool of the hardware interface (pthreads), and how kernels split work over it.
 *
 * One pool per model library (every symbol carries the prefix). <p>_set_num_threads(n) calls
 * pool_set_threads(n), which starts n - 1 persistent workers, each with a private scratch
 * buffer of NN_POOL_SCRATCH_BYTES (the only allocations; the inference path allocates
 * nothing). After a job a worker polls for the next one for NN_POOL_SPIN_NS (the gaps between
 * the split kernels of a run are mostly shorter), then sleeps on a condition variable: an idle
 * pool uses no CPU.
 *
 * A kernel splits its output into tasks with parallel_for(n_tasks, fn, ctx, scratch, bytes):
 * fn(ctx, task, scratch) runs once for every task in [0, n_tasks), on the calling thread and the
 * workers; tasks must write disjoint outputs. `scratch` is private to the thread running the
 * task: the caller's own `scratch` argument on the calling thread (the kernel's work buffer),
 * a worker's buffer elsewhere; a job whose tasks need more than NN_POOL_SCRATCH_BYTES runs on
 * the caller alone.
 *
 * Who runs which task: the tasks are cut into one contiguous range (a lane) per thread, the
 * caller's first; each thread runs its own lane's tasks in order, then helps with what is left
 * of the others'. So consecutive kernels that split the same way (a GEMM's columns, a conv's
 * position tiles, a depthwise conv's output rows: ranges of positions) give each thread the
 * positions it has just written, still in its own L2, instead of half of them from the other
 * cores' caches; a thread that falls behind (preempted) is still helped.
 *
 * Determinism: a kernel splits its output only at multiples of its register tile (MR rows
 * and NR columns of a GEMM, whole output rows of a direct convolution, whole planes), so every
 * output element is computed by the same instructions in the same order as in the unsplit
 * kernel, whichever task holds it and whichever thread runs that task. How many tasks
 * (nn_task_count: from the work's size and the thread count; 1 on one thread, where the
 * kernel runs exactly as without a pool) and who claims them change nothing in the results:
 * they are bit-identical at every thread count (tests/targets/test_threads.py).
 *
 * Concurrency: one parallel_for at a time uses the workers. A second one that starts meanwhile
 * (another thread's <p>_run_ws with its own workspace) runs all its tasks on its own thread,
 * with the same results. pool_set_threads waits for a running job, then replaces the workers;
 * call it between runs (it allocates).
 *
 * A target's kernels (generic, x86-*, arm64-neon ...) keep their signatures: the split happens
 * inside the family's entry points (sgemm_source over C tiles, conv over output rows and
 * channel panels, depthwise over output rows or planes, pooling over planes) through these
 * calls. */
#ifndef NN_THREAD_POOL_H
#define NN_THREAD_POOL_H

#include "nn_hal.h"

#define NN_POOL_MAX_THREADS 64                        /* more requested are clamped */
#define NN_POOL_SCRATCH_BYTES ((size_t)1 << 20)       /* each worker's private scratch */
#define NN_POOL_MAX_TASKS 32                          /* tasks one kernel call splits into */
#define NN_POOL_TASK_FLOPS 400000.0                   /* least work worth one task */
#define NN_POOL_TASKS_PER_THREAD 3                    /* for balance on a busy machine */
#ifndef NN_POOL_SPIN_NS
#define NN_POOL_SPIN_NS 200000                        /* a worker's polling before it sleeps */
#endif

typedef void (*nn_task_fn)(const void *ctx, int task, void *scratch);

/* Threads used by later jobs, the caller included (n >= 1; at most NN_POOL_MAX_THREADS).
 * 0 when all are running, -1 when fewer could be started (those that could are used). */
int NN_FN(pool_set_threads)(int n);
int NN_FN(pool_threads)(void);

/* fn(ctx, t, scratch) for t in [0, n_tasks); returns when all are done. The calling thread's
 * tasks get `scratch`; `scratch_bytes` is what one task needs. */
void NN_FN(parallel_for)(int n_tasks, nn_task_fn fn, const void *ctx, void *scratch,
                         size_t scratch_bytes);

#ifdef NN_PROFILE
/* Profiling builds only (`nnbuild profile`): nanoseconds since the library was loaded.
 * `pooled`: the calling threads' time inside parallel_for calls that used the workers, from
 * publishing the job to the last task's end; `busy`: all threads' time in those calls' tasks.
 * Over a step at T threads, T x pooled - busy is thread time spent waiting inside them (a
 * worker still waking, the tail of the slowest task), and the step's time outside pooled
 * calls ran on the calling thread alone. */
void NN_FN(pool_counters)(double *pooled_ns, double *busy_ns);

/* The timeline of a run: pool_mark(step) records "step starts now" (model.c calls it before
 * step 0 and after every step), and each task of a pooled call is recorded with the last
 * marked step, the thread that ran it (0: the caller) and its start and end; at most
 * NN_POOL_PROFILE_EVENTS events. pool_events copies them, 4 doubles each (step; thread, -1
 * for a mark; start ns; end ns), into `events` (room for `capacity` events), returns how many
 * were recorded, and clears them. Call both between runs only. */
#define NN_POOL_PROFILE_EVENTS 65536
void NN_FN(pool_mark)(int step);
int NN_FN(pool_events)(double *events, int capacity);
#endif

/* Range t of `tiles` near-equal parts of [0, total), boundaries at multiples of `align`. */
static inline void nn_tile_range(int total, int tiles, int align, int t, int *begin, int *end)
{
    const long long units = ((long long)total + align - 1) / align;
    const long long b = units * t / tiles * align, e = units * (t + 1) / tiles * align;
    *begin = (int)(b < total ? b : total);
    *end = (int)(e < total ? e : total);
}

/* How many tasks `flops` of work is worth with the current thread count: 1 on one thread (the
 * kernel then runs unsplit), else up to NN_POOL_TASKS_PER_THREAD per thread, at least
 * NN_POOL_TASK_FLOPS each, at most NN_POOL_MAX_TASKS. */
static inline int nn_task_count(double flops)
{
    const int threads = NN_FN(pool_threads)();
    const int most = threads * NN_POOL_TASKS_PER_THREAD < NN_POOL_MAX_TASKS
                     ? threads * NN_POOL_TASKS_PER_THREAD : NN_POOL_MAX_TASKS;
    const double t = flops / NN_POOL_TASK_FLOPS;
    return threads <= 1 || t < 1.0 ? 1 : t > most ? most : (int)t;
}

/* How many of at most `most` tasks to cut `units` (register tiles of rows or columns) into:
 * the count whose slowest thread finishes first when the pool's threads take the tasks in turn
 * (each thread ceil(tasks / threads) of them, a task ceil(units / tasks) units), ties going
 * to more tasks. 32 row panels on 2 threads: 4 tasks of 8, not 6 of 5 or 6 (one thread's
 * share 17). Where the split falls never changes a result, only who computes it. */
static inline int nn_balanced_tasks(int units, int most)
{
    const int threads = NN_FN(pool_threads)();
    int best = 1;
    long long best_span = units;
    for (int t = 2; t <= most && t <= units; ++t) {
        const long long span = (long long)((t + threads - 1) / threads) * ((units + t - 1) / t);
        if (span <= best_span)
            best = t, best_span = span;
    }
    return best;
}

/* Tiles of an m x n output whose elements each cost k multiply-adds, rows in units of mr and
 * columns in units of nr: *tiles_m x *tiles_n tasks, at most nn_task_count's. The split whose
 * slowest thread finishes first (its rounds of tasks, when the threads take them in turn,
 * times the largest task's units) wins; ties go to more tasks (balance on a busy machine),
 * then to less re-reading (a row tile re-reads its columns' operand, n k; a column tile its
 * rows', m k). 3 row panels x 5 column units on 2 threads: 3 x 2 tasks (largest 1 x 3, 3
 * rounds), not 2 x 3 (2 x 2, 3 rounds: a third slower). Where the split falls never changes
 * a result, only who computes it. */
static inline void nn_plan_tiles(int m, int n, int k, int mr, int nr, int *tiles_m, int *tiles_n)
{
    const int tasks = nn_task_count(2.0 * m * (double)n * k);
    const int threads = NN_FN(pool_threads)();
    const int units_m = (m + mr - 1) / mr, units_n = (n + nr - 1) / nr;
    int best_m = 1, best_n = 1;
    long long best_span = (long long)units_m * units_n;
    double best_cost = (double)m + (double)n;
    for (int tm = 1; tm <= tasks && tm <= units_m; ++tm) {
        for (int tn = 1; tm * tn <= tasks && tn <= units_n; ++tn) {
            const long long rounds = (tm * tn + threads - 1) / threads;
            const long long span = rounds * ((units_m + tm - 1) / tm) * ((units_n + tn - 1) / tn);
            const double cost = (double)m * tn + (double)n * tm;
            const bool more = tm * tn > best_m * best_n;
            if (span < best_span || (span == best_span && (more || (tm * tn == best_m * best_n
                                                                    && cost < best_cost))))
                best_m = tm, best_n = tn, best_span = span, best_cost = cost;
        }
    }
    *tiles_m = best_m;
    *tiles_n = best_n;
}

#endif /* NN_THREAD_POOL_H */
