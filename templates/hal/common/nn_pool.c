/* The thread pool; see nn_pool.h.
 *
 * A job is published through one atomic word per lane (nn_pool.h: thread i's contiguous range
 * of tasks): generation << 32 | the lane's next task. The caller of parallel_for stores the job's
 * fields, then each lane's word with the new generation and its first task, then the new
 * generation in `word` (open: what the workers poll); everyone claims tasks by compare-and-swap
 * on a lane's word, its own lane first, and when all tasks are done the caller stores the next
 * generation with no task left (closed) in every lane before it changes the job's fields
 * again. A claim succeeds only while the lane's word still holds the generation the claimer
 * read the fields under, so a late worker never runs a task of another job.
 *
 * Workers wait for the generation to move: polling it (with a pause instruction) for up to
 * NN_POOL_SPIN_NS of monotonic time, so that the next kernel of a run finds them awake, then
 * on a condition variable. `sleepers` counts the workers that wait on it and have not been
 * signalled yet: a caller that finds it non-zero broadcasts once and clears it (under the
 * mutex), so the jobs that follow while a woken worker is still being scheduled do not pay
 * another wake each. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L         /* clock_gettime */
#endif
#include "nn_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define CLOSED 0xffffffffu
#define POLLS 32                /* pause loops between two looks at the clock */

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

typedef struct {
    pthread_t thread;
    void *scratch;
    uint32_t seen;              /* the generation it last took part in */
} worker;

static struct {
    pthread_mutex_t run;        /* held by the job that uses the workers, and by reconfiguring */
    pthread_mutex_t sleep;      /* with `wake`: workers that wait for a job */
    pthread_cond_t wake;
    _Atomic int threads;        /* workers + 1 */
    _Atomic int sleepers;       /* waiting on `wake`, not signalled yet */
    _Atomic int stop;
    _Alignas(64) _Atomic uint64_t word;   /* generation << 32 (| CLOSED: no job) */
    _Alignas(64) _Atomic int done;        /* tasks of the current job finished */
    _Alignas(64) _Atomic(nn_task_fn) fn;  /* the job; fields change only while lanes are closed */
    _Atomic(const void *) ctx;
    _Atomic int n_tasks;
    _Atomic int n_lanes;                  /* the job's threads: lane i is thread i's range */
    _Atomic size_t scratch_bytes;
    int started;
    worker workers[NN_POOL_MAX_THREADS - 1];
    struct {
        _Alignas(64) _Atomic uint64_t word;   /* generation << 32 | next task (CLOSED: none) */
    } lanes[NN_POOL_MAX_THREADS];
} pool = {.run = PTHREAD_MUTEX_INITIALIZER, .sleep = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER, .threads = 1, .word = CLOSED};

#ifdef NN_PROFILE
static _Atomic int64_t pooled_ns, busy_ns;      /* see pool_counters */
static struct { int step, thread; int64_t start, end; } events[NN_POOL_PROFILE_EVENTS];
static _Atomic int n_events, marked_step;
static _Thread_local int thread_index;          /* 0 on the callers, 1... on the workers */
static int64_t now_ns(void);

static void record(int step, int thread, int64_t start, int64_t end)
{
    const int slot = atomic_fetch_add_explicit(&n_events, 1, memory_order_relaxed);
    if (slot < NN_POOL_PROFILE_EVENTS) {
        events[slot].step = step, events[slot].thread = thread;
        events[slot].start = start, events[slot].end = end;
    }
}
#endif

static uint32_t generation(uint64_t word) { return (uint32_t)(word >> 32); }

/* The end of lane `lane`'s tasks: lanes split [0, n) into n_lanes contiguous ranges. */
static uint32_t lane_end(int n, int lanes, int lane)
{
    return (uint32_t)((long long)n * (lane + 1) / lanes);
}

/* Claims and runs tasks of generation `gen` until none is left (or the job is another one):
 * those of its own lane `home` first, in order, then what is left of the others'. */
