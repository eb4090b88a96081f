"""Launchers for kernels/depthwise.cu on CuPy arrays: the depthwise convolution (groups ==
in_channels, out_channels = M * in_channels) and its input and weight gradients, the GPU
twins of `conv2d_array`, `conv2d_grad_input_array` and `conv2d_grad_weight_array` in
gradflow/ops/conv.py for those groups. Inputs that are not contiguous are copied first."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..backend import array_module
from . import compiler

REDUCE_THREADS = 256  # threads per weight entry in depthwise2d_bwd_weight
# The element types kernels/depthwise.cu instantiates; arrays of another kernel dtype take
# the grouped (im2col) path (tests/test_depthwise_kernels.py holds this to the file).
DTYPES = (np.dtype(np.float32), np.dtype(np.float64), dtypes.float16, dtypes.bfloat16)


def _geometry(shape: tuple, out_channels: int, window: Any) -> tuple:
    """The kernels' shape arguments for an (N, C, H, W) input: sizes as int64, the channel
    multiplier and the window as int32."""
    n, c, h, w = shape
    oh, ow = window.out_size(h, w)
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    pt, _, pl, _ = window.padding
    return (*(np.int64(v) for v in (n, c, h, w, oh, ow)),
            *(np.int32(v) for v in (out_channels // c, kh, kw, sh, sw, pt, pl, dh, dw)))


def forward(x: Any, w: Any, window: Any) -> Any:
    """(N, C, H, W) x (M*C, 1, kh, kw) -> (N, M*C, oh, ow)."""
    xp = array_module(x)
    x, w = xp.ascontiguousarray(x), xp.ascontiguousarray(w)
    n, o = x.shape[0], w.shape[0]
    y = xp.empty((n, o, *window.out_size(*x.shape[2:])), x.dtype)
    compiler.launch_loop("depthwise", "depthwise2d_fwd", x.dtype, y.size,
                         (x, w, y, *_geometry(x.shape, o, window)))
    return y


def grad_input(gy: Any, w: Any, shape: tuple, window: Any) -> Any:
    """The input gradient, of `shape` (N, C, H, W), from the output gradient and the weight."""
    xp = array_module(gy)
    gy, w = xp.ascontiguousarray(gy), xp.ascontiguousarray(w)
    gx = xp.empty(shape, gy.dtype)
    compiler.launch_loop("depthwise", "depthwise2d_bwd_input", gy.dtype, gx.size,
                         (gy, w, gx, *_geometry(shape, w.shape[0], window)))
    return gx


def grad_weight(x: Any, gy: Any, wshape: tuple, window: Any) -> Any:
    """The weight gradient, of `wshape` (M*C, 1, kh, kw): one block per weight entry."""
    xp = array_module(x)
    x, gy = xp.ascontiguousarray(x), xp.ascontiguousarray(gy)
    gw = xp.empty(wshape, x.dtype)
    if gw.size:
        compiler.launch("depthwise", "depthwise2d_bwd_weight", x.dtype,
                        min(gw.size, compiler.MAX_BLOCKS), REDUCE_THREADS,
                        (x, gy, gw, *_geometry(x.shape, wshape[0], window)))
    return gw
