/* ===== kernel symrnn_k1dba3dc68e5158f9: float32, 1 in, 1 out, 1 masks ===== */
#define SYMRNN_INLINE __device__ __forceinline__

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

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return tanhf(x); }
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

extern "C" __global__ void symrnn_k1dba3dc68e5158f9(long rows, long cols, const real* in0, long ld_in0, real* out0, long ld_out0, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = (v0 * symrnn_dropout(1, symrnn_philox_bits(ctl[0], masks[0], idx), 858993459u, 0x1.4p+0f));
                out0[r * ld_out0 + c] = v1;
            }
        }
    } else {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = (v0 * symrnn_dropout(0, 0u, 858993459u, 0x1.4p+0f));
                out0[r * ld_out0 + c] = v1;
            }
        }
    }
}

/* ===== kernel symrnn_k1956ee262d117a61: float32, 13 in, 6 out, 2 masks ===== */
#define SYMRNN_INLINE __device__ __forceinline__

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

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return tanhf(x); }
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

extern "C" __global__ void symrnn_k1956ee262d117a61(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, const real* in11, long ld_in11, const real* in12, long ld_in12, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;
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
                const real v16 = (0x1p+0f - v15);
                const real v17 = in8[r * ld_in8 + c];
                const real v18 = in9[r * ld_in9 + c];
                const real v19 = (v17 + v18);
                const real v20 = in10[r * ld_in10 + c];
                const real v21 = in11[r * ld_in11 + c];
                const real v22 = (v20 + v21);
                out2[r * ld_out2 + c] = v22;
                const real v23 = (v7 * v22);
                const real v24 = (v19 + v23);
                const real v25 = symrnn_tanh(v24);
                out3[r * ld_out3 + c] = v25;
                const real v26 = (v16 * v25);
                const real v27 = in12[r * ld_in12 + c];
                const real v28 = (v15 * v27);
                const real v29 = (v26 + v28);
                const real v30 = symrnn_zoneout(1, symrnn_philox_bits(ctl[0], masks[0], idx), 429496730u, 0x1.99999ap-4f, v27, v29);
                out4[r * ld_out4 + c] = v30;
                const real v31 = (v30 * symrnn_dropout(1, symrnn_philox_bits(ctl[0], masks[1], idx), 858993459u, 0x1.4p+0f));
                out5[r * ld_out5 + c] = v31;
            }
        }
    } else {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
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
                const real v16 = (0x1p+0f - v15);
                const real v17 = in8[r * ld_in8 + c];
                const real v18 = in9[r * ld_in9 + c];
                const real v19 = (v17 + v18);
                const real v20 = in10[r * ld_in10 + c];
                const real v21 = in11[r * ld_in11 + c];
                const real v22 = (v20 + v21);
                out2[r * ld_out2 + c] = v22;
                const real v23 = (v7 * v22);
                const real v24 = (v19 + v23);
                const real v25 = symrnn_tanh(v24);
                out3[r * ld_out3 + c] = v25;
                const real v26 = (v16 * v25);
                const real v27 = in12[r * ld_in12 + c];
                const real v28 = (v15 * v27);
                const real v29 = (v26 + v28);
                const real v30 = symrnn_zoneout(0, 0u, 429496730u, 0x1.99999ap-4f, v27, v29);
                out4[r * ld_out4 + c] = v30;
                const real v31 = (v30 * symrnn_dropout(0, 0u, 858993459u, 0x1.4p+0f));
                out5[r * ld_out5 + c] = v31;
            }
        }
    }
}

/* ===== kernel symrnn_k7552e325430fbc1f: float32, 13 in, 5 out, 1 masks ===== */
#define SYMRNN_INLINE __device__ __forceinline__

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

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return tanhf(x); }
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

