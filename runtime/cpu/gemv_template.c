
typedef real vec_SUF __attribute__((vector_size(VB)));
typedef real uvec_SUF __attribute__((vector_size(VB), aligned(sizeof(real))));
enum { VL_SUF = VB / sizeof(real), LINE_SUF = 64 / sizeof(real) };

/* out[q] = (or +=) the sum of v[q]'s lanes, q < nq. With AVX, 4 or 8 of them in a few
   horizontal adds and one store: summed lane by lane, the sums took as long as the products
   at 8 rows of A. */
static inline __attribute__((always_inline)) void
sums_SUF(const vec_SUF* v, const int nq, real* out, int accumulate)
{
#if VB == 32 && defined(__AVX__)
    if (sizeof(real) == sizeof(float) && (nq == 4 || nq == 8)) {
        __m256 u[2];
        for (int h = 0; h < nq / 4; ++h)
            u[h] = _mm256_hadd_ps(_mm256_hadd_ps((__m256)v[4 * h], (__m256)v[4 * h + 1]),
                                  _mm256_hadd_ps((__m256)v[4 * h + 2], (__m256)v[4 * h + 3]));
        if (nq == 4) {
            __m128 s = _mm_add_ps(_mm256_castps256_ps128(u[0]), _mm256_extractf128_ps(u[0], 1));
            _mm_storeu_ps((float*)out, accumulate ? _mm_add_ps(s, _mm_loadu_ps((float*)out)) : s);
        } else {
            __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20),
                                     _mm256_permute2f128_ps(u[0], u[1], 0x31));
            _mm256_storeu_ps((float*)out,
                             accumulate ? _mm256_add_ps(s, _mm256_loadu_ps((float*)out)) : s);
        }
        return;
    }
    if (sizeof(real) == sizeof(double) && (nq == 4 || nq == 8)) {
        for (int h = 0; h < nq / 4; ++h) {
            __m256d t0 = _mm256_hadd_pd((__m256d)v[4 * h], (__m256d)v[4 * h + 1]);
            __m256d t1 = _mm256_hadd_pd((__m256d)v[4 * h + 2], (__m256d)v[4 * h + 3]);
            __m256d s = _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20),
                                      _mm256_permute2f128_pd(t0, t1, 0x31));
            double* o = (double*)out + 4 * h;
            _mm256_storeu_pd(o, accumulate ? _mm256_add_pd(s, _mm256_loadu_pd(o)) : s);
        }
        return;
    }
#endif
    for (int q = 0; q < nq; ++q) {
        real s = 0;
        for (int i = 0; i < VL_SUF; ++i)
            s += v[q][i];
        out[q] = accumulate ? out[q] + s : s;
    }
}

/* c[0, q] (q < 8) = dot(a, w row q) over K, rows of w ldw apart: one row of A against 8 of
   W, a cache line of each row at a time. (Prefetching the next 8 rows' lines as these are
   read ran 20% slower on one thread: the hardware's prefetch keeps up, and the prefetches
   take load slots.) */
static inline __attribute__((always_inline)) void
row8_SUF(long K, const real* a, const real* w, long ldw, real* c, int accumulate)
{
    vec_SUF acc[8];
    for (int q = 0; q < 8; ++q)
        acc[q] = (vec_SUF){0};
    long k = 0;
    for (; k + LINE_SUF <= K; k += LINE_SUF) {
        for (int h = 0; h < LINE_SUF; h += VL_SUF) {
            vec_SUF av = *(const uvec_SUF*)(a + k + h);
            for (int q = 0; q < 8; ++q)
                acc[q] += av * *(const uvec_SUF*)(w + q * ldw + k + h);
        }
    }
    for (; k + VL_SUF <= K; k += VL_SUF) {
        vec_SUF av = *(const uvec_SUF*)(a + k);
        for (int q = 0; q < 8; ++q)
            acc[q] += av * *(const uvec_SUF*)(w + q * ldw + k);
    }
    if (k == K) {
        sums_SUF(acc, 8, c, accumulate);
        return;
    }
    for (int q = 0; q < 8; ++q) {
        real s = 0;
        for (int i = 0; i < VL_SUF; ++i)
            s += acc[q][i];
        for (long t = k; t < K; ++t)
            s += a[t] * w[q * ldw + t];
        c[q] = accumulate ? c[q] + s : s;
    }
}

