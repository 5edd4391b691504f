"""The C source of runtime.packed_gemm: the packed-weight GEMM and the threaded cblas split.

Plain C with GCC vector extensions, so `-march=native` picks the vector width the host has;
float and double (and 32- and 64-bit BLAS integers) come from one template. Built with
`-fopenmp` where the compiler has it; without, the pragmas are ignored and it runs on one thread.
"""
from __future__ import annotations

VECTOR_BYTES = 64  # the vector extension width: one zmm register, or two ymm halves
MR = 8  # rows of C per micro-kernel call

_TEMPLATE = r"""
typedef real vec_SUF __attribute__((vector_size(VB)));
typedef real uvec_SUF __attribute__((vector_size(VB), aligned(sizeof(real))));
enum { VL_SUF = VB / sizeof(real), NR_SUF = 2 * VB / sizeof(real) };

/* B is K x N, element (k, n) at b[k*ldb + n], or at b[n*ldb + k] when trans. */
void symrnn_pack_SUF(long K, long N, const real* b, long ldb, int trans, real* packed,
                     const int* nt)
{
    int threads = K * N >= PARALLEL_PACK ? *nt : 1;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (long p = 0; p < N; p += NR_SUF) {
        long width = N - p < NR_SUF ? N - p : NR_SUF;
        real* panel = packed + p * K;
        for (long k = 0; k < K; ++k) {
            real* dst = panel + k * NR_SUF;
            for (long j = 0; j < width; ++j)
                dst[j] = trans ? b[(p + j) * ldb + k] : b[k * ldb + p + j];
            for (long j = width; j < NR_SUF; ++j)
                dst[j] = 0;
        }
    }
}

static inline __attribute__((always_inline)) void
micro_SUF(const int mr, long K, const real* a, long lda, const real* panel, real* c, long ldc,
          long width, int accumulate)
{
    vec_SUF acc[MR][2];
    for (int r = 0; r < mr; ++r)
        acc[r][0] = acc[r][1] = (vec_SUF){0};
    for (long k = 0; k < K; ++k) {
        vec_SUF b0 = *(const vec_SUF*)(panel + k * NR_SUF);
        vec_SUF b1 = *(const vec_SUF*)(panel + k * NR_SUF + VL_SUF);
        for (int r = 0; r < mr; ++r) {
            real x = a[r * lda + k];
            acc[r][0] += x * b0;
            acc[r][1] += x * b1;
        }
    }
    for (int r = 0; r < mr; ++r) {
        real* row = c + r * ldc;
        if (width == NR_SUF) {
            uvec_SUF* out = (uvec_SUF*)row;
            out[0] = accumulate ? out[0] + acc[r][0] : acc[r][0];
            out[1] = accumulate ? out[1] + acc[r][1] : acc[r][1];
        } else {
            for (long j = 0; j < width; ++j) {
                real v = acc[r][j / VL_SUF][j % VL_SUF];
                row[j] = accumulate ? row[j] + v : v;
            }
        }
    }
}

/* C (M x N, row stride ldc) = or += A (M x K, row stride lda) @ B, B packed as above;
   the panels are shared among *nt threads. */
void symrnn_gemm_SUF(long M, long N, long K, const real* a, long lda, const real* packed,
                     real* c, long ldc, int accumulate, const int* nt)
{
    int threads = M * N * K >= PARALLEL_GEMM ? *nt : 1;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (long p = 0; p < N; p += NR_SUF) {
        long width = N - p < NR_SUF ? N - p : NR_SUF;
        const real* panel = packed + p * K;
        long i = 0;
        for (; i + MR <= M; i += MR)
            micro_SUF(MR, K, a + i * lda, lda, panel, c + i * ldc + p, ldc, width, accumulate);
        switch (M - i) {
#define TAIL(m) case m: \
            micro_SUF(m, K, a + i * lda, lda, panel, c + i * ldc + p, ldc, width, accumulate); \
            break;
        TAIL(1) TAIL(2) TAIL(3) TAIL(4) TAIL(5) TAIL(6) TAIL(7)
#undef TAIL
        default: break;
        }
    }
}

typedef void (*cblas_SUF_BITS)(int, int, int, bint, bint, bint, real, const real*, bint,
                               const real*, bint, real, real*, bint);

/* C = A @ B + beta C through numpy's cblas_?gemm (row-major), the larger side of C split
   among *nt threads, each part a single-threaded call. */
void symrnn_blas_SUF_BITS(const void* gemm, int ta, int tb, long M, long N, long K,
                          const real* a, long lda, const real* b, long ldb, real beta,
                          real* c, long ldc, const int* nt)
{
    cblas_SUF_BITS fn = (cblas_SUF_BITS)gemm;
    int threads = M * N * K >= PARALLEL_BLAS ? *nt : 1;
    int by_rows = M > N;
    long side = by_rows ? M : N;
    long chunk = ((side + threads - 1) / threads + 15) / 16 * 16;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int t = 0; t < threads; ++t) {
        long lo = t * chunk, hi = lo + chunk < side ? lo + chunk : side;
        if (lo >= hi)
            continue;
        if (by_rows)
            fn(101, ta ? 112 : 111, tb ? 112 : 111, hi - lo, N, K, 1, ta ? a + lo : a + lo * lda,
               lda, b, ldb, beta, c + lo * ldc, ldc);
        else
            fn(101, ta ? 112 : 111, tb ? 112 : 111, M, hi - lo, K, 1, a, lda,
               tb ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc);
    }
}
"""

SUFFIX = {"float32": "f32", "float64": "f64"}
C_TYPE = {"float32": "float", "float64": "double"}


PARALLEL = {  # below these sizes (multiply-adds, or elements packed) one thread is faster
    "PARALLEL_GEMM": 1 << 20, "PARALLEL_BLAS": 1 << 22, "PARALLEL_PACK": 1 << 16}


def c_source() -> str:
    head = "".join(f"#define {k} {v}L\n" for k, v in PARALLEL.items())
    parts = [f"#define MR {MR}\n#define VB {VECTOR_BYTES}\n{head}"]
    for dtype, suffix in SUFFIX.items():
        packed, blas = _TEMPLATE.split("typedef void (*cblas")
        parts.append(f"#define real {C_TYPE[dtype]}\n" + packed.replace("_SUF", f"_{suffix}"))
        for bits, c_int in ((32, "int"), (64, "long")):
            parts.append(f"#define bint {c_int}\ntypedef void (*cblas"
                         + blas.replace("_SUF_BITS", f"_{suffix}_{bits}") + "#undef bint\n")
        parts.append("#undef real\n")
    return "".join(parts)