extern "C" __global__ void symrnn_k7552e325430fbc1f(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, const real* in11, long ld_in11, const real* in12, long ld_in12, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;
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
                const real v16 = (0x1p+0f - v15);
                const real v17 = in8[r * ld_in8 + c];
                const real v18 = in9[r * ld_in9 + c];
                const real v19 = (v17 + v18);
                const real v20 = in10[r * ld_in10 + c];
                const real v21 = in11[r * ld_in11 + c];
                const real v22 = (v20 + v21);
                out2[r * ld_out2 + c] = v22;
                const real v23 = (v7 * v22);
                const real v24 = (v19 + v23);
                const real v25 = symrnn_tanh(v24);
                out3[r * ld_out3 + c] = v25;
                const real v26 = (v16 * v25);
                const real v27 = in12[r * ld_in12 + c];
                const real v28 = (v15 * v27);
                const real v29 = (v26 + v28);
                const real v30 = symrnn_zoneout(1, symrnn_philox_bits(ctl[0], masks[0], idx), 429496730u, 0x1.99999ap-4f, v27, v29);
                out4[r * ld_out4 + c] = v30;
            }
        }
    } else {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
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
                const real v16 = (0x1p+0f - v15);
                const real v17 = in8[r * ld_in8 + c];
                const real v18 = in9[r * ld_in9 + c];
                const real v19 = (v17 + v18);
                const real v20 = in10[r * ld_in10 + c];
                const real v21 = in11[r * ld_in11 + c];
                const real v22 = (v20 + v21);
                out2[r * ld_out2 + c] = v22;
                const real v23 = (v7 * v22);
                const real v24 = (v19 + v23);
                const real v25 = symrnn_tanh(v24);
                out3[r * ld_out3 + c] = v25;
                const real v26 = (v16 * v25);
                const real v27 = in12[r * ld_in12 + c];
                const real v28 = (v15 * v27);
                const real v29 = (v26 + v28);
                const real v30 = symrnn_zoneout(0, 0u, 429496730u, 0x1.99999ap-4f, v27, v29);
                out4[r * ld_out4 + c] = v30;
            }
        }
    }
}

/* ===== kernel symrnn_kc6ca68ed9e7659e4: float32, 7 in, 9 out, 1 masks ===== */
#define SYMRNN_INLINE __device__ __forceinline__

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

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return tanhf(x); }
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

extern "C" __global__ void symrnn_kc6ca68ed9e7659e4(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, real* out6, long ld_out6, real* out7, long ld_out7, real* out8, long ld_out8, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = in1[r * ld_in1 + c];
                const real v2 = (v0 + v1);
                const real v3 = ((real)0);
                out0[r * ld_out0 + c] = v3;
                const real v4 = symrnn_zoneout(1, symrnn_philox_bits(ctl[0], masks[0], idx), 429496730u, 0x1.99999ap-4f, v2, v3);
                out1[r * ld_out1 + c] = v4;
                const real v5 = symrnn_zoneout(1, symrnn_philox_bits(ctl[0], masks[0], idx), 429496730u, 0x1.99999ap-4f, v3, v2);
                out2[r * ld_out2 + c] = v5;
                const real v6 = in2[r * ld_in2 + c];
                const real v7 = (0x1p+0f - v6);
                const real v8 = (v5 * v7);
                const real v9 = in3[r * ld_in3 + c];
                const real v10 = (v9 * v9);
                const real v11 = (0x1p+0f - v10);
                const real v12 = (v8 * v11);
                out3[r * ld_out3 + c] = v12;
                const real v13 = in4[r * ld_in4 + c];
                const real v14 = (v12 * v13);
                const real v15 = in5[r * ld_in5 + c];
                const real v16 = (0x1p+0f - v15);
                const real v17 = (v15 * v16);
                const real v18 = (v14 * v17);
                out4[r * ld_out4 + c] = v18;
                const real v19 = in6[r * ld_in6 + c];
                const real v20 = (v5 * v19);
                const real v21 = (v5 * v9);
                const real v22 = (-v21);
                const real v23 = (v20 + v22);
                const real v24 = (v6 * v7);
                const real v25 = (v23 * v24);
                out5[r * ld_out5 + c] = v25;
                const real v26 = (v25);
                out6[r * ld_out6 + c] = v26;
                const real v27 = (v18);
                out7[r * ld_out7 + c] = v27;
                const real v28 = (v12 * v15);
                out8[r * ld_out8 + c] = v28;
            }
        }
    } else {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = in1[r * ld_in1 + c];
                const real v2 = (v0 + v1);
                const real v3 = ((real)0);
                out0[r * ld_out0 + c] = v3;
                const real v4 = symrnn_zoneout(0, 0u, 429496730u, 0x1.99999ap-4f, v2, v3);
                out1[r * ld_out1 + c] = v4;
                const real v5 = symrnn_zoneout(0, 0u, 429496730u, 0x1.99999ap-4f, v3, v2);
                out2[r * ld_out2 + c] = v5;
                const real v6 = in2[r * ld_in2 + c];
                const real v7 = (0x1p+0f - v6);
                const real v8 = (v5 * v7);
                const real v9 = in3[r * ld_in3 + c];
                const real v10 = (v9 * v9);
                const real v11 = (0x1p+0f - v10);
                const real v12 = (v8 * v11);
                out3[r * ld_out3 + c] = v12;
                const real v13 = in4[r * ld_in4 + c];
                const real v14 = (v12 * v13);
                const real v15 = in5[r * ld_in5 + c];
                const real v16 = (0x1p+0f - v15);
                const real v17 = (v15 * v16);
                const real v18 = (v14 * v17);
                out4[r * ld_out4 + c] = v18;
                const real v19 = in6[r * ld_in6 + c];
                const real v20 = (v5 * v19);
                const real v21 = (v5 * v9);
                const real v22 = (-v21);
                const real v23 = (v20 + v22);
                const real v24 = (v6 * v7);
                const real v25 = (v23 * v24);
                out5[r * ld_out5 + c] = v25;
                const real v26 = (v25);
                out6[r * ld_out6 + c] = v26;
                const real v27 = (v18);
                out7[r * ld_out7 + c] = v27;
                const real v28 = (v12 * v15);
                out8[r * ld_out8 + c] = v28;
            }
        }
    }
}

