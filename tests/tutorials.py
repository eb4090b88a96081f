"""What the tutorial tests share: a step shows values as the tutorial prints them (`Shown`),
and `compare` holds gradflow's run of a step to PyTorch's run of the same source."""
import numpy as np
from helpers import require_torch, to_numpy

import gradflow as gf

th = require_torch()


class Steps(dict):
    """Tutorial steps by name: `@steps.step` registers a function `fn(torch, show)`."""

    def step(self, fn):
        self[fn.__name__] = fn
        return fn

    def run(self, name, lib):
        shown = Shown()
        self[name](lib, shown)
        return shown


class Shown:
    """What a step shows (the tutorials print it): label -> value, in order."""

    def __init__(self) -> None:
        self.items = []

    def __call__(self, label, value, random=False, rtol=1e-6):
        self.items.append((label, self._plain(value), random, rtol))

    def _plain(self, value):
        if isinstance(value, (gf.Tensor, th.Tensor)):
            # NOTE: a copy: both libraries' numpy() share memory with later in-place changes
            return ("tensor", np.array(to_numpy(value)), str(value.dtype).split(".")[-1])
        if isinstance(value, (th.Size, gf.Size)):
            return ("size", tuple(value))
        if isinstance(value, (th.device, gf.device)):
            return ("device", str(value))
        if isinstance(value, (bool, str)) or value is None:
            return value
        if isinstance(value, (int, float)):
            return ("number", float(value))
        if isinstance(value, np.ndarray):
            return ("array", value.copy())
        if isinstance(value, list):
            return ("array", np.array(value, dtype=float))
        return (type(value).__name__, str(value))


def compare(got: Shown, want: Shown) -> None:
    assert [g[0] for g in got.items] == [w[0] for w in want.items], "different steps shown"
    for (label, g, _, _), (_, w, is_random, rtol) in zip(got.items, want.items):
        if isinstance(w, tuple) and w[0] in ("tensor", "array", "number"):
            assert g[0] == w[0], f"{label}: gradflow shows a {g[0]}, torch a {w[0]}"
            if w[0] == "tensor":
                assert g[2] == w[2], f"{label}: dtype {g[2]} vs torch's {w[2]}"
            gv, wv = np.asarray(g[1]), np.asarray(w[1])
            assert gv.shape == wv.shape, f"{label}: shape {gv.shape} vs torch's {wv.shape}"
            if not is_random:
                atol = 1e-6 if rtol <= 1e-6 else rtol * 0.1  # loosened rtol: near-zero values too
                np.testing.assert_allclose(gv, wv, rtol=rtol, atol=atol,
                                           err_msg=f"{label} differs from PyTorch")
        else:
            assert g == w, f"{label}: gradflow shows {g!r}, torch {w!r}"
