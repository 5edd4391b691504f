"""The mask RNG: Philox known answers, regression pins, statistics, and C/CUDA bit equality."""

import shutil
import subprocess

import numpy as np
import pytest

from runtime.rng import (
    C_FILL_SOURCE,
    C_SOURCE,
    dropout_mask,
    philox4x32,
    random_bits,
    random_bits_at,
    threshold,
    zoneout_mask,
)

M32 = 0xFFFFFFFF

# Random123 kat_vectors, philox4x32_10: (counter, key, expected output).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32, M32, M32, M32), (M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]

# Regression pin: the first four draws of (seed, mask_id), computed once from this module. They
# are the four words of the block of counter (0, 0, mask_id, 0): seed 0, mask 0 is KAT[0].
PINS = [
    (0, 0, (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (42, 1, (0x02933769, 0x2051E913, 0x3B68B038, 0xB62C409C)),
    (2**32 + 7, 3, (0xE7A62072, 0x3F8DB586, 0x3E5CFAC7, 0x6ACE54F9)),
    (2**64 - 1, 2**32 - 1, (0x254A02F9, 0x9BD9D7F4, 0x77D0ED97, 0xF6965A8B)),
]

SEEDS = [0, 12345, 2**32 + 1, 0xDEADBEEFCAFEF00D, 2**64 - 1]
MASK_IDS = [0, 7, 2**32 - 1]


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in philox4x32(counter, key)) == expected


def test_philox_is_vectorized_over_counters():
    counters = np.array([kat[0] for kat in KAT], dtype=np.uint32).T
    words = philox4x32(tuple(counters), (0, 0))
    assert all(w.dtype == np.uint32 and w.shape == (3,) for w in words)
    assert tuple(int(w[0]) for w in words) == KAT[0][2]


@pytest.mark.parametrize("seed, mask_id, expected", PINS)
def test_random_bits_pinned(seed, mask_id, expected):
    assert tuple(int(b) for b in random_bits(seed, mask_id, 4)) == expected


def test_four_elements_share_a_block():
    bits = random_bits(9, 4, 12)
    for b in range(3):
        words = philox4x32((b, 0, 4, 0), (9, 0))
        assert tuple(int(x) for x in bits[4 * b:4 * b + 4]) == tuple(int(w) for w in words)


def test_random_bits_shape_is_flat_c_order():
    bits = random_bits(3, 5, (4, 6))
    assert bits.shape == (4, 6) and bits.dtype == np.uint32
    np.testing.assert_array_equal(bits.ravel(), random_bits(3, 5, 24))
    np.testing.assert_array_equal(random_bits_at(3, 5, np.arange(24)), bits.ravel())


def test_threshold():
    assert threshold(0.0) == 0
    assert threshold(0.5) == 2**31
    assert threshold(1.0) == M32
    with pytest.raises(ValueError):
        threshold(-0.1)


def test_dropout_fraction_and_scale():
    mask = dropout_mask(7, 2, 100_000, 0.3, np.float32)
    assert mask.dtype == np.float32
    assert abs(np.mean(mask == 0) - 0.3) < 0.01
    assert set(np.unique(mask)) == {np.float32(0), np.float32(1 / 0.7)}


def test_zero_probability_never_hits():
    assert np.all(dropout_mask(7, 2, 100_000, 0.0) == 1)
    assert np.all(zoneout_mask(7, 2, 100_000, 0.0) == 0)


def test_zoneout_fraction_and_agreement_with_dropout():
    keep_prev = zoneout_mask(7, 2, 100_000, 0.3, np.float64)
    assert abs(keep_prev.mean() - 0.3) < 0.01
    # Both masks are hit on the same draws.
    np.testing.assert_array_equal(keep_prev == 1, dropout_mask(7, 2, 100_000, 0.3) == 0)


def test_masks_depend_on_seed_and_mask_id_only():
    base = dropout_mask(1, 0, (32, 64), 0.5)
    np.testing.assert_array_equal(base, dropout_mask(1, 0, (32, 64), 0.5))
    assert not np.array_equal(base, dropout_mask(2, 0, (32, 64), 0.5))
    assert not np.array_equal(base, dropout_mask(1, 1, (32, 64), 0.5))
    assert not np.array_equal(base, dropout_mask(1 + 2**32, 0, (32, 64), 0.5))


def _test_indices() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate(
        [
            np.arange(2000, dtype=np.uint64),
            np.arange(2**32 - 500, 2**32 + 500, dtype=np.uint64),
            rng.integers(0, 2**64 - 1, 1000, dtype=np.uint64, endpoint=True),
            np.array([2**64 - 1], dtype=np.uint64),
        ]
    )


C_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>

/* argv: seed mask_id; stdin: uint64 indices; stdout: uint32 draws. */
int main(int argc, char **argv)
{
    uint64_t seed = strtoull(argv[1], NULL, 10), index;
    uint32_t mask_id = (uint32_t)strtoul(argv[2], NULL, 10);
    while (fread(&index, sizeof index, 1, stdin) == 1) {
        uint32_t bits = symrnn_philox_bits(seed, mask_id, index);
        fwrite(&bits, sizeof bits, 1, stdout);
    }
    return argc == 3 ? 0 : 1;
}
"""


def test_c_source_matches_numpy(tmp_path):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH")
    src, exe = tmp_path / "rng.c", tmp_path / "rng"
    src.write_text(C_SOURCE + C_DRIVER)
    subprocess.run(
        [cc, "-std=c99", "-O2", "-Wall", "-Werror", str(src), "-o", str(exe)], check=True
    )
    index = _test_indices()
    for seed in SEEDS:
        for mask_id in MASK_IDS:
            out = subprocess.run(
                [str(exe), str(seed), str(mask_id)],
                input=index.tobytes(),
                capture_output=True,
                check=True,
            ).stdout
            np.testing.assert_array_equal(
                np.frombuffer(out, dtype=np.uint32), random_bits_at(seed, mask_id, index)
            )


FILL_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>

/* argv: seed mask_id start n; stdout: the n uint32 draws of symrnn_philox_fill. */
int main(int argc, char **argv)
{
    uint64_t seed = strtoull(argv[1], NULL, 10), start = strtoull(argv[3], NULL, 10);
    uint32_t mask_id = (uint32_t)strtoul(argv[2], NULL, 10);
    long n = atol(argv[4]);
    uint32_t *out = malloc((size_t)n * sizeof *out);
    symrnn_philox_fill(seed, mask_id, start, n, out);
    fwrite(out, sizeof *out, (size_t)n, stdout);
    free(out);
    return argc == 5 ? 0 : 1;
}
"""


@pytest.mark.parametrize("isa", ["-march=native", "-mavx2", "-mno-avx"])
def test_c_fill_matches_numpy(isa, tmp_path):
    """The vector fill (AVX-512, AVX2, or the scalar loop) draws symrnn_philox_bits' bits,
    from any start (within a block too), across the carry into the high counter word and the
    wrap at 2**64."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH")
    src, exe = tmp_path / "fill.c", tmp_path / "fill"
    src.write_text("#define SYMRNN_INLINE static inline\n" + C_SOURCE + C_FILL_SOURCE
                   + FILL_DRIVER)
    done = subprocess.run([cc, "-std=gnu99", "-O2", "-Wall", "-Wextra", "-Werror", isa,
                           str(src), "-o", str(exe)], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        pytest.skip(f"{cc} {isa} refused: {done.stderr[-300:]}")
    for seed, mask_id, start, n in ((0, 0, 0, 100), (2**40 + 5, 7, 2**32 - 37, 203),
                                    (123, 2**32 - 1, 2**64 - 50, 67), (99, 1, 2**33 - 3, 5),
                                    (5, 2, 2**34 - 130, 300)):  # block 2**32: the carry
        out = subprocess.run([str(exe), str(seed), str(mask_id), str(start), str(n)],
                             capture_output=True, check=True).stdout
        index = np.uint64(start) + np.arange(n, dtype=np.uint64)  # wraps as C does
        np.testing.assert_array_equal(np.frombuffer(out, dtype=np.uint32),
                                      random_bits_at(seed, mask_id, index))


CUDA_KERNEL = r"""
extern "C" __global__ void draw(uint64_t seed, uint32_t mask_id, uint32_t *out, uint64_t n)
{
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = symrnn_philox_bits(seed, mask_id, i);
}
"""


@pytest.mark.nvcc
def test_c_source_compiles_as_cuda(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not on PATH")
    src, ptx = tmp_path / "rng.cu", tmp_path / "rng.ptx"
    src.write_text("#define SYMRNN_INLINE __device__ __forceinline__\n" + C_SOURCE + CUDA_KERNEL)
    subprocess.run([nvcc, "-ptx", "-arch=sm_90", str(src), "-o", str(ptx)], check=True)
    assert ".entry draw" in ptx.read_text()
