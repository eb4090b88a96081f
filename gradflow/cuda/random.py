"""Launchers for kernels/random.cu: uniform and normal draws on the GPU from a counter-based
generator whose whole state is (seed, offset), kept per device by `gradflow.random`.

The kernels read the seed and a base offset from a two-word device array: for eager draws a
per-device pair (seed, 0) refreshed when the seed changes; while a step is captured, the
graph's own pair, which each replay sets to the generator's state at that moment.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import compiler, graphs

_eager_states: dict = {}  # device id (None for the emulator's NumPy) -> (state array, seed)


def _state(xp: Any, seed: int) -> Any:
    """The (seed, base) device pair the next draw reads."""
    if graphs.capturing():
        return graphs.rng_state()
    key = None if xp is np else xp.cuda.Device().id
    held = _eager_states.get(key)
    if held is None or held[1] != seed:
        # NOTE: a reseed is rare and happens between steps: one small copy then, none per draw
        held = _eager_states[key] = (xp.asarray(np.array([seed, 0], np.uint64)), seed)
    return held[0]


def _draw(name: str, xp: Any, shape: tuple, dtype: Any, key: tuple, extra: tuple) -> Any:
    out = xp.empty(shape, dtype)
    seed, offset = key
    compiler.launch_loop("random", name, out.dtype, out.size,
                         (out, np.int64(out.size), _state(xp, seed), np.uint64(offset), *extra))
    return out


def uniform(xp: Any, shape: tuple, dtype: Any, key: tuple) -> Any:
    """Samples in [0, 1) of a kernel dtype (float32, float64, float16, bfloat16), from
    generator state key=(seed, offset); 16-bit draws are k / 2**11 (float16) or k / 2**8
    (bfloat16), exact, so never 1."""
    return _draw("uniform", xp, shape, dtype, key, ())


def normal(xp: Any, shape: tuple, dtype: Any, key: tuple, mean: float, std: float) -> Any:
    """Normal samples of a kernel dtype with the given mean and std (computed in float32
    for float16 and bfloat16, rounded once)."""
    scalar = compiler.acc_dtype(dtype).type
    return _draw("normal", xp, shape, dtype, key, (scalar(mean), scalar(std)))
