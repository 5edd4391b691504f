/* ===== kernel symrnn_kbf44485b8275108c: float32, 17 in, 8 out, 1 masks ===== */
#define SYMRNN_INLINE static inline
#include <math.h>

#ifndef SYMRNN_INLINE
#define SYMRNN_INLINE static inline
#endif
#ifdef __CUDACC_RTC__
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

/* Philox-4x32-10 draw for (seed, mask_id, index): word index & 3 of block index >> 2; see
   runtime/rng.py for the algorithm. */
SYMRNN_INLINE uint32_t symrnn_philox_bits(uint64_t seed, uint32_t mask_id, uint64_t index)
{
    const uint64_t block = index >> 2;
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = mask_id, c3 = 0u;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const uint32_t word = (uint32_t)index & 3u;
    return word == 0u ? c0 : word == 1u ? c1 : word == 2u ? c2 : c3;
}
#define SYMRNN_CHUNK 256

/* symrnn_philox_fill: the draws of the n consecutive indices start, start + 1, ... into out,
   the bits of symrnn_philox_bits: 16 blocks (AVX-512) or 8 (AVX2) at a time, one per lane,
   each block four draws. C only (GCC vector extensions; no intrinsics header, which costs half
   a second per compile). Each 32x32 -> 64-bit product comes from vpmuludq on the even or the
   odd lanes, which GCC does not find by itself: its vector code for symrnn_philox_bits
   multiplies in 64-bit lanes. */
#if defined(__AVX512F__)
#define SYMRNN_PX_LANES 16
#define SYMRNN_PX_REG "v"
#elif defined(__AVX2__)
#define SYMRNN_PX_LANES 8
#define SYMRNN_PX_REG "x"
#endif

#ifdef SYMRNN_PX_LANES
typedef uint32_t symrnn_px __attribute__((vector_size(4 * SYMRNN_PX_LANES)));
typedef uint64_t symrnn_pq __attribute__((vector_size(4 * SYMRNN_PX_LANES)));

/* The 64-bit products of the even 32-bit lanes of a and b. */
static inline symrnn_pq symrnn_px_mul(symrnn_px a, symrnn_px b)
{
    symrnn_pq r;
    __asm__("vpmuludq %2, %1, %0" : "=" SYMRNN_PX_REG(r) : SYMRNN_PX_REG(a), SYMRNN_PX_REG(b));
    return r;
}

/* The four words of the blocks block, block + 1, ..., one block per lane. */
static inline void symrnn_philox_lanes(uint64_t seed, uint32_t mask_id, uint64_t block,
                                       symrnn_px words[4])
{
    symrnn_px c0, zero = {0};
    for (int i = 0; i < SYMRNN_PX_LANES; ++i)
        c0[i] = (uint32_t)block + (uint32_t)i;
    /* the high counter word, plus 1 in the lanes whose low word wrapped */
    symrnn_px c1 = (uint32_t)(block >> 32) - (symrnn_px)(c0 < (uint32_t)block);
    symrnn_px c2 = zero + mask_id, c3 = zero;
    const symrnn_px m0 = zero + 0xD2511F53u, m1 = zero + 0xCD9E8D57u;
    const symrnn_pq low = (symrnn_pq){0} + 0xffffffffu;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const symrnn_pq e0 = symrnn_px_mul(c0, m0);
        const symrnn_pq o0 = symrnn_px_mul((symrnn_px)((symrnn_pq)c0 >> 32), m0);
        const symrnn_pq e1 = symrnn_px_mul(c2, m1);
        const symrnn_pq o1 = symrnn_px_mul((symrnn_px)((symrnn_pq)c2 >> 32), m1);
        c0 = (symrnn_px)(e1 >> 32 | (o1 & ~low)) ^ c1 ^ k0; /* hi(p1) ^ c1 ^ k0 */
        c2 = (symrnn_px)(e0 >> 32 | (o0 & ~low)) ^ c3 ^ k1; /* hi(p0) ^ c3 ^ k1 */
        c1 = (symrnn_px)((e1 & low) | o1 << 32);             /* lo(p1) */
        c3 = (symrnn_px)((e0 & low) | o0 << 32);             /* lo(p0) */
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    words[0] = c0;
    words[1] = c1;
    words[2] = c2;
    words[3] = c3;
}
#endif

/* Not inlined: one copy per kernel, however many masks it draws (compile time). */
static __attribute__((noinline)) void symrnn_philox_fill(uint64_t seed, uint32_t mask_id,
                                                         uint64_t start, long n, uint32_t* out)
{
    long i = 0;
#ifdef SYMRNN_PX_LANES
    for (; i < n && ((start + (uint64_t)i) & 3u); ++i) /* up to the first whole block */
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
    /* whole vectors of blocks, short of the wrap of the index at 2**64 (blocks wrap at 2**62) */
    for (; i + 4 * SYMRNN_PX_LANES <= n
           && start + (uint64_t)i <= (uint64_t)-1 - 4 * SYMRNN_PX_LANES;
         i += 4 * SYMRNN_PX_LANES) {
        symrnn_px words[4];
        symrnn_philox_lanes(seed, mask_id, (start + (uint64_t)i) >> 2, words);
        for (int b = 0; b < SYMRNN_PX_LANES; ++b)
            for (int w = 0; w < 4; ++w)
                out[i + 4 * b + w] = words[w][b];
    }
#endif
    for (; i < n; ++i)
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
}

#if defined(SYMRNN_LIBMVEC) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double tanh(double);
#endif
#endif

/* e^x for sigmoid and tanh: Cephes expf's reduction and polynomial, without branches. Below
   -87.3 it returns e^-87.3 and from 88.4 up +inf; NaN passes through (every comparison with it
   is false). */
SYMRNN_INLINE float symrnn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 89.0f ? 89.0f : x;
    const float k = __builtin_rintf(x * 0x1.715476p+0f); /* x / ln 2 */
    float r = __builtin_fmaf(k, -0.693359375f, x); /* x - k ln 2, ln 2 in two parts */
    r = __builtin_fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* 2^k; k = 128 gives +inf */
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above. */
SYMRNN_INLINE float symrnn_fast_tanhf(float x)
{
    const float a = __builtin_fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = __builtin_fmaf(p, z, 2.06390887954e-2f);
    p = __builtin_fmaf(p, z, -5.37397155531e-2f);
    p = __builtin_fmaf(p, z, 1.33314422036e-1f);
    p = __builtin_fmaf(p, z, -3.33332819422e-1f);
    const float small = __builtin_fmaf(p * z, x, x);
    const float e = symrnn_fast_expf(2.0f * a);
    const float large = __builtin_copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : large;
}

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + symrnn_fast_expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return symrnn_fast_tanhf(x); }
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) { return x < (real)0 ? (real)0 : x; }
SYMRNN_INLINE real symrnn_exp(real x) { return expf(x); }
SYMRNN_INLINE real symrnn_log(real x) { return logf(x); }

/* Inverted dropout's factor: 0 where the draw `bits` is below the threshold, else scale; 1 at
   inference. `train` is a literal 0 or 1: each mode has its own copy of the loops. */
SYMRNN_INLINE real symrnn_dropout(int train, uint32_t bits, uint32_t threshold, real scale)
{
    return train ? (bits < threshold ? (real)0 : scale) : (real)1;
}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(int train, uint32_t bits, uint32_t threshold, real p,
                                  real prev, real next)
{
    return train ? (bits < threshold ? prev : next) : p * prev + ((real)1 - p) * next;
}

static void symrnn_kbf44485b8275108c_rows(long r0, long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, const real* in11, long ld_in11, const real* in12, long ld_in12, const real* in13, long ld_in13, const real* in14, long ld_in14, const real* in15, long ld_in15, const real* in16, long ld_in16, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, real* out6, long ld_out6, real* out7, long ld_out7, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = r0; r < rows; ++r) {
            for (long c0 = 0; c0 < cols; c0 += SYMRNN_CHUNK) {
                const long c1 = cols - c0 < SYMRNN_CHUNK ? cols : c0 + SYMRNN_CHUNK;
                const uint64_t first = (uint64_t)r * (uint64_t)cols + (uint64_t)c0;
                uint32_t bits0[SYMRNN_CHUNK];
                symrnn_philox_fill(ctl[0], masks[0], first, c1 - c0, bits0);
                #pragma omp simd
                for (long c = c0; c < c1; ++c) {
                    const real v0 = in0[r * ld_in0 + c];
                    const real v1 = in1[r * ld_in1 + c];
                    const real v2 = (v0 + v1);
                    const real v3 = in2[r * ld_in2 + c];
                    const real v4 = in3[r * ld_in3 + c];
                    const real v5 = (v3 + v4);
                    const real v6 = (v2 + v5);
                    const real v7 = symrnn_sigmoid(v6);
                    out0[r * ld_out0 + c] = v7;
                    const real v8 = in4[r * ld_in4 + c];
                    const real v9 = in5[r * ld_in5 + c];
                    const real v10 = (v8 + v9);
                    const real v11 = in6[r * ld_in6 + c];
                    const real v12 = in7[r * ld_in7 + c];
                    const real v13 = (v11 + v12);
                    const real v14 = (v10 + v13);
                    const real v15 = symrnn_sigmoid(v14);
                    out1[r * ld_out1 + c] = v15;
                    const real v16 = in8[r * ld_in8 + c];
                    const real v17 = in9[r * ld_in9 + c];
                    const real v18 = (v16 + v17);
                    const real v19 = in10[r * ld_in10 + c];
                    const real v20 = in11[r * ld_in11 + c];
                    const real v21 = (v19 + v20);
                    const real v22 = (v18 + v21);
                    const real v23 = symrnn_sigmoid(v22);
                    out2[r * ld_out2 + c] = v23;
                    const real v24 = in12[r * ld_in12 + c];
                    const real v25 = (v15 * v24);
                    const real v26 = in13[r * ld_in13 + c];
                    const real v27 = in14[r * ld_in14 + c];
                    const real v28 = (v26 + v27);
                    const real v29 = in15[r * ld_in15 + c];
                    const real v30 = in16[r * ld_in16 + c];
                    const real v31 = (v29 + v30);
                    const real v32 = (v28 + v31);
                    const real v33 = symrnn_tanh(v32);
                    out3[r * ld_out3 + c] = v33;
                    const real v34 = (v7 * v33);
                    const real v35 = (v25 + v34);
                    out4[r * ld_out4 + c] = v35;
                    const real v36 = symrnn_tanh(v35);
                    out5[r * ld_out5 + c] = v36;
                    const real v37 = (v23 * v36);
                    out6[r * ld_out6 + c] = v37;
                    const real v38 = (v37 * symrnn_dropout(1, bits0[c - c0], 1073741824u, 0x1.555556p+0f));
                    out7[r * ld_out7 + c] = v38;
                }
            }
        }
    } else {
        for (long r = r0; r < rows; ++r) {
            #pragma omp simd
            for (long c = 0; c < cols; ++c) {
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = in1[r * ld_in1 + c];
                const real v2 = (v0 + v1);
                const real v3 = in2[r * ld_in2 + c];
                const real v4 = in3[r * ld_in3 + c];
                const real v5 = (v3 + v4);
                const real v6 = (v2 + v5);
                const real v7 = symrnn_sigmoid(v6);
                out0[r * ld_out0 + c] = v7;
                const real v8 = in4[r * ld_in4 + c];
                const real v9 = in5[r * ld_in5 + c];
                const real v10 = (v8 + v9);
                const real v11 = in6[r * ld_in6 + c];
                const real v12 = in7[r * ld_in7 + c];
                const real v13 = (v11 + v12);
                const real v14 = (v10 + v13);
                const real v15 = symrnn_sigmoid(v14);
                out1[r * ld_out1 + c] = v15;
                const real v16 = in8[r * ld_in8 + c];
                const real v17 = in9[r * ld_in9 + c];
                const real v18 = (v16 + v17);
                const real v19 = in10[r * ld_in10 + c];
                const real v20 = in11[r * ld_in11 + c];
                const real v21 = (v19 + v20);
                const real v22 = (v18 + v21);
                const real v23 = symrnn_sigmoid(v22);
                out2[r * ld_out2 + c] = v23;
                const real v24 = in12[r * ld_in12 + c];
                const real v25 = (v15 * v24);
                const real v26 = in13[r * ld_in13 + c];
                const real v27 = in14[r * ld_in14 + c];
                const real v28 = (v26 + v27);
                const real v29 = in15[r * ld_in15 + c];
                const real v30 = in16[r * ld_in16 + c];
                const real v31 = (v29 + v30);
                const real v32 = (v28 + v31);
                const real v33 = symrnn_tanh(v32);
                out3[r * ld_out3 + c] = v33;
                const real v34 = (v7 * v33);
                const real v35 = (v25 + v34);
                out4[r * ld_out4 + c] = v35;
                const real v36 = symrnn_tanh(v35);
                out5[r * ld_out5 + c] = v36;
                const real v37 = (v23 * v36);
                out6[r * ld_out6 + c] = v37;
                const real v38 = (v37 * symrnn_dropout(0, 0u, 1073741824u, 0x1.555556p+0f));
                out7[r * ld_out7 + c] = v38;
            }
        }
    }
}

