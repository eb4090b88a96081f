"""Launchers for kernels/softmax.cu: softmax along the last axis of a contiguous array,
forward and backward, one warp per row."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import array_module
from . import compiler

ROWS_PER_BLOCK = 8  # one warp per row


def _launch(name: str, arrays: tuple, rows: int, cols: int, *extra: Any) -> None:
    if rows and cols:
        compiler.launch("softmax", name, arrays[0].dtype,
                        compiler.blocks_for(rows, ROWS_PER_BLOCK), ROWS_PER_BLOCK * 32,
                        (*arrays, np.int64(rows), np.int64(cols), *extra))


def forward(x: Any, safe: bool) -> Any:
    """softmax(x) over the last axis; with `safe`, rows with no finite entry give zeros."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty_like(x)
    cols = x.shape[-1] if x.ndim else 1
    _launch("softmax_fwd", (x, y), x.size // max(cols, 1), cols, np.int32(safe))
    return y


def backward(y: Any, g: Any) -> Any:
    """The input gradient y * (g - sum(g * y)) over the last axis."""
    xp = array_module(y)
    y, g = xp.ascontiguousarray(y), xp.ascontiguousarray(g, dtype=y.dtype)
    gx = xp.empty_like(y)
    cols = y.shape[-1] if y.ndim else 1
    _launch("softmax_bwd", (y, g, gx), y.size // max(cols, 1), cols)
    return gx
