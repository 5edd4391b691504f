/* A loop step of the CPU engine in one call: `trips` iterations of its body, each body step a
   call of a C function on 64-bit job words whose pointer words move by a constant number of
   bytes per iteration (runtime.cpu.loop_runner builds the plan from the Program's LoopStride).

   plan: the pool's symrnn_parallel, the engine's thread count, n_entries, then per entry
     kind, fn, job, first_only, ntasks, nwords, nmoves, then nmoves pairs (word, bytes per k).
   `job` holds 2 * nwords words: those of iteration 0 (`base`), then the words the callee
   reads (`cur`), each moved word rewritten before every iteration as base + k * step (so a
   plan is reentrant across calls, not across threads: one engine runs one call at a time).
   A `first_only` entry runs in iteration 0 alone (packing the weight of a packed group).
   Mask ids are a table of one row per iteration, its pointer a moved word like any other. */
#include <stdint.h>
#include <string.h>

typedef void (*task_fn)(const void* job, long index);
typedef void (*parallel_fn)(task_fn fn, const void* job, long count, const int* nt);
typedef void (*gemm_fn)(long, long, long, const void*, long, const void*, void*, long, int,
                        const int*);
typedef void (*pack_fn)(long, long, const void*, long, int, void*, const int*);
typedef void (*big_fn)(int, int, long, long, long, const void*, long, const void*, long,
                       void*, long, int, void*, const int*);

enum { SERIAL_TASKS = 0, POOLED_TASKS = 1, PACKED_GEMM = 2, PACK = 3, BIG_GEMM = 4, COPY = 5 };
enum { HEAD = 7, MAX_WORDS = 256 };

static void call_entry(long kind, intptr_t fn, const long* w, long ntasks, parallel_fn par,
                       const int* threads)
{
    switch (kind) {
    case SERIAL_TASKS:
        for (long t = 0; t < ntasks; ++t)
            ((task_fn)fn)(w, t);
        break;
    case POOLED_TASKS:
        par((task_fn)fn, w, ntasks, threads);
        break;
    case PACKED_GEMM:
        ((gemm_fn)fn)(w[0], w[1], w[2], (const void*)w[3], w[4], (const void*)w[5],
                      (void*)w[6], w[7], (int)w[8], (const int*)w[9]);
        break;
    case PACK:
        ((pack_fn)fn)(w[0], w[1], (const void*)w[2], w[3], (int)w[4], (void*)w[5],
                      (const int*)w[6]);
        break;
    case BIG_GEMM:
        ((big_fn)fn)((int)w[0], (int)w[1], w[2], w[3], w[4], (const void*)w[5], w[6],
                     (const void*)w[7], w[8], (void*)w[9], w[10], (int)w[11], (void*)w[12],
                     (const int*)w[13]);
        break;
    case COPY: /* rows, row bytes, src, src row stride (bytes), dst, dst row stride */
        for (long r = 0; r < w[0]; ++r)
            memcpy((char*)w[4] + r * w[5], (const char*)w[2] + r * w[3], (size_t)w[1]);
        break;
    default:
        break;
    }
}

void symrnn_loop_run(const long* plan, long trips)
{
    parallel_fn par = (parallel_fn)(intptr_t)plan[0];
    const int* threads = (const int*)(intptr_t)plan[1];
    const long n = plan[2];
    for (long k = 0; k < trips; ++k) {
        const long* e = plan + 3;
        for (long i = 0; i < n; ++i) {
            long* base = (long*)(intptr_t)e[2];
            const long nwords = e[5], nmoves = e[6];
            long* cur = base + nwords;
            if (!(e[3] && k > 0)) {
                const long* m = e + HEAD;
                for (long j = 0; j < nmoves; ++j)
                    cur[m[2 * j]] = base[m[2 * j]] + k * m[2 * j + 1];
                call_entry(e[0], (intptr_t)e[1], cur, e[4], par, threads);
            }
            e += HEAD + 2 * nmoves;
        }
    }
}

/* The same loop split by rows (runtime.cpu.loop_rows): every body step is a kernel over the
   loop's M rows or a packed product whose A and C rows are those rows, and no step reads a
   row another step writes under a different row number. Each of the pool's threads then runs
   every iteration over its own block of rows, with no wait between steps: its rows of the
   state, of the gates and of their gradients stay in its core's cache. Packing (iteration 0's
   first_only entries) runs first, over the pool. Each task moves a copy of the job words. */
struct rows_job { const long* plan; long trips, m, per, item; };

static const int one_thread = 1;

static void rows_task(const void* job, long g)
{
    const struct rows_job* j = job;
    const long n = j->plan[2], row0 = g * j->per;
    const long rows = j->m - row0 < j->per ? j->m - row0 : j->per;
    long w[MAX_WORDS];
    if (rows <= 0)
        return;
    for (long k = 0; k < j->trips; ++k) {
        const long* e = j->plan + 3;
        for (long i = 0; i < n; ++i) {
            const long* base = (const long*)(intptr_t)e[2];
            const long nwords = e[5], nmoves = e[6];
            if (!e[3]) {
                const long* mv = e + HEAD;
                memcpy(w, base, (size_t)nwords * sizeof(long));
                for (long q = 0; q < nmoves; ++q)
                    w[mv[2 * q]] = base[mv[2 * q]] + k * mv[2 * q + 1];
                if (e[0] == PACKED_GEMM) { /* M, N, K, a, lda, packed, c, ldc, acc, nt */
                    w[0] = rows;
                    w[3] += row0 * w[4] * j->item;
                    w[6] += row0 * w[7] * j->item;
                    w[9] = (long)(intptr_t)&one_thread;
                    call_entry(PACKED_GEMM, (intptr_t)e[1], w, 1, 0, &one_thread);
                } else { /* a kernel's task g over blocks of `per` rows */
                    w[2] = j->per;
                    ((task_fn)e[1])(w, g);
                }
            }
            e += HEAD + 2 * nmoves;
        }
    }
}

