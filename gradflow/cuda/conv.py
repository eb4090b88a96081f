"""Launchers for kernels/conv.cu: im2col and col2im on CuPy arrays, the GPU twins of
`gradflow.ops.conv.im2col_array` and `col2im_array`, for every kernel dtype (float16 and
bfloat16 included: col2im sums in float32)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import array_module
from . import compiler


def _geometry(shape: tuple, window: Any) -> tuple:
    """The kernels' shape arguments: sizes as int64, window ints as int32."""
    n, c, h, w = shape
    oh, ow = window.out_size(h, w)
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    pt, _, pl, _ = window.padding
    return (*(np.int64(v) for v in (n, c, h, w, oh, ow)),
            *(np.int32(v) for v in (kh, kw, sh, sw, pt, pl, dh, dw)))


def im2col(x: Any, window: Any, value: float, batch_inner: bool) -> Any:
    """(N, C, H, W) -> (N, C*kh*kw, oh*ow) columns, or (C*kh*kw, N*oh*ow) with
    `batch_inner`; padding reads give `value`."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    oh, ow = window.out_size(h, w)
    rows = c * window.kernel[0] * window.kernel[1]
    cols = xp.empty((rows, n * oh * ow) if batch_inner else (n, rows, oh * ow), x.dtype)
    compiler.launch_loop("conv", "im2col", x.dtype, cols.size,
                         (x, cols, *_geometry(x.shape, window),
                          compiler.acc_dtype(x.dtype).type(value), np.int32(batch_inner)))
    return cols


def col2im(cols: Any, shape: tuple, window: Any, batch_inner: bool) -> Any:
    """The adjoint of `im2col`: sum each column entry into the pixel it was read from."""
    xp = array_module(cols)
    cols = xp.ascontiguousarray(cols)
    x = xp.empty(shape, cols.dtype)
    compiler.launch_loop("conv", "col2im", cols.dtype, x.size,
                         (cols, x, *_geometry(shape, window), np.int32(batch_inner)))
    return x
