#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

typedef void (*task_fn)(const void* job, long index);

enum { MAX_WORKERS = 15, SPINS = 20000 };

/* state: generation << 32 | front << 16 | back. Tasks [front, back) are unclaimed: the caller
   takes them from the front, workers from the back, so that from one job to the next each
   thread tends to get the same tasks (the same panels of B, still in its core's cache). */
#define TASK_MASK 0xffffULL
#define MAX_TASKS 0xffffL

static _Atomic int busy; /* a caller is using the pool */

static struct {
    _Atomic unsigned long long state;
    _Atomic long done;
    _Atomic(task_fn) fn;
    _Atomic(const void*) job;
    _Atomic int sleepers;
    int workers;
    pid_t pid;
    pthread_mutex_t mu;
    pthread_cond_t wake;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void claim_tasks(unsigned long long gen, int from_back)
{
    for (;;) {
        unsigned long long s = atomic_load(&pool.state);
        long front = (long)(s >> 16 & TASK_MASK), back = (long)(s & TASK_MASK);
        if (s >> 32 != gen || front >= back)
            return;
        unsigned long long next = from_back ? s - 1 : s + (1ULL << 16);
        if (atomic_compare_exchange_weak(&pool.state, &s, next)) {
            /* the job cannot finish before this task does: fn and job are this job's */
            atomic_load(&pool.fn)(atomic_load(&pool.job), from_back ? back - 1 : front);
            atomic_fetch_add(&pool.done, 1);
        }
    }
}

static void* worker(void* unused)
{
    (void)unused;
    unsigned long long seen = atomic_load(&pool.state) >> 32;
    for (;;) {
        for (int spin = 0; spin < SPINS && atomic_load(&pool.state) >> 32 == seen; ++spin)
            cpu_relax();
        pthread_mutex_lock(&pool.mu);
        atomic_fetch_add(&pool.sleepers, 1);
        while (atomic_load(&pool.state) >> 32 == seen)
            pthread_cond_wait(&pool.wake, &pool.mu);
        atomic_fetch_sub(&pool.sleepers, 1);
        pthread_mutex_unlock(&pool.mu);
        seen = atomic_load(&pool.state) >> 32;
        claim_tasks(seen, 1);
    }
    return 0;
}

static void start_workers(int wanted)
{
    if (pool.pid != getpid()) { /* first call, or a forked child: no workers here */
        pthread_mutex_init(&pool.mu, 0);
        pthread_cond_init(&pool.wake, 0);
        atomic_store(&pool.sleepers, 0);
        pool.workers = 0;
        pool.pid = getpid();
    }
    while (pool.workers < wanted && pool.workers < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, worker, 0);
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        ++pool.workers;
    }
}

/* Runs fn(job, i) for i in [0, count) on the caller and up to threads - 1 workers. A caller
   that finds the pool in use (another Python thread's engine) runs its tasks alone. */
static void parallel_for(long count, int threads, task_fn fn, const void* job)
{
    if (threads <= 1 || count <= 1 || count > MAX_TASKS || atomic_exchange(&busy, 1)) {
        for (long i = 0; i < count; ++i)
            fn(job, i);
        return;
    }
    start_workers(threads - 1);
    /* the last job has no task left (front == back), so no worker can claim from it while
       fn and job change; the new generation then opens [0, count) */
    unsigned long long gen = ((atomic_load(&pool.state) >> 32) + 1) & 0xffffffffULL;
    atomic_store(&pool.fn, fn);
    atomic_store(&pool.job, job);
    atomic_store(&pool.done, 0);
    atomic_store(&pool.state, gen << 32 | (unsigned long long)count);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }
    claim_tasks(gen, 0);
    for (int spin = 0; atomic_load(&pool.done) < count; ++spin)
        if (spin > SPINS)
            sched_yield();
        else
            cpu_relax();
    atomic_store(&busy, 0);
}

/* fn(job, i) for i in [0, count) over the pool: the CPU engine's row-split kernels
   (codegen.render's NAME_task). */
void symrnn_parallel(task_fn fn, const void* job, long count, const int* nt)
{
    parallel_for(count, *nt, fn, job);
}

/* parallel_for for the GEMM libraries of each C type, compiled apart (runtime.cpu.gemm_source):
   one pool serves them all. */
void symrnn_parallel_for(long count, int threads, task_fn fn, const void* job)
{
    parallel_for(count, threads, fn, job);
}