/* Split by rows where each thread gets at least `min_rows` rows (returns 1), else step by
   step (returns 0): with fewer, every thread's product reads the whole weight for a few rows,
   bound by its core's share of the bandwidth (runtime.cpu.loop_runner's ROW_SPLIT_MIN). */
int symrnn_loop_rows(const long* plan, long trips, long m, long item, long min_rows)
{
    parallel_fn par = (parallel_fn)(intptr_t)plan[0];
    const int* threads = (const int*)(intptr_t)plan[1];
    const long n = plan[2];
    const long groups = *threads < 1 ? 1 : *threads > m ? m : *threads;
    if ((m + groups - 1) / groups < min_rows) {
        symrnn_loop_run(plan, trips);
        return 0;
    }
    const long* e = plan + 3;
    for (long i = 0; i < n; ++i) { /* packing: iteration 0 only */
        if (e[3])
            call_entry(e[0], (intptr_t)e[1], (long*)(intptr_t)e[2] + e[5], e[4], par, threads);
        e += HEAD + 2 * e[6];
    }
    struct rows_job job = {plan, trips, m, (m + groups - 1) / groups, item};
    par(rows_task, &job, groups, threads);
    return 1;
}

/* The same loop split by columns at one row (runtime.cpu.loop_cols): the body is segments,
   each a GEMV of one row (runtime.cpu.gemv's task) then kernels over one row of `cols`
   columns. A segment is one call of the pool over blocks of `per` columns: task g computes
   the GEMV's rows `offset + g * per ...` for each of the segment's offsets (the outputs its
   kernels read in those columns), then runs each kernel over those columns. Every other
   segment (`back`) runs backwards: each half of the tasks in reverse (the caller claims from
   the front, the worker from the back, so each thread meets first the rows it read last)
   and each task's rows in reverse, SUB rows at a time (the same groups of 8 rows, the same
   sums): some of its rows are still in its core's L2.
   table: cols, then per entry `0, G, G offsets` (a GEMV) or `1, 0` (a kernel). */
struct cols_job { const long *e, *t; long n, per, cols, item, tasks, half, back; };

enum { SUB = 64 }; /* rows of W a backward pass takes at a time (whole groups of 8) */

static void cols_task(const void* job, long g)
{
    const struct cols_job* j = job;
    if (j->back) /* each thread's tasks in reverse: it meets its last rows first */
        g = g < j->half ? j->half - 1 - g : j->half + j->tasks - 1 - g;
    const long c0 = g * j->per, len = j->cols - c0 < j->per ? j->cols - c0 : j->per;
    const long *e = j->e, *t = j->t;
    long w[MAX_WORDS];
    for (long i = 0; i < j->n; ++i) {
        const long* cur = (const long*)(intptr_t)e[2] + e[5];
        memcpy(w, cur, (size_t)e[5] * sizeof(long));
        if (t[0] == 0) { /* the GEMV's words: M N K lda ldw ldc acc block a w c */
            for (long q = 0; q < t[1]; ++q) {
                const long run = t[2 + (j->back ? t[1] - 1 - q : q)] + c0;
                for (long s = j->back ? (len - 1) / SUB * SUB : 0; s >= 0 && s < len;
                     s += j->back ? -SUB : len) {
                    const long row = run + s, rows = j->back && len - s > SUB ? SUB : len - s;
                    w[1] = w[7] = rows;
                    w[9] = cur[9] + row * cur[4] * j->item;
                    w[10] = cur[10] + row * j->item;
                    ((task_fn)e[1])(w, 0);
                }
            }
        } else { /* rows, cols, rows per task, ctl, masks, then (address, ld) per view */
            w[0] = w[2] = 1;
            w[1] = len;
            for (long q = 5; q < e[5]; q += 2)
                w[q] += c0 * j->item;
            ((task_fn)e[1])(w, 0);
        }
        e += HEAD + 2 * e[6];
        t += 2 + t[1];
    }
}

void symrnn_loop_cols(const long* plan, long trips, const long* table, long align, long item)
{
    parallel_fn par = (parallel_fn)(intptr_t)plan[0];
    const int* threads = (const int*)(intptr_t)plan[1];
    const long n = plan[2], nt = *threads < 1 ? 1 : *threads, cols = table[0];
    /* two tasks a thread, whole vectors of columns each */
    const long most = (cols + align - 1) / align, want = 2 * nt < most ? 2 * nt : most;
    const long per = ((cols + want - 1) / want + align - 1) / align * align;
    const long tasks = (cols + per - 1) / per;
    long seg = 0;
    for (long k = 0; k < trips; ++k) {
        const long *e = plan + 3, *t = table + 1;
        for (long i = 0; i < n;) {
            /* backwards every other segment where each thread's tasks are known: one thread
               runs them all, of two the caller claims the first half, the worker the rest */
            struct cols_job job = {e, t, 0, per, cols, item, tasks, nt == 1 ? 0 : tasks / 2,
                                   nt <= 2 && (seg & 1)};
            ++seg;
            do { /* the segment: its GEMV, then each kernel up to the next GEMV */
                long* base = (long*)(intptr_t)e[2];
                long* cur = base + e[5];
                const long* m = e + HEAD;
                for (long q = 0; q < e[6]; ++q)
                    cur[m[2 * q]] = base[m[2 * q]] + k * m[2 * q + 1];
                e += HEAD + 2 * e[6];
                t += 2 + t[1];
                ++job.n;
                ++i;
            } while (i < n && t[0] != 0);
            par(cols_task, &job, tasks, threads);
        }
    }
}
