"""Launchers for kernels/pool.cu: max, average and adaptive-average pooling on CuPy arrays,
forward and backward. Inputs are (N, C, H, W); the kernels see N*C planes."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import array_module
from . import compiler


def _planes(shape: tuple, out_size: tuple) -> tuple:
    n, c, h, w = shape
    return tuple(np.int64(v) for v in (n * c, h, w, *out_size))


def _window(kernel: tuple, stride: tuple, padding: tuple, dilation: tuple | None) -> tuple:
    values = (*kernel, *stride, *padding) + (tuple(dilation) if dilation else ())
    return tuple(np.int32(v) for v in values)


def maxpool2d(x: Any, out_size: tuple, kernel: tuple, stride: tuple, padding: tuple,
              dilation: tuple) -> tuple:
    """Window maxima and their flat positions (row * W + col) in each input plane."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    out_shape = x.shape[:2] + tuple(out_size)
    y = xp.empty(out_shape, x.dtype)
    argmax = xp.empty(out_shape, np.int64)
    compiler.launch_loop("pool", "maxpool2d_fwd", x.dtype, y.size,
                         (x, y, argmax, *_planes(x.shape, out_size),
                          *_window(kernel, stride, padding, dilation)))
    return y, argmax


def maxpool2d_backward(gy: Any, argmax: Any, in_shape: tuple, kernel: tuple, stride: tuple,
                       padding: tuple, dilation: tuple) -> Any:
    """Each input pixel's gradient: the sum of gy over the windows whose maximum it was."""
    xp = array_module(gy)
    gy = xp.ascontiguousarray(gy)
    gx = xp.empty(in_shape, gy.dtype)
    compiler.launch_loop("pool", "maxpool2d_bwd", gy.dtype, gx.size,
                         (gy, xp.ascontiguousarray(argmax), gx,
                          *_planes(in_shape, gy.shape[2:]),
                          *_window(kernel, stride, padding, dilation)))
    return gx


def _avg_options(count_include_pad: bool, divisor: int | None) -> tuple:
    return np.int32(count_include_pad), np.int64(divisor or 0)


def avgpool2d(x: Any, out_size: tuple, kernel: tuple, stride: tuple, padding: tuple,
              count_include_pad: bool, divisor: int | None) -> Any:
    """Window means with torch's divisor rules (`divisor` overrides when given)."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:2] + tuple(out_size), x.dtype)
    compiler.launch_loop("pool", "avgpool2d_fwd", x.dtype, y.size,
                         (x, y, *_planes(x.shape, out_size),
                          *_window(kernel, stride, padding, None),
                          *_avg_options(count_include_pad, divisor)))
    return y


def avgpool2d_backward(gy: Any, in_shape: tuple, kernel: tuple, stride: tuple,
                       padding: tuple, count_include_pad: bool, divisor: int | None) -> Any:
    """Spread each window's gradient evenly over the input cells it averaged."""
    xp = array_module(gy)
    gy = xp.ascontiguousarray(gy)
    gx = xp.empty(in_shape, gy.dtype)
    compiler.launch_loop("pool", "avgpool2d_bwd", gy.dtype, gx.size,
                         (gy, gx, *_planes(in_shape, gy.shape[2:]),
                          *_window(kernel, stride, padding, None),
                          *_avg_options(count_include_pad, divisor)))
    return gx


def adaptive_avgpool2d(x: Any, out_size: tuple) -> Any:
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:2] + tuple(out_size), x.dtype)
    compiler.launch_loop("pool", "adaptive_avgpool2d_fwd", x.dtype, y.size,
                         (x, y, *_planes(x.shape, out_size)))
    return y


def adaptive_avgpool2d_backward(gy: Any, in_shape: tuple) -> Any:
    xp = array_module(gy)
    gy = xp.ascontiguousarray(gy)
    gx = xp.empty(in_shape, gy.dtype)
    compiler.launch_loop("pool", "adaptive_avgpool2d_bwd", gy.dtype, gx.size,
                         (gy, gx, *_planes(in_shape, gy.shape[2:])))
    return gx