/* c[r, q] (r < rb, q < nq <= 4) = dot(a row r, w row q) over K, rows of w ldw apart. The K
   tail past the last whole vector is added after the vector sums. Each row of A's vector is
   loaded once into a register (IN_REGISTER): GCC otherwise folded it into each of the nq
   multiply-adds as a memory operand, 12 loads for 8 of them, which ran 1.5x slower at 4 and
   8 rows of A (one thread, fastest of 31 rounds). */
static inline __attribute__((always_inline)) void
block_SUF(const int rb, const int nq, long K, const real* a, long lda, const real* w,
          long ldw, real* c, long ldc, int accumulate)
{
    vec_SUF acc[RB][4];
    for (int r = 0; r < rb; ++r)
        for (int q = 0; q < nq; ++q)
            acc[r][q] = (vec_SUF){0};
    long k = 0;
    for (; k + VL_SUF <= K; k += VL_SUF) {
        vec_SUF wv[4], av[RB];
        for (int q = 0; q < nq; ++q)
            wv[q] = *(const uvec_SUF*)(w + q * ldw + k);
        for (int r = 0; r < rb; ++r) {
            av[r] = *(const uvec_SUF*)(a + r * lda + k);
            IN_REGISTER(av[r]);
        }
        for (int r = 0; r < rb; ++r)
            for (int q = 0; q < nq; ++q)
                acc[r][q] += av[r] * wv[q];
    }
    for (int r = 0; r < rb; ++r) {
        real* out = c + r * ldc;
        if (k == K) {
            sums_SUF(acc[r], nq, out, accumulate);
            continue;
        }
        for (int q = 0; q < nq; ++q) {
            real s = 0;
            for (int i = 0; i < VL_SUF; ++i)
                s += acc[r][q][i];
            for (long t = k; t < K; ++t)
                s += a[r * lda + t] * w[q * ldw + t];
            out[q] = accumulate ? out[q] + s : s;
        }
    }
}

/* Columns [n, n + nq) of C: rows of W n.. against every row of A, RB rows at a time. */
static inline __attribute__((always_inline)) void
rows_SUF(const int nq, const long* j, long n)
{
    const real* a = (const real*)j[8];
    const real* w = (const real*)j[9] + n * j[4];
    real* c = (real*)j[10] + n;
    long M = j[0], r = 0;
    for (; r + RB <= M; r += RB)
        block_SUF(RB, nq, j[2], a + r * j[3], j[3], w, j[4], c + r * j[5], j[5], (int)j[6]);
    switch (M - r) {
/* m < RB always (the loop above leaves fewer than RB rows); the test keeps block_SUF's
   accumulators, RB rows of them, in bounds for the compiler too */
#define TAIL(m) case m: if (m < RB) block_SUF(m, nq, j[2], a + r * j[3], j[3], w, j[4], \
                                              c + r * j[5], j[5], (int)j[6]); break;
    TAILS
#undef TAIL
    default: break;
    }
}

/* Task t: rows [t * block, (t + 1) * block) of W, i.e. those columns of C: 8 rows at a time
   where A has one row, else 4 (their RB rows of A each then stay in registers). */
void symrnn_gemv_task_SUF(const void* job, long t)
{
    const long* j = job;
    const real* w = (const real*)j[9];
    long n = t * j[7], end = n + j[7] < j[1] ? n + j[7] : j[1], ldw = j[4];
    if (j[0] == 1)
        for (; n + 8 <= end; n += 8)
            row8_SUF(j[2], (const real*)j[8], w + n * ldw, ldw, (real*)j[10] + n, (int)j[6]);
    for (; n + 4 <= end; n += 4)
        rows_SUF(4, j, n);
    for (; n < end; ++n)
        rows_SUF(1, j, n);
}

void symrnn_gemv_all_SUF(const long* job, long tasks)
{
    for (long t = 0; t < tasks; ++t)
        symrnn_gemv_task_SUF(job, t);
}