void symrnn_kbf44485b8275108c(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, const real* in11, long ld_in11, const real* in12, long ld_in12, const real* in13, long ld_in13, const real* in14, long ld_in14, const real* in15, long ld_in15, const real* in16, long ld_in16, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, real* out6, long ld_out6, real* out7, long ld_out7, const uint64_t* ctl, const uint32_t* masks)
{
    symrnn_kbf44485b8275108c_rows(0, rows, cols, in0, ld_in0, in1, ld_in1, in2, ld_in2, in3, ld_in3, in4, ld_in4, in5, ld_in5, in6, ld_in6, in7, ld_in7, in8, ld_in8, in9, ld_in9, in10, ld_in10, in11, ld_in11, in12, ld_in12, in13, ld_in13, in14, ld_in14, in15, ld_in15, in16, ld_in16, out0, ld_out0, out1, ld_out1, out2, ld_out2, out3, ld_out3, out4, ld_out4, out5, ld_out5, out6, ld_out6, out7, ld_out7, ctl, masks);
}

void symrnn_kbf44485b8275108c_task(const void* job, long task)
{
    const long* w = (const long*)job;
    const long r0 = task * w[2], r1 = r0 + w[2] < w[0] ? r0 + w[2] : w[0];
    symrnn_kbf44485b8275108c_rows(r0, r1, w[1], (const real*)(intptr_t)w[5], w[6], (const real*)(intptr_t)w[7], w[8], (const real*)(intptr_t)w[9], w[10], (const real*)(intptr_t)w[11], w[12], (const real*)(intptr_t)w[13], w[14], (const real*)(intptr_t)w[15], w[16], (const real*)(intptr_t)w[17], w[18], (const real*)(intptr_t)w[19], w[20], (const real*)(intptr_t)w[21], w[22], (const real*)(intptr_t)w[23], w[24], (const real*)(intptr_t)w[25], w[26], (const real*)(intptr_t)w[27], w[28], (const real*)(intptr_t)w[29], w[30], (const real*)(intptr_t)w[31], w[32], (const real*)(intptr_t)w[33], w[34], (const real*)(intptr_t)w[35], w[36], (const real*)(intptr_t)w[37], w[38], (real*)(intptr_t)w[39], w[40], (real*)(intptr_t)w[41], w[42], (real*)(intptr_t)w[43], w[44], (real*)(intptr_t)w[45], w[46], (real*)(intptr_t)w[47], w[48], (real*)(intptr_t)w[49], w[50], (real*)(intptr_t)w[51], w[52], (real*)(intptr_t)w[53], w[54], (const uint64_t*)(intptr_t)w[3], (const uint32_t*)(intptr_t)w[4]);
}

/* ===== kernel symrnn_k32bb836aa94965bd: float32, 17 in, 8 out, 0 masks ===== */
#define SYMRNN_INLINE static inline
#include <math.h>

#ifndef SYMRNN_INLINE
#define SYMRNN_INLINE static inline
#endif
#ifdef __CUDACC_RTC__
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

/* Philox-4x32-10 draw for (seed, mask_id, index): word index & 3 of block index >> 2; see
   runtime/rng.py for the algorithm. */
SYMRNN_INLINE uint32_t symrnn_philox_bits(uint64_t seed, uint32_t mask_id, uint64_t index)
{
    const uint64_t block = index >> 2;
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = mask_id, c3 = 0u;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const uint32_t word = (uint32_t)index & 3u;
    return word == 0u ? c0 : word == 1u ? c1 : word == 2u ? c2 : c3;
}
#define SYMRNN_CHUNK 256

/* symrnn_philox_fill: the draws of the n consecutive indices start, start + 1, ... into out,
   the bits of symrnn_philox_bits: 16 blocks (AVX-512) or 8 (AVX2) at a time, one per lane,
   each block four draws. C only (GCC vector extensions; no intrinsics header, which costs half
   a second per compile). Each 32x32 -> 64-bit product comes from vpmuludq on the even or the
   odd lanes, which GCC does not find by itself: its vector code for symrnn_philox_bits
   multiplies in 64-bit lanes. */
#if defined(__AVX512F__)
#define SYMRNN_PX_LANES 16
#define SYMRNN_PX_REG "v"
#elif defined(__AVX2__)
#define SYMRNN_PX_LANES 8
#define SYMRNN_PX_REG "x"
#endif

#ifdef SYMRNN_PX_LANES
typedef uint32_t symrnn_px __attribute__((vector_size(4 * SYMRNN_PX_LANES)));
typedef uint64_t symrnn_pq __attribute__((vector_size(4 * SYMRNN_PX_LANES)));

/* The 64-bit products of the even 32-bit lanes of a and b. */
static inline symrnn_pq symrnn_px_mul(symrnn_px a, symrnn_px b)
{
    symrnn_pq r;
    __asm__("vpmuludq %2, %1, %0" : "=" SYMRNN_PX_REG(r) : SYMRNN_PX_REG(a), SYMRNN_PX_REG(b));
    return r;
}

/* The four words of the blocks block, block + 1, ..., one block per lane. */
static inline void symrnn_philox_lanes(uint64_t seed, uint32_t mask_id, uint64_t block,
                                       symrnn_px words[4])
{
    symrnn_px c0, zero = {0};
    for (int i = 0; i < SYMRNN_PX_LANES; ++i)
        c0[i] = (uint32_t)block + (uint32_t)i;
    /* the high counter word, plus 1 in the lanes whose low word wrapped */
    symrnn_px c1 = (uint32_t)(block >> 32) - (symrnn_px)(c0 < (uint32_t)block);
    symrnn_px c2 = zero + mask_id, c3 = zero;
    const symrnn_px m0 = zero + 0xD2511F53u, m1 = zero + 0xCD9E8D57u;
    const symrnn_pq low = (symrnn_pq){0} + 0xffffffffu;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const symrnn_pq e0 = symrnn_px_mul(c0, m0);
        const symrnn_pq o0 = symrnn_px_mul((symrnn_px)((symrnn_pq)c0 >> 32), m0);
        const symrnn_pq e1 = symrnn_px_mul(c2, m1);
        const symrnn_pq o1 = symrnn_px_mul((symrnn_px)((symrnn_pq)c2 >> 32), m1);
        c0 = (symrnn_px)(e1 >> 32 | (o1 & ~low)) ^ c1 ^ k0; /* hi(p1) ^ c1 ^ k0 */
        c2 = (symrnn_px)(e0 >> 32 | (o0 & ~low)) ^ c3 ^ k1; /* hi(p0) ^ c3 ^ k1 */
        c1 = (symrnn_px)((e1 & low) | o1 << 32);             /* lo(p1) */
        c3 = (symrnn_px)((e0 & low) | o0 << 32);             /* lo(p0) */
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    words[0] = c0;
    words[1] = c1;
    words[2] = c2;
    words[3] = c3;
}
#endif

/* Not inlined: one copy per kernel, however many masks it draws (compile time). */
static __attribute__((noinline)) void symrnn_philox_fill(uint64_t seed, uint32_t mask_id,
                                                         uint64_t start, long n, uint32_t* out)
{
    long i = 0;
#ifdef SYMRNN_PX_LANES
    for (; i < n && ((start + (uint64_t)i) & 3u); ++i) /* up to the first whole block */
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
    /* whole vectors of blocks, short of the wrap of the index at 2**64 (blocks wrap at 2**62) */
    for (; i + 4 * SYMRNN_PX_LANES <= n
           && start + (uint64_t)i <= (uint64_t)-1 - 4 * SYMRNN_PX_LANES;
         i += 4 * SYMRNN_PX_LANES) {
        symrnn_px words[4];
        symrnn_philox_lanes(seed, mask_id, (start + (uint64_t)i) >> 2, words);
        for (int b = 0; b < SYMRNN_PX_LANES; ++b)
            for (int w = 0; w < 4; ++w)
                out[i + 4 * b + w] = words[w][b];
    }
#endif
    for (; i < n; ++i)
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
}

#if defined(SYMRNN_LIBMVEC) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double tanh(double);
#endif
#endif

/* e^x for sigmoid and tanh: Cephes expf's reduction and polynomial, without branches. Below
   -87.3 it returns e^-87.3 and from 88.4 up +inf; NaN passes through (every comparison with it
   is false). */
SYMRNN_INLINE float symrnn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 89.0f ? 89.0f : x;
    const float k = __builtin_rintf(x * 0x1.715476p+0f); /* x / ln 2 */
    float r = __builtin_fmaf(k, -0.693359375f, x); /* x - k ln 2, ln 2 in two parts */
    r = __builtin_fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* 2^k; k = 128 gives +inf */
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above. */
SYMRNN_INLINE float symrnn_fast_tanhf(float x)
{
    const float a = __builtin_fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = __builtin_fmaf(p, z, 2.06390887954e-2f);
    p = __builtin_fmaf(p, z, -5.37397155531e-2f);
    p = __builtin_fmaf(p, z, 1.33314422036e-1f);
    p = __builtin_fmaf(p, z, -3.33332819422e-1f);
    const float small = __builtin_fmaf(p * z, x, x);
    const float e = symrnn_fast_expf(2.0f * a);
    const float large = __builtin_copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : large;
}

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + symrnn_fast_expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return symrnn_fast_tanhf(x); }
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) { return x < (real)0 ? (real)0 : x; }
SYMRNN_INLINE real symrnn_exp(real x) { return expf(x); }
SYMRNN_INLINE real symrnn_log(real x) { return logf(x); }