/* ===== kernel symrnn_k97234a7924a80ab7: float32, 11 in, 8 out, 2 masks ===== */
#define SYMRNN_INLINE __device__ __forceinline__

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

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return tanhf(x); }
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

extern "C" __global__ void symrnn_k97234a7924a80ab7(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, const real* in3, long ld_in3, const real* in4, long ld_in4, const real* in5, long ld_in5, const real* in6, long ld_in6, const real* in7, long ld_in7, const real* in8, long ld_in8, const real* in9, long ld_in9, const real* in10, long ld_in10, real* out0, long ld_out0, real* out1, long ld_out1, real* out2, long ld_out2, real* out3, long ld_out3, real* out4, long ld_out4, real* out5, long ld_out5, real* out6, long ld_out6, real* out7, long ld_out7, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = (v0 * symrnn_dropout(1, symrnn_philox_bits(ctl[0], masks[0], idx), 858993459u, 0x1.4p+0f));
                const real v2 = in1[r * ld_in1 + c];
                const real v3 = (v2 + v1);
                const real v4 = in2[r * ld_in2 + c];
                const real v5 = in3[r * ld_in3 + c];
                const real v6 = (v4 * v5);
                const real v7 = (v3 + v6);
                const real v8 = in4[r * ld_in4 + c];
                const real v9 = (v7 + v8);
                const real v10 = in5[r * ld_in5 + c];
                const real v11 = symrnn_zoneout(1, symrnn_philox_bits(ctl[0], masks[1], idx), 429496730u, 0x1.99999ap-4f, v10, v9);
                const real v12 = in6[r * ld_in6 + c];
                const real v13 = (0x1p+0f - v12);
                const real v14 = (v11 * v13);
                const real v15 = in7[r * ld_in7 + c];
                const real v16 = (v15 * v15);
                const real v17 = (0x1p+0f - v16);
                const real v18 = (v14 * v17);
                out0[r * ld_out0 + c] = v18;
                const real v19 = in8[r * ld_in8 + c];
                const real v20 = (v18 * v19);
                const real v21 = in9[r * ld_in9 + c];
                const real v22 = (0x1p+0f - v21);
                const real v23 = (v21 * v22);
                const real v24 = (v20 * v23);
                out1[r * ld_out1 + c] = v24;
                const real v25 = (v11 * v12);
                out2[r * ld_out2 + c] = v25;
                const real v26 = symrnn_zoneout(1, symrnn_philox_bits(ctl[0], masks[1], idx), 429496730u, 0x1.99999ap-4f, v9, v10);
                out3[r * ld_out3 + c] = v26;
                const real v27 = (v18 * v21);
                out4[r * ld_out4 + c] = v27;
                const real v28 = in10[r * ld_in10 + c];
                const real v29 = (v11 * v28);
                const real v30 = (v11 * v15);
                const real v31 = (-v30);
                const real v32 = (v29 + v31);
                const real v33 = (v12 * v13);
                const real v34 = (v32 * v33);
                out5[r * ld_out5 + c] = v34;
                const real v35 = (v34);
                out6[r * ld_out6 + c] = v35;
                const real v36 = (v24);
                out7[r * ld_out7 + c] = v36;
            }
        }
    } else {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = (v0 * symrnn_dropout(0, 0u, 858993459u, 0x1.4p+0f));
                const real v2 = in1[r * ld_in1 + c];
                const real v3 = (v2 + v1);
                const real v4 = in2[r * ld_in2 + c];
                const real v5 = in3[r * ld_in3 + c];
                const real v6 = (v4 * v5);
                const real v7 = (v3 + v6);
                const real v8 = in4[r * ld_in4 + c];
                const real v9 = (v7 + v8);
                const real v10 = in5[r * ld_in5 + c];
                const real v11 = symrnn_zoneout(0, 0u, 429496730u, 0x1.99999ap-4f, v10, v9);
                const real v12 = in6[r * ld_in6 + c];
                const real v13 = (0x1p+0f - v12);
                const real v14 = (v11 * v13);
                const real v15 = in7[r * ld_in7 + c];
                const real v16 = (v15 * v15);
                const real v17 = (0x1p+0f - v16);
                const real v18 = (v14 * v17);
                out0[r * ld_out0 + c] = v18;
                const real v19 = in8[r * ld_in8 + c];
                const real v20 = (v18 * v19);
                const real v21 = in9[r * ld_in9 + c];
                const real v22 = (0x1p+0f - v21);
                const real v23 = (v21 * v22);
                const real v24 = (v20 * v23);
                out1[r * ld_out1 + c] = v24;
                const real v25 = (v11 * v12);
                out2[r * ld_out2 + c] = v25;
                const real v26 = symrnn_zoneout(0, 0u, 429496730u, 0x1.99999ap-4f, v9, v10);
                out3[r * ld_out3 + c] = v26;
                const real v27 = (v18 * v21);
                out4[r * ld_out4 + c] = v27;
                const real v28 = in10[r * ld_in10 + c];
                const real v29 = (v11 * v28);
                const real v30 = (v11 * v15);
                const real v31 = (-v30);
                const real v32 = (v29 + v31);
                const real v33 = (v12 * v13);
                const real v34 = (v32 * v33);
                out5[r * ld_out5 + c] = v34;
                const real v35 = (v34);
                out6[r * ld_out6 + c] = v35;
                const real v36 = (v24);
                out7[r * ld_out7 + c] = v36;
            }
        }
    }
}

