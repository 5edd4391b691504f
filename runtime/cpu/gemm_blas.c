/* The products that run once through numpy's OpenBLAS (runtime.cpu.packed_gemm's big_call):
   C's larger side cut into one part per thread, each part a single-threaded cblas_?gemm call
   (OpenBLAS is held to one thread inside runtime.cpu.blas.one_pool), the parts shared by the
   pool. `bint` is the BLAS's integer (long for an ILP64 build), `_BITS` its width. */
typedef void (*cblas_SUF_BITS)(int, int, int, bint, bint, bint, real, const real*, bint,
                               const real*, bint, real, real*, bint);

struct blas_SUF_BITS { cblas_SUF_BITS fn; int ta, tb, by_rows; long M, N, K, lda, ldb, ldc,
                       chunk; const real* a; const real* b; real* c; real beta; };

static void blas_part_SUF_BITS(const void* job, long t)
{
    const struct blas_SUF_BITS* j = job;
    long side = j->by_rows ? j->M : j->N, lo = t * j->chunk;
    long hi = lo + j->chunk < side ? lo + j->chunk : side;
    if (lo >= hi)
        return;
    int ta = j->ta ? 112 : 111, tb = j->tb ? 112 : 111; /* CblasTrans, CblasNoTrans */
    if (j->by_rows)
        j->fn(101, ta, tb, hi - lo, j->N, j->K, 1, j->ta ? j->a + lo : j->a + lo * j->lda,
              j->lda, j->b, j->ldb, j->beta, j->c + lo * j->ldc, j->ldc);
    else
        j->fn(101, ta, tb, j->M, hi - lo, j->K, 1, j->a, j->lda,
              j->tb ? j->b + lo * j->ldb : j->b + lo, j->ldb, j->beta, j->c + lo, j->ldc);
}

/* C = or += op(A) @ op(B) (row-major, CblasRowMajor = 101) through `gemm`, numpy's
   cblas_?gemm. */
void symrnn_blas_BITS_SUF(const void* gemm, int ta, int tb, long M, long N, long K,
                          const real* a, long lda, const real* b, long ldb, real* c, long ldc,
                          int accumulate, const int* nt)
{
    int threads = M * N * K >= PARALLEL_GEMM ? *nt : 1;
    int by_rows = M >= N;
    long side = by_rows ? M : N;
    long chunk = ((side + threads - 1) / threads + 15) / 16 * 16;
    struct blas_SUF_BITS job = {(cblas_SUF_BITS)gemm, ta, tb, by_rows, M, N, K, lda, ldb, ldc,
                                chunk, a, b, c, accumulate ? 1 : 0};
    parallel_for((side + chunk - 1) / chunk, threads, blas_part_SUF_BITS, &job);
}