/* Inverted dropout's factor: 0 where the draw `bits` is below the threshold, else scale; 1 at
   inference. `train` is a literal 0 or 1: each mode has its own copy of the loops. */
SYMRNN_INLINE real symrnn_dropout(int train, uint32_t bits, uint32_t threshold, real scale)
{
    return train ? (bits < threshold ? (real)0 : scale) : (real)1;
}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(int train, uint32_t bits, uint32_t threshold, real p,
                                  real prev, real next)
{
    return train ? (bits < threshold ? prev : next) : p * prev + ((real)1 - p) * next;
}

static void symrnn_k32bb836aa94965bd_rows(long r0, long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, const real* in11, long ld_in11, const real* in12, long ld_in12, const real* in13, long ld_in13, const real* in14, long ld_in14, const real* in15, long ld_in15, const real* in16, long ld_in16, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, real* out6, long ld_out6, real* out7, long ld_out7, const uint64_t* ctl, const uint32_t* masks)
{
    for (long r = r0; r < rows; ++r) {
        #pragma omp simd
        for (long c = 0; c < cols; ++c) {
            const real v0 = in0[r * ld_in0 + c];
            const real v1 = in1[r * ld_in1 + c];
            const real v2 = (v0 + v1);
            const real v3 = in2[r * ld_in2 + c];
            const real v4 = in3[r * ld_in3 + c];
            const real v5 = (v3 + v4);
            const real v6 = (v2 + v5);
            const real v7 = symrnn_sigmoid(v6);
            out0[r * ld_out0 + c] = v7;
            const real v8 = in4[r * ld_in4 + c];
            const real v9 = in5[r * ld_in5 + c];
            const real v10 = (v8 + v9);
            const real v11 = in6[r * ld_in6 + c];
            const real v12 = in7[r * ld_in7 + c];
            const real v13 = (v11 + v12);
            const real v14 = (v10 + v13);
            const real v15 = symrnn_sigmoid(v14);
            out1[r * ld_out1 + c] = v15;
            const real v16 = in8[r * ld_in8 + c];
            const real v17 = in9[r * ld_in9 + c];
            const real v18 = (v16 + v17);
            const real v19 = in10[r * ld_in10 + c];
            const real v20 = in11[r * ld_in11 + c];
            const real v21 = (v19 + v20);
            const real v22 = (v18 + v21);
            const real v23 = symrnn_sigmoid(v22);
            out2[r * ld_out2 + c] = v23;
            const real v24 = in12[r * ld_in12 + c];
            const real v25 = (v15 * v24);
            const real v26 = in13[r * ld_in13 + c];
            const real v27 = in14[r * ld_in14 + c];
            const real v28 = (v26 + v27);
            const real v29 = in15[r * ld_in15 + c];
            const real v30 = in16[r * ld_in16 + c];
            const real v31 = (v29 + v30);
            const real v32 = (v28 + v31);
            const real v33 = symrnn_tanh(v32);
            out3[r * ld_out3 + c] = v33;
            const real v34 = (v7 * v33);
            const real v35 = (v25 + v34);
            out4[r * ld_out4 + c] = v35;
            const real v36 = symrnn_tanh(v35);
            out5[r * ld_out5 + c] = v36;
            const real v37 = (v23 * v36);
            out6[r * ld_out6 + c] = v37;
            const real v38 = (v37);
            out7[r * ld_out7 + c] = v38;
        }
    }
}

void symrnn_k32bb836aa94965bd(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, const real* in11, long ld_in11, const real* in12, long ld_in12, const real* in13, long ld_in13, const real* in14, long ld_in14, const real* in15, long ld_in15, const real* in16, long ld_in16, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, real* out6, long ld_out6, real* out7, long ld_out7, const uint64_t* ctl, const uint32_t* masks)
{
    symrnn_k32bb836aa94965bd_rows(0, rows, cols, in0, ld_in0, in1, ld_in1, in2, ld_in2, in3, ld_in3, in4, ld_in4, in5, ld_in5, in6, ld_in6, in7, ld_in7, in8, ld_in8, in9, ld_in9, in10, ld_in10, in11, ld_in11, in12, ld_in12, in13, ld_in13, in14, ld_in14, in15, ld_in15, in16, ld_in16, out0, ld_out0, out1, ld_out1, out2, ld_out2, out3, ld_out3, out4, ld_out4, out5, ld_out5, out6, ld_out6, out7, ld_out7, ctl, masks);
}

void symrnn_k32bb836aa94965bd_task(const void* job, long task)
{
    const long* w = (const long*)job;
    const long r0 = task * w[2], r1 = r0 + w[2] < w[0] ? r0 + w[2] : w[0];
    symrnn_k32bb836aa94965bd_rows(r0, r1, w[1], (const real*)(intptr_t)w[5], w[6], (const real*)(intptr_t)w[7], w[8], (const real*)(intptr_t)w[9], w[10], (const real*)(intptr_t)w[11], w[12], (const real*)(intptr_t)w[13], w[14], (const real*)(intptr_t)w[15], w[16], (const real*)(intptr_t)w[17], w[18], (const real*)(intptr_t)w[19], w[20], (const real*)(intptr_t)w[21], w[22], (const real*)(intptr_t)w[23], w[24], (const real*)(intptr_t)w[25], w[26], (const real*)(intptr_t)w[27], w[28], (const real*)(intptr_t)w[29], w[30], (const real*)(intptr_t)w[31], w[32], (const real*)(intptr_t)w[33], w[34], (const real*)(intptr_t)w[35], w[36], (const real*)(intptr_t)w[37], w[38], (real*)(intptr_t)w[39], w[40], (real*)(intptr_t)w[41], w[42], (real*)(intptr_t)w[43], w[44], (real*)(intptr_t)w[45], w[46], (real*)(intptr_t)w[47], w[48], (real*)(intptr_t)w[49], w[50], (real*)(intptr_t)w[51], w[52], (real*)(intptr_t)w[53], w[54], (const uint64_t*)(intptr_t)w[3], (const uint32_t*)(intptr_t)w[4]);
}

/* ===== kernel symrnn_keef8767969ce8b61: float32, 17 in, 7 out, 0 masks ===== */
#define SYMRNN_INLINE static inline
#include <math.h>

#ifndef SYMRNN_INLINE
#define SYMRNN_INLINE static inline
#endif
#ifdef __CUDACC_RTC__
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

/* Philox-4x32-10 draw for (seed, mask_id, index): word index & 3 of block index >> 2; see
   runtime/rng.py for the algorithm. */
SYMRNN_INLINE uint32_t symrnn_philox_bits(uint64_t seed, uint32_t mask_id, uint64_t index)
{
    const uint64_t block = index >> 2;
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = mask_id, c3 = 0u;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const uint32_t word = (uint32_t)index & 3u;
    return word == 0u ? c0 : word == 1u ? c1 : word == 2u ? c2 : c3;
}
#define SYMRNN_CHUNK 256

/* symrnn_philox_fill: the draws of the n consecutive indices start, start + 1, ... into out,
   the bits of symrnn_philox_bits: 16 blocks (AVX-512) or 8 (AVX2) at a time, one per lane,
   each block four draws. C only (GCC vector extensions; no intrinsics header, which costs half
   a second per compile). Each 32x32 -> 64-bit product comes from vpmuludq on the even or the
   odd lanes, which GCC does not find by itself: its vector code for symrnn_philox_bits
   multiplies in 64-bit lanes. */
#if defined(__AVX512F__)
#define SYMRNN_PX_LANES 16
#define SYMRNN_PX_REG "v"
#elif defined(__AVX2__)
#define SYMRNN_PX_LANES 8
#define SYMRNN_PX_REG "x"
#endif

#ifdef SYMRNN_PX_LANES
typedef uint32_t symrnn_px __attribute__((vector_size(4 * SYMRNN_PX_LANES)));
typedef uint64_t symrnn_pq __attribute__((vector_size(4 * SYMRNN_PX_LANES)));

/* The 64-bit products of the even 32-bit lanes of a and b. */
static inline symrnn_pq symrnn_px_mul(symrnn_px a, symrnn_px b)
{
    symrnn_pq r;
    __asm__("vpmuludq %2, %1, %0" : "=" SYMRNN_PX_REG(r) : SYMRNN_PX_REG(a), SYMRNN_PX_REG(b));
    return r;
}

/* The four words of the blocks block, block + 1, ..., one block per lane. */
static inline void symrnn_philox_lanes(uint64_t seed, uint32_t mask_id, uint64_t block,
                                       symrnn_px words[4])
{
    symrnn_px c0, zero = {0};
    for (int i = 0; i < SYMRNN_PX_LANES; ++i)
        c0[i] = (uint32_t)block + (uint32_t)i;
    /* the high counter word, plus 1 in the lanes whose low word wrapped */
    symrnn_px c1 = (uint32_t)(block >> 32) - (symrnn_px)(c0 < (uint32_t)block);
    symrnn_px c2 = zero + mask_id, c3 = zero;
    const symrnn_px m0 = zero + 0xD2511F53u, m1 = zero + 0xCD9E8D57u;
    const symrnn_pq low = (symrnn_pq){0} + 0xffffffffu;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const symrnn_pq e0 = symrnn_px_mul(c0, m0);
        const symrnn_pq o0 = symrnn_px_mul((symrnn_px)((symrnn_pq)c0 >> 32), m0);
        const symrnn_pq e1 = symrnn_px_mul(c2, m1);
        const symrnn_pq o1 = symrnn_px_mul((symrnn_px)((symrnn_pq)c2 >> 32), m1);
        c0 = (symrnn_px)(e1 >> 32 | (o1 & ~low)) ^ c1 ^ k0; /* hi(p1) ^ c1 ^ k0 */
        c2 = (symrnn_px)(e0 >> 32 | (o0 & ~low)) ^ c3 ^ k1; /* hi(p0) ^ c3 ^ k1 */
        c1 = (symrnn_px)((e1 & low) | o1 << 32);             /* lo(p1) */
        c3 = (symrnn_px)((e0 & low) | o0 << 32);             /* lo(p0) */
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    words[0] = c0;
    words[1] = c1;
    words[2] = c2;
    words[3] = c3;
}
#endif

/* Not inlined: one copy per kernel, however many masks it draws (compile time). */
static __attribute__((noinline)) void symrnn_philox_fill(uint64_t seed, uint32_t mask_id,
                                                         uint64_t start, long n, uint32_t* out)
{
    long i = 0;
#ifdef SYMRNN_PX_LANES
    for (; i < n && ((start + (uint64_t)i) & 3u); ++i) /* up to the first whole block */
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
    /* whole vectors of blocks, short of the wrap of the index at 2**64 (blocks wrap at 2**62) */
    for (; i + 4 * SYMRNN_PX_LANES <= n
           && start + (uint64_t)i <= (uint64_t)-1 - 4 * SYMRNN_PX_LANES;
         i += 4 * SYMRNN_PX_LANES) {
        symrnn_px words[4];
        symrnn_philox_lanes(seed, mask_id, (start + (uint64_t)i) >> 2, words);
        for (int b = 0; b < SYMRNN_PX_LANES; ++b)
            for (int w = 0; w < 4; ++w)
                out[i + 4 * b + w] = words[w][b];
    }
#endif
    for (; i < n; ++i)
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
}

