"""The GPU's counter-based generator (kernels/random.cu): Philox4x32-10 against its published
known answers, each kernel against a NumPy transcription of the same formulas, draws that
split into parts equal one whole draw, and GPU state saved and restored exactly."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.cuda import random as cuda_random

MASK = 0xFFFFFFFF
# Random123's known-answer vectors for Philox4x32-10: (counter, key, output).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((MASK,) * 4, (MASK,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def philox(counter: tuple, key: tuple) -> tuple:
    """Philox4x32-10 in plain Python integers, the reference the kernels are held to."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + 0x9E3779B9) & MASK, (k1 + 0xBB67AE85) & MASK
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK, (p0 >> 32) ^ c3 ^ k1, p0 & MASK
    return c0, c1, c2, c3


def words(n: int, seed: int, offset: int) -> np.ndarray:
    """(n, 4) Philox words of elements offset .. offset+n-1 under `seed`, as the kernels
    form them: counter (lo, hi of offset + i, 0, 0), key (lo, hi of seed)."""
    key = (seed & MASK, seed >> 32)
    return np.array([philox(((offset + i) & MASK, (offset + i) >> 32, 0, 0), key)
                     for i in range(n)], dtype=np.uint64)


def unit53(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return ((hi << np.uint64(32) | lo) >> np.uint64(11)).astype(np.float64) / 2.0 ** 53


@pytest.mark.parametrize("counter,key,want", KNOWN_ANSWERS)
def test_reference_philox_matches_known_answers(counter, key, want):
    assert philox(counter, key) == want


SEED, OFFSET = 0x0123456789ABCDEF, 2 ** 32 - 5  # the counter's low word wraps mid-draw


@pytest.mark.parametrize("n", [1, 37, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_kernel_matches_reference(kernel_backend, n, dtype):
    w = words(n, SEED, OFFSET)
    want = ((w[:, 0] >> np.uint64(8)).astype(np.float64) / 2.0 ** 24 if dtype == np.float32
            else unit53(w[:, 0], w[:, 1]))
    xp = _xp(kernel_backend)
    with kernel_backend.active() as launched:
        got = cuda_random.uniform(xp, (n,), dtype, (SEED, OFFSET))
    assert launched == ["random.uniform"]
    np.testing.assert_array_equal(_host(got), want.astype(dtype))
    assert 0 <= _host(got).min() and _host(got).max() < 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_kernel_matches_box_muller(kernel_backend, dtype):
    w = words(501, SEED, OFFSET)
    u1, u2 = 1.0 - unit53(w[:, 0], w[:, 1]), unit53(w[:, 2], w[:, 3])
    want = 1.5 + 2.0 * np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)
    with kernel_backend.active():
        got = cuda_random.normal(_xp(kernel_backend), (3, 167), dtype, (SEED, OFFSET), 1.5, 2.0)
    np.testing.assert_allclose(_host(got).ravel(), want,
                               rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_draws_in_parts_equal_one_draw(kernel_backend):
    """The property a checkpoint relies on: state (seed, offset) alone fixes what comes next."""
    xp = _xp(kernel_backend)
    with kernel_backend.active():
        whole = _host(cuda_random.uniform(xp, (100,), np.float64, (7, 10)))
        head = _host(cuda_random.uniform(xp, (33,), np.float64, (7, 10)))
        tail = _host(cuda_random.uniform(xp, (67,), np.float64, (7, 43)))
        other_seed = _host(cuda_random.uniform(xp, (100,), np.float64, (8, 10)))
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)
    assert (other_seed != whole).all()


def test_generator_state_bookkeeping():
    """Offsets advance per device by the elements drawn; seeding resets them; bad states are
    refused with the field named."""
    from gradflow import random
    gf.manual_seed(5)
    assert random.cuda_generators.take(0, 10) == (5, 0)
    assert random.cuda_generators.take(0, 3) == (5, 10)
    assert random.cuda_generators.take(1, 4) == (5, 0)
    saved = random.get_cuda_rng_state(0)
    assert saved == {"seed": 5, "offset": 13}
    random.cuda_generators.take(0, 100)
    random.set_cuda_rng_state(saved, 0)
    assert random.cuda_generators.take(0, 1) == (5, 13)
    for bad in ({"seed": -1, "offset": 0}, {"seed": 1, "offset": 2.5}, {"seed": 1}):
        with pytest.raises(ValueError, match="set_rng_state: the CUDA state's"):
            random.set_cuda_rng_state(bad, 0)
    gf.manual_seed(5)
    assert random.cuda_generators.take(0, 1) == (5, 0)


@pytest.mark.gpu
def test_gpu_tensors_draw_from_the_saved_state():
    gf.manual_seed(3)
    gf.rand(17, device="cuda")
    state = gf.cuda.get_rng_state()
    first = [gf.rand(5, 7, device="cuda"), gf.randn(1001, device="cuda", dtype=gf.float64),
             gf.randint(3, 11, (4000,), device="cuda")]
    gf.rand(9, device="cuda")
    gf.cuda.set_rng_state(state)
    again = [gf.rand(5, 7, device="cuda"), gf.randn(1001, device="cuda", dtype=gf.float64),
             gf.randint(3, 11, (4000,), device="cuda")]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
    ints = first[2].cpu().numpy()
    assert ints.min() == 3 and ints.max() == 10 and ints.dtype == np.int64
    normal = first[1].cpu().numpy()
    assert abs(normal.mean()) < 0.15 and abs(normal.std() - 1) < 0.1


def _xp(backend):
    if backend.name == "cuda":
        import cupy
        return cupy
    return np


def _host(a):
    return a.get() if hasattr(a, "get") else a
