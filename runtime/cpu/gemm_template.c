
typedef real vec_SUF __attribute__((vector_size(VB)));
typedef real uvec_SUF __attribute__((vector_size(VB), aligned(sizeof(real))));
enum { VL_SUF = VB / sizeof(real), NR_SUF = NV * VB / sizeof(real) };

/* The pool's parallel_for (set once, when the library is loaded). */
void symrnn_use_pool_SUF(parallel_fn fn)
{
    parallel_for = fn;
}

/* Columns of a panel: packed operands are sized by it. */
long symrnn_panel_width_SUF(void)
{
    return NR_SUF;
}

struct pack_SUF { long K, N, ldb; const real* b; int trans; real* packed; };

#if VB == 32 && defined(__AVX__)
/* dst[i * ldd + r] = src[r * ld + i] for r, i < 8 (float): 8 rows of 8 in registers. */
static inline void transpose8_SUF(const float* src, long ld, float* dst, long ldd)
{
    __m256 r[8], t[8], s[8];
    for (int i = 0; i < 8; ++i)
        r[i] = _mm256_loadu_ps(src + i * ld);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(s[i], s[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(s[i], s[i + 4], 0x31));
    }
}
#endif

static void pack_panel_SUF(const void* job, long q)
{
    const struct pack_SUF* j = job;
    long p = q * NR_SUF, width = j->N - p < NR_SUF ? j->N - p : NR_SUF;
    real* panel = j->packed + p * j->K;
    long k0 = 0;
#if VB == 32 && defined(__AVX__)
    /* a transposed B (a row-major weight), float, a whole panel: 8 x 8 tiles transposed in
       registers (element by element, packing a 4 MiB weight took as long as 8 reads of it) */
    if (sizeof(real) == sizeof(float) && NR_SUF % 8 == 0 && j->trans && width == NR_SUF)
        for (; k0 + 8 <= j->K; k0 += 8)
            for (int h = 0; h < NR_SUF; h += 8)
                transpose8_SUF((const float*)(j->b + (p + h) * j->ldb + k0), j->ldb,
                               (float*)(panel + k0 * NR_SUF + h), NR_SUF);
#endif
    for (long k = k0; k < j->K; ++k) {
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

/* C[0:mr, 0:width] = or += A[0:mr, 0:K] @ panel. A's element (r, k) is a[r*lda + k]. */
static inline __attribute__((always_inline)) void
micro_SUF(const int mr, long K, const real* a, long lda, const real* panel, real* c, long ldc,
          long width, int accumulate)
{
    vec_SUF acc[MR][NV];
    for (int r = 0; r < mr; ++r)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = (vec_SUF){0};
    for (long k = 0; k < K; ++k) {
        vec_SUF b[NV];
        for (int v = 0; v < NV; ++v) {
            b[v] = *(const vec_SUF*)(panel + k * NR_SUF + v * VL_SUF);
            if (mr > 1)
                IN_REGISTER(b[v]); /* loaded once for the mr rows (gemm_width.h) */
        }
        for (int r = 0; r < mr; ++r) {
            real x = a[r * lda + k];
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

/* Rows [0, M) of C (width columns) against one panel (K rows), in blocks of at most MR rows
   as even as they go (8 rows as 4 + 4, not 6 + 2). One copy of the micro-kernel per row
   count (MR and each tail): what the library's compile time is. */
static inline __attribute__((always_inline)) void
rows_SUF(long M, long K, const real* a, long lda, const real* panel, real* c, long ldc,
         long width, int accumulate)
{
    long blocks = (M + MR - 1) / MR;
    long even = blocks > 0 ? (M + blocks - 1) / blocks : MR;
    for (long i = 0; i < M;) {
        long m = M - i < even ? M - i : even;
        switch (m) {
#define TAIL(m) case m: micro_SUF(m, K, a + i * lda, lda, panel, c + i * ldc, ldc, width, \
                                  accumulate); break;
        TAILS
#undef TAIL
        default: micro_SUF(MR, K, a + i * lda, lda, panel, c + i * ldc, ldc, width, accumulate);
        }
        i += m;
    }
}

struct gemm_SUF { int accumulate; long M, N, K, lda, ldc, panel_rows, parts, part_rows;
                  const real* a; const real* packed; real* c; };

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
    rows_SUF(rows, j->K, j->a + i0 * j->lda, j->lda, panel, c, j->ldc, width, j->accumulate);
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
    struct gemm_SUF job = {accumulate, M, N, K, lda, ldc, K, 0, 0, a, packed, c};
    run_gemm_SUF(&job, M * N * K >= PARALLEL_GEMM ? *nt : 1);
}

struct pack_a_SUF { long rows, kn, lda, chunk; const real* a; real* dst; };

/* Task t: columns k in [t * chunk, ...) of a block of A stored transposed (element (r, k) at
   a[k*lda + r]), copied row-major: (r, k) goes to dst[r * kn + k], a tile of 16 columns (a
   cache line of float) at a time. */
static void pack_a_task_SUF(const void* job, long t)
{
    const struct pack_a_SUF* j = job;
    long lo = t * j->chunk, hi = lo + j->chunk < j->kn ? lo + j->chunk : j->kn;
    for (long k0 = lo; k0 < hi; k0 += 16) {
        long k1 = k0 + 16 < hi ? k0 + 16 : hi;
        for (long r = 0; r < j->rows; ++r)
            for (long k = k0; k < k1; ++k)
                j->dst[r * j->kn + k] = j->a[k * j->lda + r];
    }
}

/* The same for the products that run once (input projections, data and weight gradients
   over all steps), op(A) M x K and op(B) K x N (ta, tb: stored transposed), in blocks of
   MC rows by KC of K: the block of A and the panels' KC rows stay in each core's cache while
   every panel passes over them. `scratch` holds a block of A (MC x KC) and KC rows of B's
   panels: each KC rows of B are packed just before their blocks, and a transposed block of A
   (a weight gradient's dG^T) is copied row-major first, so that one micro-kernel serves
   every product. */
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
            struct gemm_SUF job = {accumulate || k0 > 0, mn, N, kn, lda, ldc, kn, 0, 0, at,
                                   packed, c + i0 * ldc};
            if (ta) {
                long chunk = (kn + 2 * threads - 1) / (2 * threads);
                struct pack_a_SUF pack = {mn, kn, lda, chunk, at, block};
                parallel_for((kn + chunk - 1) / chunk, threads, pack_a_task_SUF, &pack);
                job.a = block, job.lda = kn;
            }
            run_gemm_SUF(&job, threads);
        }
    }
}