static void take_tasks(uint32_t gen, int home, void *scratch, size_t capacity)
{
    const int lanes = atomic_load_explicit(&pool.n_lanes, memory_order_relaxed);
    for (int k = 0; k < lanes; ++k) {   /* a stale count: the claims fail, the gen is another */
        const int lane = (home + k) % lanes;
        _Atomic uint64_t *slot = &pool.lanes[lane].word;
        uint64_t word = atomic_load_explicit(slot, memory_order_acquire);
        for (;;) {
            if (generation(word) != gen || (uint32_t)word == CLOSED)
                return;
            const nn_task_fn fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
            const void *ctx = atomic_load_explicit(&pool.ctx, memory_order_relaxed);
            const int n = atomic_load_explicit(&pool.n_tasks, memory_order_relaxed);
            const int used = atomic_load_explicit(&pool.n_lanes, memory_order_relaxed);
            if (atomic_load_explicit(&pool.scratch_bytes, memory_order_relaxed) > capacity)
                return;
            if (lane >= used || (uint32_t)word >= lane_end(n, used, lane))
                break;               /* this lane is done: the next one */
            if (!atomic_compare_exchange_weak_explicit(slot, &word, word + 1,
                                                       memory_order_acquire,
                                                       memory_order_acquire))
                continue;            /* the fields were read under `gen`: valid if it still is */
#ifdef NN_PROFILE
            const int64_t start = now_ns();
#endif
            fn(ctx, (int)(uint32_t)word, scratch);
#ifdef NN_PROFILE
            const int64_t end = now_ns();
            atomic_fetch_add_explicit(&busy_ns, end - start, memory_order_relaxed);
            record(atomic_load_explicit(&marked_step, memory_order_relaxed), thread_index, start,
                   end);
#endif
            atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
            word = atomic_load_explicit(slot, memory_order_acquire);
        }
    }
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Polls until the generation moves from `seen` or NN_POOL_SPIN_NS have passed; the word. */
static uint64_t poll_generation(uint32_t seen)
{
    const int64_t until = now_ns() + NN_POOL_SPIN_NS;
    for (;;) {
        for (int i = 0; i < POLLS; ++i) {
            const uint64_t word = atomic_load_explicit(&pool.word, memory_order_acquire);
            if (generation(word) != seen || atomic_load_explicit(&pool.stop,
                                                                  memory_order_relaxed))
                return word;
            cpu_relax();
        }
        if (now_ns() >= until)
            return atomic_load(&pool.word);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
#ifdef NN_PROFILE
    thread_index = (int)(w - pool.workers) + 1;
#endif
    for (;;) {
        uint64_t word = poll_generation(w->seen);
        if (generation(word) == w->seen && !atomic_load(&pool.stop)) {
            /* Count itself, then look (see wake_all). A broadcast uncounts every waiter; a
             * spurious wake-up leaves it counted twice (one extra broadcast later). */
            pthread_mutex_lock(&pool.sleep);
            for (;;) {
                atomic_fetch_add(&pool.sleepers, 1);
                word = atomic_load(&pool.word);
                if (generation(word) != w->seen || atomic_load(&pool.stop)) {
                    atomic_fetch_sub(&pool.sleepers, 1);
                    break;
                }
                pthread_cond_wait(&pool.wake, &pool.sleep);
            }
            pthread_mutex_unlock(&pool.sleep);
        }
        if (atomic_load(&pool.stop))
            return NULL;
        w->seen = generation(word);
        take_tasks(w->seen, (int)(w - pool.workers) + 1, w->scratch, NN_POOL_SCRATCH_BYTES);
    }
}

/* After a new generation is stored: a worker that counted itself a sleeper either is seen here
 * (and is woken) or counted itself after this load, and then sees the new generation. */
static void wake_all(void)
{
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep);
        if (atomic_load(&pool.sleepers) > 0) {
            atomic_store(&pool.sleepers, 0);
            pthread_cond_broadcast(&pool.wake);
        }
        pthread_mutex_unlock(&pool.sleep);
    }
}

static void stop_workers(void)
{
    atomic_store(&pool.stop, 1);
    pthread_mutex_lock(&pool.sleep);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.sleep);
    for (int i = 0; i < pool.started; ++i) {
        pthread_join(pool.workers[i].thread, NULL);
        free(pool.workers[i].scratch);
    }
    pool.started = 0;
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.stop, 0);
}