#if defined(SYMRNN_LIBMVEC) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double tanh(double);
#endif
#endif

/* e^x for sigmoid and tanh: Cephes expf's reduction and polynomial, without branches. Below
   -87.3 it returns e^-87.3 and from 88.4 up +inf; NaN passes through (every comparison with it
   is false). */
SYMRNN_INLINE float symrnn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 89.0f ? 89.0f : x;
    const float k = __builtin_rintf(x * 0x1.715476p+0f); /* x / ln 2 */
    float r = __builtin_fmaf(k, -0.693359375f, x); /* x - k ln 2, ln 2 in two parts */
    r = __builtin_fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* 2^k; k = 128 gives +inf */
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above. */
SYMRNN_INLINE float symrnn_fast_tanhf(float x)
{
    const float a = __builtin_fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = __builtin_fmaf(p, z, 2.06390887954e-2f);
    p = __builtin_fmaf(p, z, -5.37397155531e-2f);
    p = __builtin_fmaf(p, z, 1.33314422036e-1f);
    p = __builtin_fmaf(p, z, -3.33332819422e-1f);
    const float small = __builtin_fmaf(p * z, x, x);
    const float e = symrnn_fast_expf(2.0f * a);
    const float large = __builtin_copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : large;
}

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + symrnn_fast_expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return symrnn_fast_tanhf(x); }
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) { return x < (real)0 ? (real)0 : x; }
SYMRNN_INLINE real symrnn_exp(real x) { return expf(x); }
SYMRNN_INLINE real symrnn_log(real x) { return logf(x); }

/* Inverted dropout's factor: 0 where the draw `bits` is below the threshold, else scale; 1 at
   inference. `train` is a literal 0 or 1: each mode has its own copy of the loops. */
SYMRNN_INLINE real symrnn_dropout(int train, uint32_t bits, uint32_t threshold, real scale)
{
    return train ? (bits < threshold ? (real)0 : scale) : (real)1;
}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(int train, uint32_t bits, uint32_t threshold, real p,
                                  real prev, real next)
{
    return train ? (bits < threshold ? prev : next) : p * prev + ((real)1 - p) * next;
}

static void symrnn_keef8767969ce8b61_rows(long r0, long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, const real* in11, long ld_in11, const real* in12, long ld_in12, const real* in13, long ld_in13, const real* in14, long ld_in14, const real* in15, long ld_in15, const real* in16, long ld_in16, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, real* out6, long ld_out6, const uint64_t* ctl, const uint32_t* masks)
{
    for (long r = r0; r < rows; ++r) {
        #pragma omp simd
        for (long c = 0; c < cols; ++c) {
            const real v0 = in0[r * ld_in0 + c];
            const real v1 = in1[r * ld_in1 + c];
            const real v2 = (v0 + v1);
            const real v3 = in2[r * ld_in2 + c];
            const real v4 = in3[r * ld_in3 + c];
            const real v5 = (v3 + v4);
            const real v6 = (v2 + v5);
            const real v7 = symrnn_sigmoid(v6);
            out0[r * ld_out0 + c] = v7;
            const real v8 = in4[r * ld_in4 + c];
            const real v9 = in5[r * ld_in5 + c];
            const real v10 = (v8 + v9);
            const real v11 = in6[r * ld_in6 + c];
            const real v12 = in7[r * ld_in7 + c];
            const real v13 = (v11 + v12);
            const real v14 = (v10 + v13);
            const real v15 = symrnn_sigmoid(v14);
            out1[r * ld_out1 + c] = v15;
            const real v16 = in8[r * ld_in8 + c];
            const real v17 = in9[r * ld_in9 + c];
            const real v18 = (v16 + v17);
            const real v19 = in10[r * ld_in10 + c];
            const real v20 = in11[r * ld_in11 + c];
            const real v21 = (v19 + v20);
            const real v22 = (v18 + v21);
            const real v23 = symrnn_sigmoid(v22);
            out2[r * ld_out2 + c] = v23;
            const real v24 = in12[r * ld_in12 + c];
            const real v25 = (v15 * v24);
            const real v26 = in13[r * ld_in13 + c];
            const real v27 = in14[r * ld_in14 + c];
            const real v28 = (v26 + v27);
            const real v29 = in15[r * ld_in15 + c];
            const real v30 = in16[r * ld_in16 + c];
            const real v31 = (v29 + v30);
            const real v32 = (v28 + v31);
            const real v33 = symrnn_tanh(v32);
            out3[r * ld_out3 + c] = v33;
            const real v34 = (v7 * v33);
            const real v35 = (v25 + v34);
            out4[r * ld_out4 + c] = v35;
            const real v36 = symrnn_tanh(v35);
            out5[r * ld_out5 + c] = v36;
            const real v37 = (v23 * v36);
            out6[r * ld_out6 + c] = v37;
        }
    }
}

void symrnn_keef8767969ce8b61(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, const real* in11, long ld_in11, const real* in12, long ld_in12, const real* in13, long ld_in13, const real* in14, long ld_in14, const real* in15, long ld_in15, const real* in16, long ld_in16, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, real* out6, long ld_out6, const uint64_t* ctl, const uint32_t* masks)
{
    symrnn_keef8767969ce8b61_rows(0, rows, cols, in0, ld_in0, in1, ld_in1, in2, ld_in2, in3, ld_in3, in4, ld_in4, in5, ld_in5, in6, ld_in6, in7, ld_in7, in8, ld_in8, in9, ld_in9, in10, ld_in10, in11, ld_in11, in12, ld_in12, in13, ld_in13, in14, ld_in14, in15, ld_in15, in16, ld_in16, out0, ld_out0, out1, ld_out1, out2, ld_out2, out3, ld_out3, out4, ld_out4, out5, ld_out5, out6, ld_out6, ctl, masks);
}

void symrnn_keef8767969ce8b61_task(const void* job, long task)
{
    const long* w = (const long*)job;
    const long r0 = task * w[2], r1 = r0 + w[2] < w[0] ? r0 + w[2] : w[0];
    symrnn_keef8767969ce8b61_rows(r0, r1, w[1], (const real*)(intptr_t)w[5], w[6], (const real*)(intptr_t)w[7], w[8], (const real*)(intptr_t)w[9], w[10], (const real*)(intptr_t)w[11], w[12], (const real*)(intptr_t)w[13], w[14], (const real*)(intptr_t)w[15], w[16], (const real*)(intptr_t)w[17], w[18], (const real*)(intptr_t)w[19], w[20], (const real*)(intptr_t)w[21], w[22], (const real*)(intptr_t)w[23], w[24], (const real*)(intptr_t)w[25], w[26], (const real*)(intptr_t)w[27], w[28], (const real*)(intptr_t)w[29], w[30], (const real*)(intptr_t)w[31], w[32], (const real*)(intptr_t)w[33], w[34], (const real*)(intptr_t)w[35], w[36], (const real*)(intptr_t)w[37], w[38], (real*)(intptr_t)w[39], w[40], (real*)(intptr_t)w[41], w[42], (real*)(intptr_t)w[43], w[44], (real*)(intptr_t)w[45], w[46], (real*)(intptr_t)w[47], w[48], (real*)(intptr_t)w[49], w[50], (real*)(intptr_t)w[51], w[52], (const uint64_t*)(intptr_t)w[3], (const uint32_t*)(intptr_t)w[4]);
}

/* ===== kernel symrnn_kcd236e76c77b19b8: float32, 9 in, 5 out, 0 masks ===== */
#define SYMRNN_INLINE static inline
#include <math.h>

#ifndef SYMRNN_INLINE
#define SYMRNN_INLINE static inline
#endif
#ifdef __CUDACC_RTC__
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

/* Philox-4x32-10 draw for (seed, mask_id, index): word index & 3 of block index >> 2; see
   runtime/rng.py for the algorithm. */
SYMRNN_INLINE uint32_t symrnn_philox_bits(uint64_t seed, uint32_t mask_id, uint64_t index)
{
    const uint64_t block = index >> 2;
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = mask_id, c3 = 0u;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const uint32_t word = (uint32_t)index & 3u;
    return word == 0u ? c0 : word == 1u ? c1 : word == 2u ? c2 : c3;
}
#define SYMRNN_CHUNK 256

/* symrnn_philox_fill: the draws of the n consecutive indices start, start + 1, ... into out,
   the bits of symrnn_philox_bits: 16 blocks (AVX-512) or 8 (AVX2) at a time, one per lane,
   each block four draws. C only (GCC vector extensions; no intrinsics header, which costs half
   a second per compile). Each 32x32 -> 64-bit product comes from vpmuludq on the even or the
   odd lanes, which GCC does not find by itself: its vector code for symrnn_philox_bits
   multiplies in 64-bit lanes. */
#if defined(__AVX512F__)
#define SYMRNN_PX_LANES 16
#define SYMRNN_PX_REG "v"
#elif defined(__AVX2__)
#define SYMRNN_PX_LANES 8
#define SYMRNN_PX_REG "x"
#endif

#ifdef SYMRNN_PX_LANES
typedef uint32_t symrnn_px __attribute__((vector_size(4 * SYMRNN_PX_LANES)));
typedef uint64_t symrnn_pq __attribute__((vector_size(4 * SYMRNN_PX_LANES)));

/* The 64-bit products of the even 32-bit lanes of a and b. */
static inline symrnn_pq symrnn_px_mul(symrnn_px a, symrnn_px b)
{
    symrnn_pq r;
    __asm__("vpmuludq %2, %1, %0" : "=" SYMRNN_PX_REG(r) : SYMRNN_PX_REG(a), SYMRNN_PX_REG(b));
    return r;
}

/* The four words of the blocks block, block + 1, ..., one block per lane. */
static inline void symrnn_philox_lanes(uint64_t seed, uint32_t mask_id, uint64_t block,
                                       symrnn_px words[4])
{
    symrnn_px c0, zero = {0};
    for (int i = 0; i < SYMRNN_PX_LANES; ++i)
        c0[i] = (uint32_t)block + (uint32_t)i;
    /* the high counter word, plus 1 in the lanes whose low word wrapped */
    symrnn_px c1 = (uint32_t)(block >> 32) - (symrnn_px)(c0 < (uint32_t)block);
    symrnn_px c2 = zero + mask_id, c3 = zero;
    const symrnn_px m0 = zero + 0xD2511F53u, m1 = zero + 0xCD9E8D57u;
    const symrnn_pq low = (symrnn_pq){0} + 0xffffffffu;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const symrnn_pq e0 = symrnn_px_mul(c0, m0);
        const symrnn_pq o0 = symrnn_px_mul((symrnn_px)((symrnn_pq)c0 >> 32), m0);
        const symrnn_pq e1 = symrnn_px_mul(c2, m1);
        const symrnn_pq o1 = symrnn_px_mul((symrnn_px)((symrnn_pq)c2 >> 32), m1);
        c0 = (symrnn_px)(e1 >> 32 | (o1 & ~low)) ^ c1 ^ k0; /* hi(p1) ^ c1 ^ k0 */
        c2 = (symrnn_px)(e0 >> 32 | (o0 & ~low)) ^ c3 ^ k1; /* hi(p0) ^ c3 ^ k1 */
        c1 = (symrnn_px)((e1 & low) | o1 << 32);             /* lo(p1) */
        c3 = (symrnn_px)((e0 & low) | o0 << 32);             /* lo(p0) */
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    words[0] = c0;
    words[1] = c1;
    words[2] = c2;
    words[3] = c3;
}
#endif

