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
