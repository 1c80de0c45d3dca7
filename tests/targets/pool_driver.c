/* Drives hal/common/nn_pool.c alone (compiled with -DNN_PREFIX=t): every task of a job runs
 * exactly once, whatever the task count against the threads' lanes (fewer tasks than threads,
 * uneven lanes), the caller runs the first task of its own lane, the workers really take
 * tasks, jobs of two concurrent callers both complete, idle workers go to sleep (an idle pool
 * uses no CPU) and wake for the next job, and no job allocates. Prints one line per check;
 * exit 0 when all hold. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "nn_pool.h"

#define TASKS 97
#define JOBS 2000

typedef struct {
    _Atomic int runs[TASKS];
    pthread_t who[TASKS];
    int slow;                      /* each task waits this many microseconds */
} job;

static void task(const void *ctx, int t, void *scratch)
{
    job *j = (job *)ctx;
    (void)scratch;
    atomic_fetch_add(&j->runs[t], 1);
    j->who[t] = pthread_self();
    if (j->slow) {
        struct timespec d = {0, 1000L * j->slow};
        nanosleep(&d, NULL);
    }
}

/* `jobs` jobs of `count` tasks (at most TASKS); 0 if a task did not run exactly once, or (with
 * first_here) the first task did not run on this, the calling, thread. */
static int run_count(int jobs, int count, int slow, int *threads_seen, int first_here)
{
    for (int r = 0; r < jobs; ++r) {
        static _Thread_local job j;
        for (int t = 0; t < TASKS; ++t)
            atomic_store(&j.runs[t], 0);
        j.slow = slow;
        t_parallel_for(count, task, &j, NULL, 0);
        for (int t = 0; t < TASKS; ++t)
            if (atomic_load(&j.runs[t]) != (t < count))
                return 0;
        if (first_here && !pthread_equal(j.who[0], pthread_self()))
            return 0;
        if (threads_seen) {
            int distinct = 0;
            for (int t = 0; t < count; ++t) {
                int seen = 0;
                for (int u = 0; u < t; ++u)
                    seen |= pthread_equal(j.who[u], j.who[t]);
                distinct += !seen;
            }
            *threads_seen = distinct > *threads_seen ? distinct : *threads_seen;
        }
    }
    return 1;
}

static int run_jobs(int jobs, int slow, int *threads_seen)
{
    return run_count(jobs, TASKS, slow, threads_seen, 0);
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU time the process uses during one second of idling after a burst of jobs: the workers
 * poll for NN_POOL_SPIN_NS, then sleep (polling forever would cost up to a second each). */
static double idle_cpu_seconds(void)
{
    run_jobs(100, 0, NULL);
    const double before = cpu_seconds();
    struct timespec second = {1, 0};
    nanosleep(&second, NULL);
    return cpu_seconds() - before;
}

static void *caller(void *arg)
{
    *(int *)arg = run_jobs(JOBS, 0, NULL);
    return NULL;
}

int main(void)
{
    int failures = 0;
#define CHECK(cond, what) do { int ok_ = (cond); printf("%s %s\n", ok_ ? "ok" : "FAIL", what); \
                               failures += !ok_; } while (0)
    CHECK(t_pool_threads() == 1 && run_jobs(10, 0, NULL), "one thread: every task once");
    CHECK(t_pool_set_threads(0) != 0, "pool_set_threads(0) refused");
    for (int n = 2; n <= 4; ++n) {
        CHECK(t_pool_set_threads(n) == 0 && t_pool_threads() == n, "pool_set_threads(n)");
        CHECK(run_jobs(JOBS, 0, NULL), "many short jobs: every task once");
        int seen = 0;
        CHECK(run_jobs(5, 200, &seen) && seen == n, "slow tasks: all threads take part");
        CHECK(run_count(JOBS, 2, 0, NULL, 0) && run_count(JOBS, 3, 0, NULL, 0) &&
              run_count(JOBS, n + 1, 0, NULL, 0) && run_count(JOBS, 2 * n - 1, 0, NULL, 0),
              "2, 3, n + 1, 2n - 1 tasks (empty and uneven lanes): every task once");
        CHECK(run_count(5, 4 * n, 200, NULL, 1), "the caller runs its lane's first task");
    }
    CHECK(t_pool_set_threads(4) == 0 && idle_cpu_seconds() < 0.05, "idle workers sleep");
    int woken = 0;
    CHECK(run_jobs(5, 200, &woken) && woken == 4, "sleeping workers wake for the next job");
    int ok[2] = {0, 0};
    pthread_t th[2];
    for (int i = 0; i < 2; ++i)
        pthread_create(&th[i], NULL, caller, &ok[i]);
    for (int i = 0; i < 2; ++i)
        pthread_join(th[i], NULL);
    CHECK(ok[0] && ok[1], "two concurrent callers: every task once");
    CHECK(t_pool_set_threads(1) == 0 && t_pool_threads() == 1 && run_jobs(10, 0, NULL),
          "back to one thread");
    CHECK(t_pool_set_threads(1000) == 0 && t_pool_threads() == NN_POOL_MAX_THREADS,
          "more than NN_POOL_MAX_THREADS: clamped");
    t_pool_set_threads(1);
    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures != 0;
}