/* Not inlined: one copy per kernel, however many masks it draws (compile time). */
static __attribute__((noinline)) void symrnn_philox_fill(uint64_t seed, uint32_t mask_id,
                                                         uint64_t start, long n, uint32_t* out)
{
    long i = 0;
#ifdef SYMRNN_PX_LANES
    for (; i < n && ((start + (uint64_t)i) & 3u); ++i) /* up to the first whole block */
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
    /* whole vectors of blocks, short of the wrap of the index at 2**64 (blocks wrap at 2**62) */
    for (; i + 4 * SYMRNN_PX_LANES <= n
           && start + (uint64_t)i <= (uint64_t)-1 - 4 * SYMRNN_PX_LANES;
         i += 4 * SYMRNN_PX_LANES) {
        symrnn_px words[4];
        symrnn_philox_lanes(seed, mask_id, (start + (uint64_t)i) >> 2, words);
        for (int b = 0; b < SYMRNN_PX_LANES; ++b)
            for (int w = 0; w < 4; ++w)
                out[i + 4 * b + w] = words[w][b];
    }
#endif
    for (; i < n; ++i)
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
}

#if defined(SYMRNN_LIBMVEC) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double tanh(double);
#endif
#endif

/* e^x for sigmoid and tanh: Cephes expf's reduction and polynomial, without branches. Below
   -87.3 it returns e^-87.3 and from 88.4 up +inf; NaN passes through (every comparison with it
   is false). */
SYMRNN_INLINE float symrnn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 89.0f ? 89.0f : x;
    const float k = __builtin_rintf(x * 0x1.715476p+0f); /* x / ln 2 */
    float r = __builtin_fmaf(k, -0.693359375f, x); /* x - k ln 2, ln 2 in two parts */
    r = __builtin_fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* 2^k; k = 128 gives +inf */
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above. */
SYMRNN_INLINE float symrnn_fast_tanhf(float x)
{
    const float a = __builtin_fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = __builtin_fmaf(p, z, 2.06390887954e-2f);
    p = __builtin_fmaf(p, z, -5.37397155531e-2f);
    p = __builtin_fmaf(p, z, 1.33314422036e-1f);
    p = __builtin_fmaf(p, z, -3.33332819422e-1f);
    const float small = __builtin_fmaf(p * z, x, x);
    const float e = symrnn_fast_expf(2.0f * a);
    const float large = __builtin_copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : large;
}

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + symrnn_fast_expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return symrnn_fast_tanhf(x); }
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) { return x < (real)0 ? (real)0 : x; }
SYMRNN_INLINE real symrnn_exp(real x) { return expf(x); }
SYMRNN_INLINE real symrnn_log(real x) { return logf(x); }

/* Inverted dropout's factor: 0 where the draw `bits` is below the threshold, else scale; 1 at
   inference. `train` is a literal 0 or 1: each mode has its own copy of the loops. */
SYMRNN_INLINE real symrnn_dropout(int train, uint32_t bits, uint32_t threshold, real scale)
{
    return train ? (bits < threshold ? (real)0 : scale) : (real)1;
}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(int train, uint32_t bits, uint32_t threshold, real p,
                                  real prev, real next)
{
    return train ? (bits < threshold ? prev : next) : p * prev + ((real)1 - p) * next;
}

static void symrnn_kcd236e76c77b19b8_rows(long r0, long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    for (long r = r0; r < rows; ++r) {
        #pragma omp simd
        for (long c = 0; c < cols; ++c) {
            const real v0 = in0[r * ld_in0 + c];
            const real v1 = in1[r * ld_in1 + c];
            const real v2 = (v0 + v1);
            const real v3 = in2[r * ld_in2 + c];
            const real v4 = (v2 * v3);
            const real v5 = in3[r * ld_in3 + c];
            const real v6 = (v5 * v5);
            const real v7 = (0x1p+0f - v6);
            const real v8 = (v4 * v7);
            const real v9 = in4[r * ld_in4 + c];
            const real v10 = (v8 + v9);
            const real v11 = in5[r * ld_in5 + c];
            const real v12 = (v10 * v11);
            const real v13 = in6[r * ld_in6 + c];
            const real v14 = (v13 * v13);
            const real v15 = (0x1p+0f - v14);
            const real v16 = (v12 * v15);
            out0[r * ld_out0 + c] = v16;
            const real v17 = in7[r * ld_in7 + c];
            const real v18 = (v10 * v17);
            out1[r * ld_out1 + c] = v18;
            const real v19 = (v2 * v5);
            const real v20 = (0x1p+0f - v3);
            const real v21 = (v3 * v20);
            const real v22 = (v19 * v21);
            out2[r * ld_out2 + c] = v22;
            const real v23 = (v10 * v13);
            const real v24 = (0x1p+0f - v11);
            const real v25 = (v11 * v24);
            const real v26 = (v23 * v25);
            out3[r * ld_out3 + c] = v26;
            const real v27 = in8[r * ld_in8 + c];
            const real v28 = (v10 * v27);
            const real v29 = (0x1p+0f - v17);
            const real v30 = (v17 * v29);
            const real v31 = (v28 * v30);
            out4[r * ld_out4 + c] = v31;
        }
    }
}

void symrnn_kcd236e76c77b19b8(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    symrnn_kcd236e76c77b19b8_rows(0, rows, cols, in0, ld_in0, in1, ld_in1, in2, ld_in2, in3, ld_in3, in4, ld_in4, in5, ld_in5, in6, ld_in6, in7, ld_in7, in8, ld_in8, out0, ld_out0, out1, ld_out1, out2, ld_out2, out3, ld_out3, out4, ld_out4, ctl, masks);
}

void symrnn_kcd236e76c77b19b8_task(const void* job, long task)
{
    const long* w = (const long*)job;
    const long r0 = task * w[2], r1 = r0 + w[2] < w[0] ? r0 + w[2] : w[0];
    symrnn_kcd236e76c77b19b8_rows(r0, r1, w[1], (const real*)(intptr_t)w[5], w[6], (const real*)(intptr_t)w[7], w[8], (const real*)(intptr_t)w[9], w[10], (const real*)(intptr_t)w[11], w[12], (const real*)(intptr_t)w[13], w[14], (const real*)(intptr_t)w[15], w[16], (const real*)(intptr_t)w[17], w[18], (const real*)(intptr_t)w[19], w[20], (const real*)(intptr_t)w[21], w[22], (real*)(intptr_t)w[23], w[24], (real*)(intptr_t)w[25], w[26], (real*)(intptr_t)w[27], w[28], (real*)(intptr_t)w[29], w[30], (real*)(intptr_t)w[31], w[32], (const uint64_t*)(intptr_t)w[3], (const uint32_t*)(intptr_t)w[4]);
}

/* ===== kernel symrnn_kd8457992433cbb2e: float32, 9 in, 5 out, 0 masks ===== */
#define SYMRNN_INLINE static inline
#include <math.h>

#ifndef SYMRNN_INLINE
#define SYMRNN_INLINE static inline
#endif
#ifdef __CUDACC_RTC__
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

/* Philox-4x32-10 draw for (seed, mask_id, index): word index & 3 of block index >> 2; see
   runtime/rng.py for the algorithm. */
SYMRNN_INLINE uint32_t symrnn_philox_bits(uint64_t seed, uint32_t mask_id, uint64_t index)
{
    const uint64_t block = index >> 2;
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = mask_id, c3 = 0u;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const uint32_t word = (uint32_t)index & 3u;
    return word == 0u ? c0 : word == 1u ? c1 : word == 2u ? c2 : c3;
}
#define SYMRNN_CHUNK 256

/* symrnn_philox_fill: the draws of the n consecutive indices start, start + 1, ... into out,
   the bits of symrnn_philox_bits: 16 blocks (AVX-512) or 8 (AVX2) at a time, one per lane,
   each block four draws. C only (GCC vector extensions; no intrinsics header, which costs half
   a second per compile). Each 32x32 -> 64-bit product comes from vpmuludq on the even or the
   odd lanes, which GCC does not find by itself: its vector code for symrnn_philox_bits
   multiplies in 64-bit lanes. */
#if defined(__AVX512F__)
#define SYMRNN_PX_LANES 16
#define SYMRNN_PX_REG "v"
#elif defined(__AVX2__)
#define SYMRNN_PX_LANES 8
#define SYMRNN_PX_REG "x"
#endif

#ifdef SYMRNN_PX_LANES
typedef uint32_t symrnn_px __attribute__((vector_size(4 * SYMRNN_PX_LANES)));
typedef uint64_t symrnn_pq __attribute__((vector_size(4 * SYMRNN_PX_LANES)));

/* The 64-bit products of the even 32-bit lanes of a and b. */
static inline symrnn_pq symrnn_px_mul(symrnn_px a, symrnn_px b)
{
    symrnn_pq r;
    __asm__("vpmuludq %2, %1, %0" : "=" SYMRNN_PX_REG(r) : SYMRNN_PX_REG(a), SYMRNN_PX_REG(b));
    return r;
}

/* The four words of the blocks block, block + 1, ..., one block per lane. */
static inline void symrnn_philox_lanes(uint64_t seed, uint32_t mask_id, uint64_t block,
                                       symrnn_px words[4])
{
    symrnn_px c0, zero = {0};
    for (int i = 0; i < SYMRNN_PX_LANES; ++i)
        c0[i] = (uint32_t)block + (uint32_t)i;
    /* the high counter word, plus 1 in the lanes whose low word wrapped */
    symrnn_px c1 = (uint32_t)(block >> 32) - (symrnn_px)(c0 < (uint32_t)block);
    symrnn_px c2 = zero + mask_id, c3 = zero;
    const symrnn_px m0 = zero + 0xD2511F53u, m1 = zero + 0xCD9E8D57u;
    const symrnn_pq low = (symrnn_pq){0} + 0xffffffffu;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const symrnn_pq e0 = symrnn_px_mul(c0, m0);
        const symrnn_pq o0 = symrnn_px_mul((symrnn_px)((symrnn_pq)c0 >> 32), m0);
        const symrnn_pq e1 = symrnn_px_mul(c2, m1);
        const symrnn_pq o1 = symrnn_px_mul((symrnn_px)((symrnn_pq)c2 >> 32), m1);
        c0 = (symrnn_px)(e1 >> 32 | (o1 & ~low)) ^ c1 ^ k0; /* hi(p1) ^ c1 ^ k0 */
        c2 = (symrnn_px)(e0 >> 32 | (o0 & ~low)) ^ c3 ^ k1; /* hi(p0) ^ c3 ^ k1 */
        c1 = (symrnn_px)((e1 & low) | o1 << 32);             /* lo(p1) */
        c3 = (symrnn_px)((e0 & low) | o0 << 32);             /* lo(p0) */
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    words[0] = c0;
    words[1] = c1;
    words[2] = c2;
    words[3] = c3;
}
#endif