int NN_FN(pool_set_threads)(int n)
{
    if (n < 1)
        return -1;
    n = n < NN_POOL_MAX_THREADS ? n : NN_POOL_MAX_THREADS;
    pthread_mutex_lock(&pool.run);
    if (pool.started != n - 1) {
        stop_workers();
        const uint32_t gen = generation(atomic_load(&pool.word));
        while (pool.started < n - 1) {
            worker *w = &pool.workers[pool.started];
            w->seen = gen;
            w->scratch = aligned_alloc(64, NN_POOL_SCRATCH_BYTES);
            if (!w->scratch)
                break;
            if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
                free(w->scratch);
                break;
            }
            ++pool.started;
        }
    }
    atomic_store(&pool.threads, pool.started + 1);
    pthread_mutex_unlock(&pool.run);
    return pool.started == n - 1 ? 0 : -1;
}

int NN_FN(pool_threads)(void) { return atomic_load(&pool.threads); }

#ifdef NN_PROFILE
void NN_FN(pool_counters)(double *pooled, double *busy)
{
    *pooled = (double)atomic_load(&pooled_ns);
    *busy = (double)atomic_load(&busy_ns);
}

void NN_FN(pool_mark)(int step)
{
    const int64_t now = now_ns();
    atomic_store(&marked_step, step);
    record(step, -1, now, now);
}

int NN_FN(pool_events)(double *out, int capacity)
{
    const int n = atomic_exchange(&n_events, 0);
    for (int i = 0; i < n && i < capacity && i < NN_POOL_PROFILE_EVENTS; ++i) {
        out[4 * i] = events[i].step, out[4 * i + 1] = events[i].thread;
        out[4 * i + 2] = (double)events[i].start, out[4 * i + 3] = (double)events[i].end;
    }
    return n;
}
#endif

void NN_FN(parallel_for)(int n_tasks, nn_task_fn fn, const void *ctx, void *scratch,
                         size_t scratch_bytes)
{
    if (n_tasks > 1 && atomic_load_explicit(&pool.threads, memory_order_relaxed) > 1 &&
        scratch_bytes <= NN_POOL_SCRATCH_BYTES && pthread_mutex_trylock(&pool.run) == 0) {
        if (pool.started > 0) {
#ifdef NN_PROFILE
            const int64_t opened = now_ns();
#endif
            const uint32_t gen = generation(atomic_load(&pool.word)) + 1;
            const int lanes = pool.started + 1;
            atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
            atomic_store_explicit(&pool.ctx, ctx, memory_order_relaxed);
            atomic_store_explicit(&pool.n_tasks, n_tasks, memory_order_relaxed);
            atomic_store_explicit(&pool.n_lanes, lanes, memory_order_relaxed);
            atomic_store_explicit(&pool.scratch_bytes, scratch_bytes, memory_order_relaxed);
            atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
            for (int i = 0; i < lanes; ++i)   /* open each lane at its first task */
                atomic_store_explicit(&pool.lanes[i].word, (uint64_t)gen << 32 |
                                      (i > 0 ? lane_end(n_tasks, lanes, i - 1) : 0u),
                                      memory_order_release);
            atomic_store(&pool.word, (uint64_t)gen << 32);          /* open */
            wake_all();
            take_tasks(gen, 0, scratch, (size_t)-1);
            for (int spins = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < n_tasks;)
                if (++spins < 4096)
                    cpu_relax();
                else
                    sched_yield();        /* a worker holding a task was preempted */
#ifdef NN_PROFILE
            atomic_fetch_add_explicit(&pooled_ns, now_ns() - opened, memory_order_relaxed);
#endif
            for (int i = 0; i < lanes; ++i)
                atomic_store(&pool.lanes[i].word, (uint64_t)(gen + 1) << 32 | CLOSED);
            atomic_store(&pool.word, (uint64_t)(gen + 1) << 32 | CLOSED);
            pthread_mutex_unlock(&pool.run);
            return;
        }
        pthread_mutex_unlock(&pool.run);
    }
    for (int t = 0; t < n_tasks; ++t)          /* one thread: the same tasks, in order */
        fn(ctx, t, scratch);
}
