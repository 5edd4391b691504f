"""Counter-based random bits for dropout and zoneout masks.

Every executor (numpy, C, CUDA; fused or unrolled graph) must draw bit-identical masks, and the
backward pass recomputes masks rather than storing them, so a mask element is a pure function of
``(seed, mask_id, element_index)``. The function is Philox-4x32-10 (Salmon et al., "Parallel
random numbers: as easy as 1, 2, 3", SC 2011; the ``philox4x32_10`` of Random123), written here
precisely enough to be reproduced bit for bit. All arithmetic is on unsigned 32-bit words, modulo
2**32.

Inputs, for a 64-bit ``seed`` (taken modulo 2**64), a 32-bit ``mask_id`` (modulo 2**32) and a
64-bit ``element_index`` (the flat C-order index of the element in its mask). Four consecutive
elements share one block, ``block = index >> 2``::

    key     = (seed & 0xffffffff, (seed >> 32) & 0xffffffff)
    counter = (block & 0xffffffff, block >> 32, mask_id & 0xffffffff, 0)

Ten rounds, bumping the key between rounds (the bump after the last round is unused)::

    M0, M1 = 0xD2511F53, 0xCD9E8D57            # round multipliers
    W0, W1 = 0x9E3779B9, 0xBB67AE85            # Weyl key increments
    repeat 10 times:
        p0 = M0 * c0                           # full 64-bit product
        p1 = M1 * c2
        (c0, c1, c2, c3) = (hi(p1) ^ c1 ^ k0, lo(p1), hi(p0) ^ c3 ^ k1, lo(p0))
        (k0, k1) = (k0 + W0, k1 + W1)

where ``hi(p) = p >> 32`` and ``lo(p) = p & 0xffffffff``. The 32-bit draw for the element is
word ``index & 3`` of the final block (``c0``, ``c1``, ``c2`` or ``c3``): one Philox block
serves four elements, as cuRAND's Philox does, and the first four draws of seed 0, mask 0 are
Random123's known answer for a zero counter and key.

Threshold convention: ``threshold(p) = min(round(p * 2**32), 2**32 - 1)``, with Python's
``round`` (half to even; ``p * 2**32`` is exact in float64), so it always fits a ``uint32_t``.
An element is *hit* iff ``bits < threshold(p)``: dropped by dropout, kept at its previous value
by zoneout. ``p = 0`` gives ``t = 0`` and never hits. The hit probability is ``t / 2**32``,
within ``2**-33`` of ``p``; at ``p = 1`` the one draw ``0xffffffff`` is not hit. Renderers
compute ``t`` here and emit it as an unsigned integer literal.

``C_SOURCE`` is the same function in C99; defining ``SYMRNN_INLINE`` as
``__device__ __forceinline__`` before it makes the same text CUDA C. ``C_FILL_SOURCE`` (C only)
draws a run of consecutive elements, a vector of blocks at a time.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
ROUNDS = 10
_MASK32 = 0xFFFFFFFF

Shape = int | tuple[int, ...]
Words = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def philox4x32(counter: tuple, key: tuple[int, int]) -> Words:
    """Philox-4x32-10 of ``counter`` (4 uint32 arrays or ints, broadcast) under ``key``.

    >>> [hex(int(w)) for w in philox4x32((0, 0, 0, 0), (0, 0))]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    # uint64 holds a full 32x32 product, so every word stays below 2**32 between rounds.
    c0, c1, c2, c3 = np.broadcast_arrays(*(np.asarray(c, dtype=np.uint64) for c in counter))
    k0, k1 = key[0] & _MASK32, key[1] & _MASK32
    for _ in range(ROUNDS):
        p0, p1 = np.uint64(M0) * c0, np.uint64(M1) * c2
        c0, c1, c2, c3 = (
            (p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0),
            p1 & np.uint64(_MASK32),
            (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1),
            p0 & np.uint64(_MASK32),
        )
        k0, k1 = (k0 + W0) & _MASK32, (k1 + W1) & _MASK32
    return tuple(c.astype(np.uint32) for c in (c0, c1, c2, c3))


def _block_words(seed: int, mask_id: int, block: np.ndarray) -> Words:
    """The four words of each Philox block index in ``block`` (uint64) for (seed, mask_id)."""
    counter = (block & np.uint64(_MASK32), block >> np.uint64(32), mask_id & _MASK32, 0)
    return philox4x32(counter, (seed & _MASK32, (seed >> 32) & _MASK32))


def random_bits_at(seed: int, mask_id: int, index: np.ndarray | int) -> np.ndarray:
    """The uint32 draw for each element index in ``index`` (any shape, values below 2**64)."""
    index = np.asarray(index, dtype=np.uint64)
    words = _block_words(seed, mask_id, index >> np.uint64(2))
    return np.choose((index & np.uint64(3)).astype(np.intp), words)


def random_bits(seed: int, mask_id: int, shape: Shape) -> np.ndarray:
    """The uint32 draw for every element of a mask of ``shape`` (flat C-order index).

    >>> [hex(int(b)) for b in random_bits(0, 0, 5)]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8', '0xf8e4cca4']
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    size = int(np.prod(shape, dtype=np.int64))
    words = _block_words(seed, mask_id, np.arange(-(-size // 4), dtype=np.uint64))
    return np.stack(words, axis=-1).reshape(-1)[:size].reshape(shape)  # each block's 4, in order


def threshold(p: float) -> int:
    """The uint32 ``t`` such that an element is hit iff ``bits < t``; ``threshold(0) == 0``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return min(round(p * 2**32), _MASK32)


def dropout_mask(
    seed: int, mask_id: int, shape: Shape, p: float, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """Inverted dropout: 0 where dropped (``bits < threshold(p)``), else ``1 / (1 - p)``.

    The scale is computed in float64 and then rounded to ``dtype``.
    """
    if p >= 1.0:
        raise ValueError(f"dropout probability must be below 1, got {p}")
    hit = random_bits(seed, mask_id, shape) < threshold(p)
    return np.where(hit, 0.0, 1.0 / (1.0 - p)).astype(dtype)


def zoneout_mask(
    seed: int, mask_id: int, shape: Shape, p: float, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """Zoneout: 1 where the unit keeps its previous value (``bits < threshold(p)``), else 0."""
    return (random_bits(seed, mask_id, shape) < threshold(p)).astype(dtype)


C_SOURCE = r"""
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
"""

C_FILL_SOURCE = r"""
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
"""