/* Not inlined: one copy per kernel, however many masks it draws (compile time). */
static __attribute__((noinline)) void symrnn_philox_fill(uint64_t seed, uint32_t mask_id,
                                                         uint64_t start, long n, uint32_t* out)
{
    long i = 0;
#ifdef SYMRNN_PX_LANES
    for (; i < n && ((start + (uint64_t)i) & 3u); ++i) /* up to the first whole block */
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
    /* whole vectors of blocks, short of the wrap of the index at 2**64 (blocks wrap at 2**62) */
    for (; i + 4 * SYMRNN_PX_LANES <= n
           && start + (uint64_t)i <= (uint64_t)-1 - 4 * SYMRNN_PX_LANES;
         i += 4 * SYMRNN_PX_LANES) {
        symrnn_px words[4];
        symrnn_philox_lanes(seed, mask_id, (start + (uint64_t)i) >> 2, words);
        for (int b = 0; b < SYMRNN_PX_LANES; ++b)
            for (int w = 0; w < 4; ++w)
                out[i + 4 * b + w] = words[w][b];
    }
#endif
    for (; i < n; ++i)
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
}

#if defined(SYMRNN_LIBMVEC) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double tanh(double);
#endif
#endif

/* e^x for sigmoid and tanh: Cephes expf's reduction and polynomial, without branches. Below
   -87.3 it returns e^-87.3 and from 88.4 up +inf; NaN passes through (every comparison with it
   is false). */
SYMRNN_INLINE float symrnn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 89.0f ? 89.0f : x;
    const float k = __builtin_rintf(x * 0x1.715476p+0f); /* x / ln 2 */
    float r = __builtin_fmaf(k, -0.693359375f, x); /* x - k ln 2, ln 2 in two parts */
    r = __builtin_fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* 2^k; k = 128 gives +inf */
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above. */
SYMRNN_INLINE float symrnn_fast_tanhf(float x)
{
    const float a = __builtin_fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = __builtin_fmaf(p, z, 2.06390887954e-2f);
    p = __builtin_fmaf(p, z, -5.37397155531e-2f);
    p = __builtin_fmaf(p, z, 1.33314422036e-1f);
    p = __builtin_fmaf(p, z, -3.33332819422e-1f);
    const float small = __builtin_fmaf(p * z, x, x);
    const float e = symrnn_fast_expf(2.0f * a);
    const float large = __builtin_copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : large;
}

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + symrnn_fast_expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return symrnn_fast_tanhf(x); }
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) { return x < (real)0 ? (real)0 : x; }
SYMRNN_INLINE real symrnn_exp(real x) { return expf(x); }
SYMRNN_INLINE real symrnn_log(real x) { return logf(x); }

/* Inverted dropout's factor: 0 where the draw `bits` is below the threshold, else scale; 1 at
   inference. `train` is a literal 0 or 1: each mode has its own copy of the loops. */
SYMRNN_INLINE real symrnn_dropout(int train, uint32_t bits, uint32_t threshold, real scale)
{
    return train ? (bits < threshold ? (real)0 : scale) : (real)1;
}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(int train, uint32_t bits, uint32_t threshold, real p,
                                  real prev, real next)
{
    return train ? (bits < threshold ? prev : next) : p * prev + ((real)1 - p) * next;
}

static void symrnn_kd8457992433cbb2e_rows(long r0, long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    for (long r = r0; r < rows; ++r) {
        #pragma omp simd
        for (long c = 0; c < cols; ++c) {
            const real v0 = in0[r * ld_in0 + c];
            const real v1 = in1[r * ld_in1 + c];
            const real v2 = (v0 + v1);
            const real v3 = in2[r * ld_in2 + c];
            const real v4 = (v2 * v3);
            const real v5 = in3[r * ld_in3 + c];
            const real v6 = (v5 * v5);
            const real v7 = (0x1p+0f - v6);
            const real v8 = (v4 * v7);
            const real v9 = in4[r * ld_in4 + c];
            const real v10 = (v9 + v8);
            const real v11 = in5[r * ld_in5 + c];
            const real v12 = (v10 * v11);
            const real v13 = in6[r * ld_in6 + c];
            const real v14 = (0x1p+0f - v13);
            const real v15 = (v13 * v14);
            const real v16 = (v12 * v15);
            out0[r * ld_out0 + c] = v16;
            const real v17 = in7[r * ld_in7 + c];
            const real v18 = (v10 * v17);
            const real v19 = in8[r * ld_in8 + c];
            const real v20 = (0x1p+0f - v19);
            const real v21 = (v19 * v20);
            const real v22 = (v18 * v21);
            out1[r * ld_out1 + c] = v22;
            const real v23 = (v10 * v19);
            out2[r * ld_out2 + c] = v23;
            const real v24 = (v10 * v13);
            const real v25 = (v11 * v11);
            const real v26 = (0x1p+0f - v25);
            const real v27 = (v24 * v26);
            out3[r * ld_out3 + c] = v27;
            const real v28 = (v2 * v5);
            const real v29 = (0x1p+0f - v3);
            const real v30 = (v3 * v29);
            const real v31 = (v28 * v30);
            out4[r * ld_out4 + c] = v31;
        }
    }
}

void symrnn_kd8457992433cbb2e(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    symrnn_kd8457992433cbb2e_rows(0, rows, cols, in0, ld_in0, in1, ld_in1, in2, ld_in2, in3, ld_in3, in4, ld_in4, in5, ld_in5, in6, ld_in6, in7, ld_in7, in8, ld_in8, out0, ld_out0, out1, ld_out1, out2, ld_out2, out3, ld_out3, out4, ld_out4, ctl, masks);
}

void symrnn_kd8457992433cbb2e_task(const void* job, long task)
{
    const long* w = (const long*)job;
    const long r0 = task * w[2], r1 = r0 + w[2] < w[0] ? r0 + w[2] : w[0];
    symrnn_kd8457992433cbb2e_rows(r0, r1, w[1], (const real*)(intptr_t)w[5], w[6], (const real*)(intptr_t)w[7], w[8], (const real*)(intptr_t)w[9], w[10], (const real*)(intptr_t)w[11], w[12], (const real*)(intptr_t)w[13], w[14], (const real*)(intptr_t)w[15], w[16], (const real*)(intptr_t)w[17], w[18], (const real*)(intptr_t)w[19], w[20], (const real*)(intptr_t)w[21], w[22], (real*)(intptr_t)w[23], w[24], (real*)(intptr_t)w[25], w[26], (real*)(intptr_t)w[27], w[28], (real*)(intptr_t)w[29], w[30], (real*)(intptr_t)w[31], w[32], (const uint64_t*)(intptr_t)w[3], (const uint32_t*)(intptr_t)w[4]);
}

/* ===== kernel symrnn_k48bd78bb9283bdb6: float32, 9 in, 5 out, 1 masks ===== */
#define SYMRNN_INLINE static inline
#include <math.h>

#ifndef SYMRNN_INLINE
#define SYMRNN_INLINE static inline
#endif
#ifdef __CUDACC_RTC__
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

/* Philox-4x32-10 draw for (seed, mask_id, index): word index & 3 of block index >> 2; see
   runtime/rng.py for the algorithm. */
SYMRNN_INLINE uint32_t symrnn_philox_bits(uint64_t seed, uint32_t mask_id, uint64_t index)
{
    const uint64_t block = index >> 2;
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = mask_id, c3 = 0u;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const uint32_t word = (uint32_t)index & 3u;
    return word == 0u ? c0 : word == 1u ? c1 : word == 2u ? c2 : c3;
}
#define SYMRNN_CHUNK 256

/* symrnn_philox_fill: the draws of the n consecutive indices start, start + 1, ... into out,
   the bits of symrnn_philox_bits: 16 blocks (AVX-512) or 8 (AVX2) at a time, one per lane,
   each block four draws. C only (GCC vector extensions; no intrinsics header, which costs half
   a second per compile). Each 32x32 -> 64-bit product comes from vpmuludq on the even or the
   odd lanes, which GCC does not find by itself: its vector code for symrnn_philox_bits
   multiplies in 64-bit lanes. */
#if defined(__AVX512F__)
#define SYMRNN_PX_LANES 16
#define SYMRNN_PX_REG "v"
#elif defined(__AVX2__)
#define SYMRNN_PX_LANES 8
#define SYMRNN_PX_REG "x"
#endif

#ifdef SYMRNN_PX_LANES
typedef uint32_t symrnn_px __attribute__((vector_size(4 * SYMRNN_PX_LANES)));
typedef uint64_t symrnn_pq __attribute__((vector_size(4 * SYMRNN_PX_LANES)));

/* The 64-bit products of the even 32-bit lanes of a and b. */
static inline symrnn_pq symrnn_px_mul(symrnn_px a, symrnn_px b)
{
    symrnn_pq r;
    __asm__("vpmuludq %2, %1, %0" : "=" SYMRNN_PX_REG(r) : SYMRNN_PX_REG(a), SYMRNN_PX_REG(b));
    return r;
}

/* The four words of the blocks block, block + 1, ..., one block per lane. */
static inline void symrnn_philox_lanes(uint64_t seed, uint32_t mask_id, uint64_t block,
                                       symrnn_px words[4])
{
    symrnn_px c0, zero = {0};
    for (int i = 0; i < SYMRNN_PX_LANES; ++i)
        c0[i] = (uint32_t)block + (uint32_t)i;
    /* the high counter word, plus 1 in the lanes whose low word wrapped */
    symrnn_px c1 = (uint32_t)(block >> 32) - (symrnn_px)(c0 < (uint32_t)block);
    symrnn_px c2 = zero + mask_id, c3 = zero;
    const symrnn_px m0 = zero + 0xD2511F53u, m1 = zero + 0xCD9E8D57u;
    const symrnn_pq low = (symrnn_pq){0} + 0xffffffffu;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const symrnn_pq e0 = symrnn_px_mul(c0, m0);
        const symrnn_pq o0 = symrnn_px_mul((symrnn_px)((symrnn_pq)c0 >> 32), m0);
        const symrnn_pq e1 = symrnn_px_mul(c2, m1);
        const symrnn_pq o1 = symrnn_px_mul((symrnn_px)((symrnn_pq)c2 >> 32), m1);
        c0 = (symrnn_px)(e1 >> 32 | (o1 & ~low)) ^ c1 ^ k0; /* hi(p1) ^ c1 ^ k0 */
        c2 = (symrnn_px)(e0 >> 32 | (o0 & ~low)) ^ c3 ^ k1; /* hi(p0) ^ c3 ^ k1 */
        c1 = (symrnn_px)((e1 & low) | o1 << 32);             /* lo(p1) */
        c3 = (symrnn_px)((e0 & low) | o0 << 32);             /* lo(p0) */
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    words[0] = c0;
    words[1] = c1;
    words[2] = c2;
    words[3] = c3;
}
#endif

