
typedef real vec_SUF __attribute__((vector_size(VB)));
typedef real uvec_SUF __attribute__((vector_size(VB), aligned(sizeof(real))));
enum { VL_SUF = VB / sizeof(real) };

static inline real hsum_SUF(vec_SUF v)
{
    real s = 0;
    for (int i = 0; i < VL_SUF; ++i)
        s += v[i];
    return s;
}

/* c[r, n0 + q] (r < rb, q < nq <= 4) = dot(a row r, w row n0 + q), over K. */
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
        vec_SUF wv[4];
        for (int q = 0; q < nq; ++q)
            wv[q] = *(const uvec_SUF*)(w + q * ldw + k);
        for (int r = 0; r < rb; ++r) {
            vec_SUF av = *(const uvec_SUF*)(a + r * lda + k);
            for (int q = 0; q < nq; ++q)
                acc[r][q] += av * wv[q];
        }
    }
    for (int r = 0; r < rb; ++r)
        for (int q = 0; q < nq; ++q) {
            real s = hsum_SUF(acc[r][q]);
            for (long t = k; t < K; ++t)
                s += a[r * lda + t] * w[q * ldw + t];
            real* out = c + r * ldc + q;
            *out = accumulate ? *out + s : s;
        }
}

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

/* Task t: rows [t * block, (t + 1) * block) of W, i.e. those columns of C. */
void symrnn_gemv_task_SUF(const void* job, long t)
{
    const long* j = job;
    long n = t * j[7], end = n + j[7] < j[1] ? n + j[7] : j[1];
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
