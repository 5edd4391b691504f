/* A stand-in libcublas (host pointers, cuBLAS's column-major semantics and leading-dimension
   rules) for testing the ctypes binding of runtime.cuda.cublas without a GPU.
   cublasSetStream_v2 accepts only the stream 0x5, so that a test sees the handle reach it. */
#include <stddef.h>
#define AT(X, ld, i, j) X[(i) + (long)(j) * (ld)]
#define OP(X, ld, t, i, j) ((t) ? AT(X, ld, j, i) : AT(X, ld, i, j))
static size_t workspace;
int cublasCreate_v2(void** h) { *h = &workspace; return 0; }
int cublasSetStream_v2(void* h, void* s) { return s == (void*)0x5 ? 0 : 7; }
int cublasSetWorkspace_v2(void* h, void* w, size_t n) { workspace = n; return 0; }
#define GEMM(NAME, T) int NAME(void* h, int ta, int tb, int m, int n, int k, const T* alpha, \
    const T* A, int lda, const T* B, int ldb, const T* beta, T* C, int ldc) { \
  if (lda < (ta ? k : m) || ldb < (tb ? n : k) || ldc < m || lda < 1) return 7; \
  for (int i = 0; i < m; ++i) for (int j = 0; j < n; ++j) { T s = 0; \
    for (int p = 0; p < k; ++p) s += OP(A, lda, ta, i, p) * OP(B, ldb, tb, p, j); \
    AT(C, ldc, i, j) = *alpha * s + (*beta != 0 ? *beta * AT(C, ldc, i, j) : 0); } return 0; }
#define GEAM(NAME, T) int NAME(void* h, int ta, int tb, int m, int n, const T* alpha, \
    const T* A, int lda, const T* beta, const T* B, int ldb, T* C, int ldc) { \
  if (lda < (ta ? n : m) || ldc < m) return 7; \
  for (int i = 0; i < m; ++i) for (int j = 0; j < n; ++j) AT(C, ldc, i, j) = \
    *alpha * OP(A, lda, ta, i, j) + (*beta != 0 ? *beta * OP(B, ldb, tb, i, j) : 0); \
  return 0; }
GEMM(cublasSgemm_v2, float) GEMM(cublasDgemm_v2, double)
GEAM(cublasSgeam, float) GEAM(cublasDgeam, double)