/* Not inlined: one copy per kernel, however many masks it draws (compile time). */
static __attribute__((noinline)) void symrnn_philox_fill(uint64_t seed, uint32_t mask_id,
                                                         uint64_t start, long n, uint32_t* out)
{
    long i = 0;
#ifdef SYMRNN_PX_LANES
    for (; i < n && ((start + (uint64_t)i) & 3u); ++i) /* up to the first whole block */
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
    /* whole vectors of blocks, short of the wrap of the index at 2**64 (blocks wrap at 2**62) */
    for (; i + 4 * SYMRNN_PX_LANES <= n
           && start + (uint64_t)i <= (uint64_t)-1 - 4 * SYMRNN_PX_LANES;
         i += 4 * SYMRNN_PX_LANES) {
        symrnn_px words[4];
        symrnn_philox_lanes(seed, mask_id, (start + (uint64_t)i) >> 2, words);
        for (int b = 0; b < SYMRNN_PX_LANES; ++b)
            for (int w = 0; w < 4; ++w)
                out[i + 4 * b + w] = words[w][b];
    }
#endif
    for (; i < n; ++i)
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
}

#if defined(SYMRNN_LIBMVEC) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double tanh(double);
#endif
#endif

/* e^x for sigmoid and tanh: Cephes expf's reduction and polynomial, without branches. Below
   -87.3 it returns e^-87.3 and from 88.4 up +inf; NaN passes through (every comparison with it
   is false). */
SYMRNN_INLINE float symrnn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 89.0f ? 89.0f : x;
    const float k = __builtin_rintf(x * 0x1.715476p+0f); /* x / ln 2 */
    float r = __builtin_fmaf(k, -0.693359375f, x); /* x - k ln 2, ln 2 in two parts */
    r = __builtin_fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* 2^k; k = 128 gives +inf */
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above. */
SYMRNN_INLINE float symrnn_fast_tanhf(float x)
{
    const float a = __builtin_fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = __builtin_fmaf(p, z, 2.06390887954e-2f);
    p = __builtin_fmaf(p, z, -5.37397155531e-2f);
    p = __builtin_fmaf(p, z, 1.33314422036e-1f);
    p = __builtin_fmaf(p, z, -3.33332819422e-1f);
    const float small = __builtin_fmaf(p * z, x, x);
    const float e = symrnn_fast_expf(2.0f * a);
    const float large = __builtin_copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : large;
}

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + symrnn_fast_expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return symrnn_fast_tanhf(x); }
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) { return x < (real)0 ? (real)0 : x; }
SYMRNN_INLINE real symrnn_exp(real x) { return expf(x); }
SYMRNN_INLINE real symrnn_log(real x) { return logf(x); }

/* Inverted dropout's factor: 0 where the draw `bits` is below the threshold, else scale; 1 at
   inference. `train` is a literal 0 or 1: each mode has its own copy of the loops. */
SYMRNN_INLINE real symrnn_dropout(int train, uint32_t bits, uint32_t threshold, real scale)
{
    return train ? (bits < threshold ? (real)0 : scale) : (real)1;
}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(int train, uint32_t bits, uint32_t threshold, real p,
                                  real prev, real next)
{
    return train ? (bits < threshold ? prev : next) : p * prev + ((real)1 - p) * next;
}

static void symrnn_k48bd78bb9283bdb6_rows(long r0, long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = r0; r < rows; ++r) {
            for (long c0 = 0; c0 < cols; c0 += SYMRNN_CHUNK) {
                const long c1 = cols - c0 < SYMRNN_CHUNK ? cols : c0 + SYMRNN_CHUNK;
                const uint64_t first = (uint64_t)r * (uint64_t)cols + (uint64_t)c0;
                uint32_t bits0[SYMRNN_CHUNK];
                symrnn_philox_fill(ctl[0], masks[0], first, c1 - c0, bits0);
                #pragma omp simd
                for (long c = c0; c < c1; ++c) {
                    const real v0 = in0[r * ld_in0 + c];
                    const real v1 = (v0 * symrnn_dropout(1, bits0[c - c0], 1073741824u, 0x1.555556p+0f));
                    const real v2 = in1[r * ld_in1 + c];
                    const real v3 = (v1 + v2);
                    const real v4 = in2[r * ld_in2 + c];
                    const real v5 = (v3 * v4);
                    const real v6 = in3[r * ld_in3 + c];
                    const real v7 = (v6 * v6);
                    const real v8 = (0x1p+0f - v7);
                    const real v9 = (v5 * v8);
                    const real v10 = in4[r * ld_in4 + c];
                    const real v11 = (v9 + v10);
                    const real v12 = in5[r * ld_in5 + c];
                    const real v13 = (v11 * v12);
                    const real v14 = in6[r * ld_in6 + c];
                    const real v15 = (v14 * v14);
                    const real v16 = (0x1p+0f - v15);
                    const real v17 = (v13 * v16);
                    out0[r * ld_out0 + c] = v17;
                    const real v18 = in7[r * ld_in7 + c];
                    const real v19 = (v11 * v18);
                    out1[r * ld_out1 + c] = v19;
                    const real v20 = (v11 * v14);
                    const real v21 = (0x1p+0f - v12);
                    const real v22 = (v12 * v21);
                    const real v23 = (v20 * v22);
                    out2[r * ld_out2 + c] = v23;
                    const real v24 = in8[r * ld_in8 + c];
                    const real v25 = (v11 * v24);
                    const real v26 = (0x1p+0f - v18);
                    const real v27 = (v18 * v26);
                    const real v28 = (v25 * v27);
                    out3[r * ld_out3 + c] = v28;
                    const real v29 = (v3 * v6);
                    const real v30 = (0x1p+0f - v4);
                    const real v31 = (v4 * v30);
                    const real v32 = (v29 * v31);
                    out4[r * ld_out4 + c] = v32;
                }
            }
        }
    } else {
        for (long r = r0; r < rows; ++r) {
            #pragma omp simd
            for (long c = 0; c < cols; ++c) {
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = (v0 * symrnn_dropout(0, 0u, 1073741824u, 0x1.555556p+0f));
                const real v2 = in1[r * ld_in1 + c];
                const real v3 = (v1 + v2);
                const real v4 = in2[r * ld_in2 + c];
                const real v5 = (v3 * v4);
                const real v6 = in3[r * ld_in3 + c];
                const real v7 = (v6 * v6);
                const real v8 = (0x1p+0f - v7);
                const real v9 = (v5 * v8);
                const real v10 = in4[r * ld_in4 + c];
                const real v11 = (v9 + v10);
                const real v12 = in5[r * ld_in5 + c];
                const real v13 = (v11 * v12);
                const real v14 = in6[r * ld_in6 + c];
                const real v15 = (v14 * v14);
                const real v16 = (0x1p+0f - v15);
                const real v17 = (v13 * v16);
                out0[r * ld_out0 + c] = v17;
                const real v18 = in7[r * ld_in7 + c];
                const real v19 = (v11 * v18);
                out1[r * ld_out1 + c] = v19;
                const real v20 = (v11 * v14);
                const real v21 = (0x1p+0f - v12);
                const real v22 = (v12 * v21);
                const real v23 = (v20 * v22);
                out2[r * ld_out2 + c] = v23;
                const real v24 = in8[r * ld_in8 + c];
                const real v25 = (v11 * v24);
                const real v26 = (0x1p+0f - v18);
                const real v27 = (v18 * v26);
                const real v28 = (v25 * v27);
                out3[r * ld_out3 + c] = v28;
                const real v29 = (v3 * v6);
                const real v30 = (0x1p+0f - v4);
                const real v31 = (v4 * v30);
                const real v32 = (v29 * v31);
                out4[r * ld_out4 + c] = v32;
            }
        }
    }
}

void symrnn_k48bd78bb9283bdb6(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    symrnn_k48bd78bb9283bdb6_rows(0, rows, cols, in0, ld_in0, in1, ld_in1, in2, ld_in2, in3, ld_in3, in4, ld_in4, in5, ld_in5, in6, ld_in6, in7, ld_in7, in8, ld_in8, out0, ld_out0, out1, ld_out1, out2, ld_out2, out3, ld_out3, out4, ld_out4, ctl, masks);
}

void symrnn_k48bd78bb9283bdb6_task(const void* job, long task)
{
    const long* w = (const long*)job;
    const long r0 = task * w[2], r1 = r0 + w[2] < w[0] ? r0 + w[2] : w[0];
    symrnn_k48bd78bb9283bdb6_rows(r0, r1, w[1], (const real*)(intptr_t)w[5], w[6], (const real*)(intptr_t)w[7], w[8], (const real*)(intptr_t)w[9], w[10], (const real*)(intptr_t)w[11], w[12], (const real*)(intptr_t)w[13], w[14], (const real*)(intptr_t)w[15], w[16], (const real*)(intptr_t)w[17], w[18], (const real*)(intptr_t)w[19], w[20], (const real*)(intptr_t)w[21], w[22], (real*)(intptr_t)w[23], w[24], (real*)(intptr_t)w[25], w[26], (real*)(intptr_t)w[27], w[28], (real*)(intptr_t)w[29], w[30], (real*)(intptr_t)w[31], w[32], (const uint64_t*)(intptr_t)w[3], (const uint32_t*)(intptr_t)w[4]);
}

/* ===== kernel symrnn_kb7add0a9a35362b6: float32, 9 in, 5 out, 1 masks ===== */
#define SYMRNN_INLINE static inline
#include <math.h>

#ifndef SYMRNN_INLINE
#define SYMRNN_INLINE static inline
#endif
#ifdef __CUDACC_RTC__
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

/* Philox-4x32-10 draw for (seed, mask_id, index): word index & 3 of block index >> 2; see
   runtime/rng.py for the algorithm. */
SYMRNN_INLINE uint32_t symrnn_philox_bits(uint64_t seed, uint32_t mask_id, uint64_t index)
{
    const uint64_t block = index >> 2;
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = mask_id, c3 = 0u;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const uint32_t word = (uint32_t)index & 3u;
    return word == 0u ? c0 : word == 1u ? c1 : word == 2u ? c2 : c3;
}
#define SYMRNN_CHUNK 256

/* symrnn_philox_fill: the draws of the n consecutive indices start, start + 1, ... into out,
   the bits of symrnn_philox_bits: 16 blocks (AVX-512) or 8 (AVX2) at a time, one per lane,
   each block four draws. C only (GCC vector extensions; no intrinsics header, which costs half
   a second per compile). Each 32x32 -> 64-bit product comes from vpmuludq on the even or the
   odd lanes, which GCC does not find by itself: its vector code for symrnn_philox_bits
   multiplies in 64-bit lanes. */
#if defined(__AVX512F__)
#define SYMRNN_PX_LANES 16
#define SYMRNN_PX_REG "v"
#elif defined(__AVX2__)
#define SYMRNN_PX_LANES 8
#define SYMRNN_PX_REG "x"
#endif

#ifdef SYMRNN_PX_LANES
typedef uint32_t symrnn_px __attribute__((vector_size(4 * SYMRNN_PX_LANES)));
typedef uint64_t symrnn_pq __attribute__((vector_size(4 * SYMRNN_PX_LANES)));

/* The 64-bit products of the even 32-bit lanes of a and b. */
static inline symrnn_pq symrnn_px_mul(symrnn_px a, symrnn_px b)
{
    symrnn_pq r;
    __asm__("vpmuludq %2, %1, %0" : "=" SYMRNN_PX_REG(r) : SYMRNN_PX_REG(a), SYMRNN_PX_REG(b));
    return r;
}