/* ===== kernel symrnn_ke21003b003fff72d: float32, 3 in, 1 out, 1 masks ===== */
#define SYMRNN_INLINE __device__ __forceinline__

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

typedef float real;

SYMRNN_INLINE real symrnn_sigmoid(real x) { return (real)1 / ((real)1 + expf(-x)); }
SYMRNN_INLINE real symrnn_tanh(real x) { return tanhf(x); }
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

extern "C" __global__ void symrnn_ke21003b003fff72d(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1, const real* in2, long ld_in2, real* out0, long ld_out0, const uint64_t* ctl, const uint32_t* masks)
{
    if (ctl[1]) {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = (v0 * symrnn_dropout(1, symrnn_philox_bits(ctl[0], masks[0], idx), 858993459u, 0x1.4p+0f));
                const real v2 = in1[r * ld_in1 + c];
                const real v3 = (v1 + v2);
                const real v4 = in2[r * ld_in2 + c];
                const real v5 = (v3 + v4);
                out0[r * ld_out0 + c] = v5;
            }
        }
    } else {
        for (long r = blockIdx.y; r < rows; r += gridDim.y) {
            for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
                const real v0 = in0[r * ld_in0 + c];
                const real v1 = (v0 * symrnn_dropout(0, 0u, 858993459u, 0x1.4p+0f));
                const real v2 = in1[r * ld_in1 + c];
                const real v3 = (v1 + v2);
                const real v4 = in2[r * ld_in2 + c];
                const real v5 = (v3 + v4);
                out0[r * ld_out0 + c] = v5;
            }
        }
    }
}
