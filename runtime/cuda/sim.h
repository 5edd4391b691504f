/* What CUDA provides to the kernels of codegen's CUDA renderer, for running them on the host
   (runtime/cuda_sim.py). Compiled as C++ before each kernel's CUDA source, unchanged.

   A launch (symrnn_sim_grid) sets blockIdx and threadIdx for every block and thread of the
   grid in turn, in a permuted order, and calls the kernel once for each. Constructs without a
   faithful sequential meaning (barriers, shared memory, warp shuffles, atomics) are refused
   here as compile errors and by runtime/cuda_sim.py before compiling. */
#ifndef SYMRNN_CUDA_SIM_H
#define SYMRNN_CUDA_SIM_H

#include <math.h>
#include <stdint.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict

/* Refused: a thread-by-thread host run cannot honour them. */
#define __syncthreads() SYMRNN_SIM_REFUSES___syncthreads
#define __shared__ SYMRNN_SIM_REFUSES___shared__

struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

static uint3 blockIdx, threadIdx;
static dim3 blockDim, gridDim;

/* The intrinsics by their precise meaning (the GPU's fast forms differ in the last bits).
   glibc declares some of these names itself, so they are macros over symrnn_sim_* functions. */
static inline float symrnn_sim_fdividef(float x, float y) { return x / y; }
static inline float symrnn_sim_saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
static inline float symrnn_sim_rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double symrnn_sim_rsqrt(double x) { return 1.0 / sqrt(x); }
static inline unsigned int symrnn_sim_umulhi(unsigned int a, unsigned int b)
{
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
static inline unsigned long long symrnn_sim_umul64hi(unsigned long long a, unsigned long long b)
{
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanhf(x) tanhf(x)
#define __powf(x, y) powf(x, y)
#define __fdividef(x, y) symrnn_sim_fdividef(x, y)
#define __frcp_rn(x) (1.0f / (x))
#define __saturatef(x) symrnn_sim_saturatef(x)
#define __fmaf_rn(x, y, z) fmaf(x, y, z)
#define __fma_rn(x, y, z) fma(x, y, z)
#define rsqrtf(x) symrnn_sim_rsqrtf(x)
#define rsqrt(x) symrnn_sim_rsqrt(x)
#define __umulhi(a, b) symrnn_sim_umulhi(a, b)
#define __umul64hi(a, b) symrnn_sim_umul64hi(a, b)
#define __popc(x) __builtin_popcount(x)

/* A step coprime to n, about n * 0.618: visiting i * step mod n meets every index once, far
   from the natural order (for n > 2). */
static inline unsigned long long symrnn_sim_step(unsigned long long n)
{
    unsigned long long step = n * 618 / 1000 + 1;
    for (;; ++step) {
        unsigned long long a = step, b = n;
        while (b) { unsigned long long t = a % b; a = b; b = t; }
        if (a == 1) return step % (n ? n : 1);
    }
}

/* Runs `body` once for every thread of the grid, blocks and threads interleaved, in the
   order i * step + n / 3 (mod n), which is neither the natural order nor its reverse. */
template <class Body>
static void symrnn_sim_grid(dim3 grid, dim3 block, Body body)
{
    gridDim = grid;
    blockDim = block;
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    const unsigned long long n = threads * grid.x * grid.y * grid.z;
    const unsigned long long step = symrnn_sim_step(n);
    for (unsigned long long i = 0; i < n; ++i) {
        const unsigned long long j = (i * step + n / 3) % n;
        const unsigned long long b = j / threads, t = j % threads;
        blockIdx.x = (unsigned int)(b % grid.x);
        blockIdx.y = (unsigned int)(b / grid.x % grid.y);
        blockIdx.z = (unsigned int)(b / grid.x / grid.y);
        threadIdx.x = (unsigned int)(t % block.x);
        threadIdx.y = (unsigned int)(t / block.x % block.y);
        threadIdx.z = (unsigned int)(t / block.x / block.y);
        body();
    }
}

#endif
