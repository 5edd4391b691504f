"""The C source of runtime.packed_gemm: the packed-weight GEMM (per step, and blocked for the
products that run once) and the thread pool it shares with the row-split kernels.

Plain C with GCC vector extensions, so `-march=native` picks the vector width the host has;
float and double come from one template.

The pool. A job is a count of tasks (panels of B, or parts of C); the caller publishes it and
then claims tasks itself, one compare-and-swap each, alongside whichever workers are awake. It
waits only for tasks a worker has claimed, never for a worker that has not started: on a busy
machine, where a worker may not get a core for milliseconds, the caller simply does every task
(an OpenMP loop measured 5x slower than one thread there, waiting at its barrier). Idle
workers spin briefly, then sleep on a condition variable. After a fork the child has no
workers; the caller then runs every task itself.
"""
from __future__ import annotations

VECTOR_BYTES = 64  # the widest vector (AVX-512's): what packed operands are aligned to
MR = 6  # rows of C per micro-kernel call
MC, KC = 192, 512  # a block of a product that runs once: rows of A, and of K (measured best
#                    of 48-384 by 128-1024 on an input projection, a data and a weight gradient)
PARALLEL = {  # below these sizes (multiply-adds, or elements packed) one thread is faster
    "PARALLEL_GEMM": 1 << 19, "PARALLEL_PACK": 1 << 16}

WIDTH = r"""
/* A panel of B is NV vectors of VB bytes wide, as many as the host's registers hold in MR x NV
   accumulators (with NV more for the panel's row and one for a broadcast element of A): 6 x 4
   of AVX-512's 32 zmm registers, 6 x 2 of AVX's 16 ymm (or of SSE's xmm). */
#if defined(__AVX512F__)
#define VB 64
#define NV 4
#elif defined(__AVX__)
#define VB 32
#define NV 2
#else
#define VB 16
#define NV 2
#endif
"""

POOL = r"""
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
"""