/* The four words of the blocks block, block + 1, ..., one block per lane. */
static inline void symrnn_philox_lanes(uint64_t seed, uint32_t mask_id, uint64_t block,
                                       symrnn_px words[4])
{
    symrnn_px c0, zero = {0};
    for (int i = 0; i < SYMRNN_PX_LANES; ++i)
        c0[i] = (uint32_t)block + (uint32_t)i;
    /* the high counter word, plus 1 in the lanes whose low word wrapped */
    symrnn_px c1 = (uint32_t)(block >> 32) - (symrnn_px)(c0 < (uint32_t)block);
    symrnn_px c2 = zero + mask_id, c3 = zero;
    const symrnn_px m0 = zero + 0xD2511F53u, m1 = zero + 0xCD9E8D57u;
    const symrnn_pq low = (symrnn_pq){0} + 0xffffffffu;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const symrnn_pq e0 = symrnn_px_mul(c0, m0);
        const symrnn_pq o0 = symrnn_px_mul((symrnn_px)((symrnn_pq)c0 >> 32), m0);
        const symrnn_pq e1 = symrnn_px_mul(c2, m1);
        const symrnn_pq o1 = symrnn_px_mul((symrnn_px)((symrnn_pq)c2 >> 32), m1);
        c0 = (symrnn_px)(e1 >> 32 | (o1 & ~low)) ^ c1 ^ k0; /* hi(p1) ^ c1 ^ k0 */
        c2 = (symrnn_px)(e0 >> 32 | (o0 & ~low)) ^ c3 ^ k1; /* hi(p0) ^ c3 ^ k1 */
        c1 = (symrnn_px)((e1 & low) | o1 << 32);             /* lo(p1) */
        c3 = (symrnn_px)((e0 & low) | o0 << 32);             /* lo(p0) */
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    words[0] = c0;
    words[1] = c1;
    words[2] = c2;
    words[3] = c3;
}
#endif

/* Not inlined: one copy per kernel, however many masks it draws (compile time). */
static __attribute__((noinline)) void symrnn_philox_fill(uint64_t seed, uint32_t mask_id,
                                                         uint64_t start, long n, uint32_t* out)
{
    long i = 0;
#ifdef SYMRNN_PX_LANES
    for (; i < n && ((start + (uint64_t)i) & 3u); ++i) /* up to the first whole block */
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
    /* whole vectors of blocks, short of the wrap of the index at 2**64 (blocks wrap at 2**62) */
    for (; i + 4 * SYMRNN_PX_LANES <= n
           && start + (uint64_t)i <= (uint64_t)-1 - 4 * SYMRNN_PX_LANES;
         i += 4 * SYMRNN_PX_LANES) {
        symrnn_px words[4];
        symrnn_philox_lanes(seed, mask_id, (start + (uint64_t)i) >> 2, words);
        for (int b = 0; b < SYMRNN_PX_LANES; ++b)
            for (int w = 0; w < 4; ++w)
                out[i + 4 * b + w] = words[w][b];
    }
#endif
    for (; i < n; ++i)
        out[i] = symrnn_philox_bits(seed, mask_id, start + (uint64_t)i);
}

#if defined(SYMRNN_LIBMVEC) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double tanh(double);
#endif
#endif

/* e^x for sigmoid and tanh: Cephes expf's reduction and polynomial, without branches. Below
   -87.3 it returns e^-87.3 and from 88.4 up +inf; NaN passes through (every comparison with it
   is false). */
SYMRNN_INLINE float symrnn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 89.0f ? 89.0f : x;
    const float k = __builtin_rintf(x * 0x1.715476p+0f); /* x / ln 2 */
    float r = __builtin_fmaf(k, -0.693359375f, x); /* x - k ln 2, ln 2 in two parts */
    r = __builtin_fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* 2^k; k = 128 gives +inf */
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above. */
SYMRNN_INLINE float symrnn_fast_tanhf(float x)
{
    const float a = __builtin_fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = __builtin_fmaf(p, z, 2.06390887954e-2f);
    p = __builtin_fmaf(p, z, -5.37397155531e-2f);
    p = __builtin_fmaf(p, z, 1.33314422036e-1f);
    p = __builtin_fmaf(p, z, -3.33332819422e-1f);
    const float small = __builtin_fmaf(p * z, x, x);
    const float e = symrnn_fast_expf(2.0f * a);
    const float large = __builtin_copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : large;
}

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + symrnn_fast_expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return symrnn_fast_tanhf(x); }
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) { return x < (real)0 ? (real)0 : x; }
SYMRNN_INLINE real symrnn_exp(real x) { return expf(x); }
SYMRNN_INLINE real symrnn_log(real x) { return logf(x); }

/* Inverted dropout's factor: 0 where the draw `bits` is below the threshold, else scale; 1 at
   inference. `train` is a literal 0 or 1: each mode has its own copy of the loops. */
SYMRNN_INLINE real symrnn_dropout(int train, uint32_t bits, uint32_t threshold, real scale)
{
    return train ? (bits < threshold ? (real)0 : scale) : (real)1;
}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(int train, uint32_t bits, uint32_t threshold, real p,
                                  real prev, real next)
{
    return train ? (bits < threshold ? prev : next) : p * prev + ((real)1 - p) * next;
}

static void symrnn_kb7add0a9a35362b6_rows(long r0, long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = r0; r < rows; ++r) {
            for (long c0 = 0; c0 < cols; c0 += SYMRNN_CHUNK) {
                const long c1 = cols - c0 < SYMRNN_CHUNK ? cols : c0 + SYMRNN_CHUNK;
                const uint64_t first = (uint64_t)r * (uint64_t)cols + (uint64_t)c0;
                uint32_t bits0[SYMRNN_CHUNK];
                symrnn_philox_fill(ctl[0], masks[0], first, c1 - c0, bits0);
                #pragma omp simd
                for (long c = c0; c < c1; ++c) {
                    const real v0 = in0[r * ld_in0 + c];
                    const real v1 = (v0 * symrnn_dropout(1, bits0[c - c0], 1073741824u, 0x1.555556p+0f));
                    const real v2 = in1[r * ld_in1 + c];
                    const real v3 = (v1 + v2);
                    const real v4 = in2[r * ld_in2 + c];
                    const real v5 = (v3 * v4);
                    const real v6 = in3[r * ld_in3 + c];
                    const real v7 = (v6 * v6);
                    const real v8 = (0x1p+0f - v7);
                    const real v9 = (v5 * v8);
                    const real v10 = in4[r * ld_in4 + c];
                    const real v11 = (v10 + v9);
                    const real v12 = in5[r * ld_in5 + c];
                    const real v13 = (v11 * v12);
                    const real v14 = in6[r * ld_in6 + c];
                    const real v15 = (v14 * v14);
                    const real v16 = (0x1p+0f - v15);
                    const real v17 = (v13 * v16);
                    out0[r * ld_out0 + c] = v17;
                    const real v18 = (v11 * v14);
                    const real v19 = (0x1p+0f - v12);
                    const real v20 = (v12 * v19);
                    const real v21 = (v18 * v20);
                    out1[r * ld_out1 + c] = v21;
                    const real v22 = in7[r * ld_in7 + c];
                    const real v23 = (v11 * v22);
                    const real v24 = in8[r * ld_in8 + c];
                    const real v25 = (0x1p+0f - v24);
                    const real v26 = (v24 * v25);
                    const real v27 = (v23 * v26);
                    out2[r * ld_out2 + c] = v27;
                    const real v28 = (v11 * v24);
                    out3[r * ld_out3 + c] = v28;
                    const real v29 = (v3 * v6);
                    const real v30 = (0x1p+0f - v4);
                    const real v31 = (v4 * v30);
                    const real v32 = (v29 * v31);
                    out4[r * ld_out4 + c] = v32;
                }
            }
        }
    } else {
        for (long r = r0; r < rows; ++r) {
            #pragma omp simd
            for (long c = 0; c < cols; ++c) {
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = (v0 * symrnn_dropout(0, 0u, 1073741824u, 0x1.555556p+0f));
                const real v2 = in1[r * ld_in1 + c];
                const real v3 = (v1 + v2);
                const real v4 = in2[r * ld_in2 + c];
                const real v5 = (v3 * v4);
                const real v6 = in3[r * ld_in3 + c];
                const real v7 = (v6 * v6);
                const real v8 = (0x1p+0f - v7);
                const real v9 = (v5 * v8);
                const real v10 = in4[r * ld_in4 + c];
                const real v11 = (v10 + v9);
                const real v12 = in5[r * ld_in5 + c];
                const real v13 = (v11 * v12);
                const real v14 = in6[r * ld_in6 + c];
                const real v15 = (v14 * v14);
                const real v16 = (0x1p+0f - v15);
                const real v17 = (v13 * v16);
                out0[r * ld_out0 + c] = v17;
                const real v18 = (v11 * v14);
                const real v19 = (0x1p+0f - v12);
                const real v20 = (v12 * v19);
                const real v21 = (v18 * v20);
                out1[r * ld_out1 + c] = v21;
                const real v22 = in7[r * ld_in7 + c];
                const real v23 = (v11 * v22);
                const real v24 = in8[r * ld_in8 + c];
                const real v25 = (0x1p+0f - v24);
                const real v26 = (v24 * v25);
                const real v27 = (v23 * v26);
                out2[r * ld_out2 + c] = v27;
                const real v28 = (v11 * v24);
                out3[r * ld_out3 + c] = v28;
                const real v29 = (v3 * v6);
                const real v30 = (0x1p+0f - v4);
                const real v31 = (v4 * v30);
                const real v32 = (v29 * v31);
                out4[r * ld_out4 + c] = v32;
            }
        }
    }
}

void symrnn_kb7add0a9a35362b6(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    symrnn_kb7add0a9a35362b6_rows(0, rows, cols, in0, ld_in0, in1, ld_in1, in2, ld_in2, in3, ld_in3, in4, ld_in4, in5, ld_in5, in6, ld_in6, in7, ld_in7, in8, ld_in8, out0, ld_out0, out1, ld_out1, out2, ld_out2, out3, ld_out3, out4, ld_out4, ctl, masks);
}

void symrnn_kb7add0a9a35362b6_task(const void* job, long task)
{
    const long* w = (const long*)job;
    const long r0 = task * w[2], r1 = r0 + w[2] < w[0] ? r0 + w[2] : w[0];
    symrnn_kb7add0a9a35362b6_rows(r0, r1, w[1], (const real*)(intptr_t)w[5], w[6], (const real*)(intptr_t)w[7], w[8], (const real*)(intptr_t)w[9], w[10], (const real*)(intptr_t)w[11], w[12], (const real*)(intptr_t)w[13], w[14], (const real*)(intptr_t)w[15], w[16], (const real*)(intptr_t)w[17], w[18], (const real*)(intptr_t)w[19], w[20], (const real*)(intptr_t)w[21], w[22], (real*)(intptr_t)w[23], w[24], (real*)(intptr_t)w[25], w[26], (real*)(intptr_t)w[27], w[28], (real*)(intptr_t)w[29], w[30], (real*)(intptr_t)w[31], w[32], (const uint64_t*)(intptr_t)w[3], (const uint32_t*)(intptr_t)w[4]);
}