struct colsum_SUF { long rows, cols, ldx, per; const real* x; real* part; };

/* Task t: rows [t * per, ...) of x (rows x cols, row stride ldx) summed into part t (cols),
   read row by row in the order they lie (a task of columns, reading a piece of every row,
   ran at a third of numpy's speed). */
static void colsum_task_SUF(const void* job, long t)
{
    const struct colsum_SUF* j = job;
    long lo = t * j->per, hi = lo + j->per < j->rows ? lo + j->per : j->rows;
    real* acc = j->part + t * j->cols;
    for (long c = 0; c < j->cols; ++c)
        acc[c] = 0;
    for (long r = lo; r < hi; ++r) {
        const real* x = j->x + r * j->ldx;
        for (long c = 0; c < j->cols; ++c)
            acc[c] += x[c];
    }
}

/* y (cols) = the sum of the rows of x: a bias gradient, summed over every step's rows
   (runtime.cpu.engine's `sum` ops). One block of rows a thread, its sums in `scratch`
   (threads x cols), added up in order at the end. */
void symrnn_colsum_SUF(long rows, long cols, const real* x, long ldx, real* y, real* scratch,
                       const int* nt)
{
    long parts = rows * cols >= PARALLEL_PACK && *nt > 1 ? *nt : 1;
    if (parts > COLSUM_PARTS)
        parts = COLSUM_PARTS;
    struct colsum_SUF job = {rows, cols, ldx, (rows + parts - 1) / parts, x, scratch};
    parallel_for(parts, (int)parts, colsum_task_SUF, &job);
    for (long c = 0; c < cols; ++c) {
        real sum = 0;
        for (long t = 0; t < parts; ++t)
            sum += scratch[t * cols + c];
        y[c] = sum;
    }
}