_TEMPLATE = r"""
typedef real vec_SUF __attribute__((vector_size(VB)));
typedef real uvec_SUF __attribute__((vector_size(VB), aligned(sizeof(real))));
enum { VL_SUF = VB / sizeof(real), NR_SUF = NV * VB / sizeof(real) };

/* Columns of a panel: packed operands are sized by it. */
long symrnn_panel_width_SUF(void)
{
    return NR_SUF;
}

struct pack_SUF { long K, N, ldb; const real* b; int trans; real* packed; };

static void pack_panel_SUF(const void* job, long q)
{
    const struct pack_SUF* j = job;
    long p = q * NR_SUF, width = j->N - p < NR_SUF ? j->N - p : NR_SUF;
    real* panel = j->packed + p * j->K;
    for (long k = 0; k < j->K; ++k) {
        real* dst = panel + k * NR_SUF;
        for (long c = 0; c < width; ++c)
            dst[c] = j->trans ? j->b[(p + c) * j->ldb + k] : j->b[k * j->ldb + p + c];
        for (long c = width; c < NR_SUF; ++c)
            dst[c] = 0;
    }
}

/* B is K x N, element (k, n) at b[k*ldb + n], or at b[n*ldb + k] when trans. */
void symrnn_pack_SUF(long K, long N, const real* b, long ldb, int trans, real* packed,
                     const int* nt)
{
    struct pack_SUF job = {K, N, ldb, b, trans, packed};
    parallel_for((N + NR_SUF - 1) / NR_SUF, K * N >= PARALLEL_PACK ? *nt : 1, pack_panel_SUF,
                 &job);
}

/* C[0:mr, 0:width] = or += A[0:mr, 0:K] @ panel. A's element (r, k) is a[r*lda + k], or
   a[k*lda + r] when ta (a packed block of A: see pack_a). */
static inline __attribute__((always_inline)) void
micro_SUF(const int mr, const int ta, long K, const real* a, long lda, const real* panel,
          real* c, long ldc, long width, int accumulate)
{
    vec_SUF acc[MR][NV];
    for (int r = 0; r < mr; ++r)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = (vec_SUF){0};
    for (long k = 0; k < K; ++k) {
        vec_SUF b[NV];
        for (int v = 0; v < NV; ++v)
            b[v] = *(const vec_SUF*)(panel + k * NR_SUF + v * VL_SUF);
        for (int r = 0; r < mr; ++r) {
            real x = ta ? a[k * lda + r] : a[r * lda + k];
            for (int v = 0; v < NV; ++v)
                acc[r][v] += x * b[v];
        }
    }
    for (int r = 0; r < mr; ++r) {
        real* row = c + r * ldc;
        if (width == NR_SUF) {
            uvec_SUF* out = (uvec_SUF*)row;
            for (int v = 0; v < NV; ++v)
                out[v] = accumulate ? out[v] + acc[r][v] : acc[r][v];
        } else {
            for (long j = 0; j < width; ++j) {
                real x = acc[r][j / VL_SUF][j % VL_SUF];
                row[j] = accumulate ? row[j] + x : x;
            }
        }
    }
}

/* Rows [0, M) of C (width columns) against one panel (K rows), MR rows at a time; row i of
   A starts at a + i * row_step. */
static inline __attribute__((always_inline)) void
rows_SUF(const int ta, long M, long K, const real* a, long lda, long row_step,
         const real* panel, real* c, long ldc, long width, int accumulate)
{
    long i = 0;
    for (; i + MR <= M; i += MR)
        micro_SUF(MR, ta, K, a + i * row_step, lda, panel, c + i * ldc, ldc, width,
                  accumulate);
    switch (M - i) {
#define TAIL(m) case m: micro_SUF(m, ta, K, a + i * row_step, lda, panel, c + i * ldc, ldc, \
                                  width, accumulate); break;
    TAILS
#undef TAIL
    default: break;
    }
}

struct gemm_SUF { int ta, accumulate; long M, N, K, lda, row_step, ldc, panel_rows, parts,
                  part_rows; const real* a; const real* packed; real* c; };

/* Task t: panel t / parts of C, rows [t % parts * part_rows, ...) of it. The packed B's
   panels have panel_rows rows, of which the job uses K from `packed` on: with `a` and `c`
   at its first row, a job can be one block of a larger product. */
static void gemm_task_SUF(const void* job, long t)
{
    const struct gemm_SUF* j = job;
    long p = t / j->parts * NR_SUF, width = j->N - p < NR_SUF ? j->N - p : NR_SUF;
    long i0 = t % j->parts * j->part_rows;
    long rows = j->M - i0 < j->part_rows ? j->M - i0 : j->part_rows;
    const real* panel = j->packed + p * j->panel_rows;
    real* c = j->c + i0 * j->ldc + p;
    if (rows <= 0)
        return;
    const real* a = j->a + i0 * j->row_step;
    if (j->ta)
        rows_SUF(1, rows, j->K, a, j->lda, j->row_step, panel, c, j->ldc, width,
                 j->accumulate);
    else
        rows_SUF(0, rows, j->K, a, j->lda, j->row_step, panel, c, j->ldc, width,
                 j->accumulate);
}

static void run_gemm_SUF(struct gemm_SUF* job, int threads)
{
    long panels = (job->N + NR_SUF - 1) / NR_SUF;
    job->parts = threads > 1 ? (2 * threads + panels - 1) / panels : 1;
    job->part_rows = ((job->M + job->parts - 1) / job->parts + MR - 1) / MR * MR;
    parallel_for(panels * job->parts, threads, gemm_task_SUF, job);
}

/* C (M x N, row stride ldc) = or += A (M x K, row stride lda) @ B, B packed as above: the
   per-step products. The tasks are the panels (each cut into row parts where there would
   otherwise be fewer than two tasks a thread). */
void symrnn_gemm_SUF(long M, long N, long K, const real* a, long lda, const real* packed,
                     real* c, long ldc, int accumulate, const int* nt)
{
    struct gemm_SUF job = {0, accumulate, M, N, K, lda, lda, ldc, K, 0, 0, a, packed, c};
    run_gemm_SUF(&job, M * N * K >= PARALLEL_GEMM ? *nt : 1);
}

struct pack_a_SUF { long rows, kn, lda, chunk; const real* a; real* dst; };

/* Task t: k in [t * chunk, ...) of a block of A stored transposed (element (r, k) at
   a[k*lda + r]), into blocks of MR rows, each kn x MR: (r, k) goes to
   dst[r / MR * MR * kn + k * MR + r % MR]. */
static void pack_a_task_SUF(const void* job, long t)
{
    const struct pack_a_SUF* j = job;
    long lo = t * j->chunk, hi = lo + j->chunk < j->kn ? lo + j->chunk : j->kn;
    for (long k = lo; k < hi; ++k) {
        const real* src = j->a + k * j->lda;
        real* dst = j->dst + k * MR;
        long r0 = 0;
        for (; r0 + MR <= j->rows; r0 += MR, dst += MR * j->kn)
            for (int r = 0; r < MR; ++r)
                dst[r] = src[r0 + r];
        for (long r = 0; r0 + r < j->rows; ++r)
            dst[r] = src[r0 + r];
    }
}

/* The same for the products that run once (input projections, data and weight gradients
   over all steps), op(A) M x K and op(B) K x N (ta, tb: stored transposed), in blocks of
   MC rows by KC of K: the block of A and the panels' KC rows stay in each core's cache while
   every panel passes over them. `scratch` holds a block of A (MC x KC) and KC rows of B's
   panels: each KC rows of B are packed just before their blocks, and a transposed block of A
   (a weight gradient's dG^T) is packed into rows of MR first. */
void symrnn_big_SUF(int ta, int tb, long M, long N, long K, const real* a, long lda,
                    const real* b, long ldb, real* c, long ldc, int accumulate,
                    real* scratch, const int* nt)
{
    int threads = M * N * K >= PARALLEL_GEMM ? *nt : 1;
    real *block = scratch, *packed = scratch + MC * KC;
    long panels = (N + NR_SUF - 1) / NR_SUF;
    for (long k0 = 0; k0 < K; k0 += KC) {
        long kn = K - k0 < KC ? K - k0 : KC;
        struct pack_SUF rows = {kn, N, ldb, tb ? b + k0 : b + k0 * ldb, tb, packed};
        parallel_for(panels, kn * N >= PARALLEL_PACK ? threads : 1, pack_panel_SUF, &rows);
        for (long i0 = 0; i0 < M; i0 += MC) {
            long mn = M - i0 < MC ? M - i0 : MC;
            const real* at = ta ? a + k0 * lda + i0 : a + i0 * lda + k0;
            struct gemm_SUF job = {ta, accumulate || k0 > 0, mn, N, kn, lda, lda, ldc, kn, 0,
                                   0, at, packed, c + i0 * ldc};
            if (ta) {
                long chunk = (kn + 2 * threads - 1) / (2 * threads);
                struct pack_a_SUF pack = {mn, kn, lda, chunk, at, block};
                parallel_for((kn + chunk - 1) / chunk, threads, pack_a_task_SUF, &pack);
                job.a = block, job.lda = MR, job.row_step = kn;
            }
            run_gemm_SUF(&job, threads);
        }
    }
}
"""

C_TYPE = {"f32": "float", "f64": "double"}


def c_source() -> str:
    head = "".join(f"#define {k} {v}L\n" for k, v in PARALLEL.items())
    parts = [f"#define MR {MR}\n#define MC {MC}\n#define KC {KC}\n{head}", WIDTH, POOL]
    for suffix, c_type in C_TYPE.items():
        template = _TEMPLATE.replace("TAILS", " ".join(f"TAIL({m})" for m in range(1, MR)))
        parts.append(f"#define real {c_type}\n" + template.replace("_SUF", f"_{suffix}")
                     + "#undef real\n")
    return "".join(parts)
