
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

#if defined(__AVX__)
#include <immintrin.h> /* the AVX paths of the packing and of the GEMV's sums */
#endif
/* IN_REGISTER(v): v stays in a vector register here. A value read by several multiply-adds is
   otherwise folded by GCC into each of them as a memory operand, one load each: what the
   micro-kernels' tails and the GEMV's blocks did, load-bound at 1.5 loads per multiply-add. */
#if defined(__GNUC__) && defined(__AVX512F__)
#define IN_REGISTER(v) __asm__("" : "+v"(v))
#elif defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define IN_REGISTER(v) __asm__("" : "+x"(v))
#else
#define IN_REGISTER(v) ((void)0)
#endif
