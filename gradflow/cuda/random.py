"""Launchers for kernels/random.cu: uniform and normal draws on the GPU from a counter-based
generator whose whole state is (seed, offset), kept per device by `gradflow.random`."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import compiler, graphs

_zero_bases: dict = {}


def _base(xp: Any) -> Any:
    """The device counter added to every draw's offset: a captured graph's own while a step
    is being captured, else a zero kept per device."""
    if graphs.capturing():
        return graphs.rng_base()
    key = None if xp is np else xp.cuda.Device().id
    if key not in _zero_bases:
        _zero_bases[key] = xp.zeros(1, np.uint64)
    return _zero_bases[key]


def _draw(name: str, xp: Any, shape: tuple, dtype: Any, key: tuple, extra: tuple) -> Any:
    out = xp.empty(shape, dtype)
    seed, offset = key
    compiler.launch_loop("random", name, out.dtype, out.size,
                         (out, np.int64(out.size), np.uint64(seed), _base(xp),
                          np.uint64(offset), *extra))
    return out


def uniform(xp: Any, shape: tuple, dtype: Any, key: tuple) -> Any:
    """Samples in [0, 1) of float32 or float64 `dtype`, from generator state key=(seed,
    offset)."""
    return _draw("uniform", xp, shape, dtype, key, ())


def normal(xp: Any, shape: tuple, dtype: Any, key: tuple, mean: float, std: float) -> Any:
    """Normal samples of float32 or float64 `dtype` with the given mean and std."""
    scalar = np.dtype(dtype).type
    return _draw("normal", xp, shape, dtype, key, (scalar(mean), scalar(std)))
