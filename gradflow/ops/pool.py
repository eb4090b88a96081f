"""2-D pooling: max and average over sliding windows and their adaptive forms
(torch.nn.functional.max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d).

Fixed windows run the ops `MaxPool2d` and `LinearPool`, which pick once, by `_arrays`: kernel
arrays run kernels/pool.cu through gradflow.cuda.pool, other arrays the NumPy/CuPy twins in
gradflow.ops.pool_arrays. Adaptive average pooling runs `AdaptiveLinearPool`: kernel arrays
its own kernels, other arrays avg_pool2d's twins where the cells tile the input. Other adaptive
windows differ in size; they are gathered at the largest size with `getitem`, whose backward
is a scatter-add. The composite references (`_max_pool2d_reference`,
`_avg_pool2d_reference`) define fixed-window pooling from differentiable ops (Im2col's columns,
`max` and `sum`); the tests hold the twins to them, and the kernels to the twins.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import numpy as np

from ..argcheck import pair
from ..autograd.function import Op
from ..backend import move_array
from ..cuda import compiler
from ..cuda import pool as kernels
from ..tensor import Tensor
from . import pool_arrays, reduce
from .adjoint import LinearOp, adjoints
from .conv import Im2col
from .index import getitem
from .shape import reshape
from .window import Window, check_window, from_batch, to_batch


def _arrays(a: Any):
    """The module that pools array `a`: gradflow.cuda.pool for kernel arrays, else its
    NumPy/CuPy twin gradflow.ops.pool_arrays (the same functions and arguments)."""
    return kernels if compiler.uses_kernels(a) else pool_arrays


class MaxPool2d(Op):
    """Max pooling: the window maxima and their flat positions in each plane."""

    op_name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, out_size, window):
        pt, _, pl, _ = window.padding
        ctx.geometry = (window.kernel, window.stride, (pt, pl), window.dilation)
        values, ctx.argmax = _arrays(x.array).maxpool2d(x.array, out_size, *ctx.geometry)
        ctx.in_shape = tuple(x.shape)
        return values, ctx.argmax

    @staticmethod
    def backward(ctx, g, _):
        return MaxPool2dBackward.apply(g, argmax=ctx.argmax, in_shape=ctx.in_shape,
                                       geometry=ctx.geometry)


class MaxPool2dBackward(Op):
    """Route each window's gradient to its maximum; its own backward gathers at the maxima."""

    op_name = "max_pool2d_backward"

    @staticmethod
    def forward(ctx, g, argmax, in_shape, geometry):
        ctx.argmax = argmax
        return _arrays(g.array).maxpool2d_backward(g.array, argmax, in_shape, *geometry)

    @staticmethod
    def backward(ctx, gg):
        n, c, h, w = gg.shape
        xp, argmax = gg._xp, ctx.argmax
        planes = Tensor._wrap(xp.arange(n * c)[:, None])
        picked = getitem(reshape(gg, (n * c, h * w)),
                         (planes, Tensor._wrap(argmax.reshape(n * c, -1))))
        return reshape(picked, argmax.shape)


class PoolKernels(NamedTuple):
    """A linear pooling map's two array functions (kernels or their NumPy/CuPy twins):
    `forward(x)` and its adjoint `adjoint(g, shape)`."""

    forward: Callable
    adjoint: Callable


class LinearPool(LinearOp):
    """Average pooling (`pool.forward`); its adjoint op, `LinearPoolAdjoint`, runs
    `pool.adjoint`."""

    op_name, params = "avg_pool2d", ("pool",)

    @staticmethod
    def compute(x, pool):
        return pool.forward(x)


class LinearPoolAdjoint(LinearOp):
    """The backward of `LinearPool`, whose own backward is that op again."""

    op_name, params = "avg_pool2d_backward", ("pool", "shape")

    @staticmethod
    def compute(g, pool, shape):
        return pool.adjoint(g, shape)


class AdaptiveLinearPool(LinearPool):
    """Adaptive average pooling, under its own name in errors."""

    op_name = "adaptive_avg_pool2d"


class AdaptiveLinearPoolAdjoint(LinearPoolAdjoint):
    """The backward of `AdaptiveLinearPool`."""

    op_name = "adaptive_avg_pool2d_backward"


adjoints(LinearPool, LinearPoolAdjoint)
adjoints(AdaptiveLinearPool, AdaptiveLinearPoolAdjoint)


def _avg_pool(arrays: Any, out_size: tuple, **geometry: Any) -> PoolKernels:
    """avg_pool2d's map and adjoint from `arrays` (a module `_arrays` picks) over one
    geometry: kernel, stride, (top, left) padding, count_include_pad and divisor."""
    return PoolKernels(functools.partial(arrays.avgpool2d, out_size=out_size, **geometry),
                       functools.partial(arrays.avgpool2d_backward, **geometry))


def _pool_window(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, ceil_mode: bool) -> tuple:
    """The Window a pooling op slides over x, and its output size (oh, ow)."""
    kernel = pair(op, "kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else pair(op, "stride", stride, minimum=1)
    pad = pair(op, "padding", padding, minimum=0)
    dilation = pair(op, "dilation", dilation, minimum=1)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(2 * p > s for p, s in zip(pad, span)):
        raise RuntimeError(f"{op}: padding {pad} should be at most half of the kernel size "
                           f"{kernel} (dilated span {span})")
    extra = []
    for n, k, s, p in zip(x.shape[2:], span, stride, pad):
        size = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
        # NOTE: torch's ceil_mode rule: the last window must start inside the input or its
        # left padding, else it is dropped.
        if ceil_mode and (size - 1) * s >= n + p:
            size -= 1
        # NOTE: a ceil_mode window may run past the padded input; padding it further lets
        # Im2col read it. Those cells never count: -inf for max, outside avg's divisor.
        extra.append(max((size - 1) * s + k - (n + 2 * p), 0))
    window = Window(kernel, stride, dilation,
                    (pad[0], pad[0] + extra[0], pad[1], pad[1] + extra[1]))
    return window, check_window(op, window, x.shape)


def _windows(x: Tensor, window: Window, fill: float, out_size: tuple) -> Tensor:
    """x's pooling windows as (N, C, kh*kw, oh, ow), padding filled with `fill`."""
    n, c = x.shape[:2]
    cols = Im2col.apply(x, window=window, value=fill)
    return reshape(cols, (n, c, window.kernel[0] * window.kernel[1]) + tuple(out_size))


def _check_float(op: str, x: Tensor) -> None:
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype}")


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False):
    """Largest value in each window; with `return_indices`, also where it was as a flat index
    into each input plane, for max_unpool2d (torch.nn.functional.max_pool2d)."""
    x, batched = to_batch("max_pool2d", input)
    window, out_size = _pool_window("max_pool2d", x, kernel_size, stride, padding, dilation,
                                    ceil_mode)
    values, indices = MaxPool2d.apply(x, out_size=out_size, window=window)
    out = from_batch(values, batched)
    return (out, from_batch(indices, batched)) if return_indices else out


def _max_pool2d_reference(x: Tensor, window: Window, out_size: tuple,
                          return_indices: bool) -> tuple:
    """max_pool2d of a 4-D x from differentiable ops: `max` along each Im2col window, and the
    plane indices of the maxima when asked (else None). `MaxPool2d` is held to it."""
    values, taps = reduce.max(_windows(x, window, pool_arrays.lowest(x.dtype), out_size),
                              dim=2)
    if not return_indices:
        return values, None
    pt, _, pl, _ = window.padding
    indices = pool_arrays.plane_positions(taps._xp, taps.array, x.shape[3], out_size,
                                          window.kernel, window.stride, (pt, pl),
                                          window.dilation)
    return values, Tensor._wrap(indices)


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean of each window (torch.nn.functional.avg_pool2d)."""
    x, batched = to_batch("avg_pool2d", input)
    _check_float("avg_pool2d", x)
    window, out_size = _pool_window("avg_pool2d", x, kernel_size, stride, padding, 1,
                                    ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("avg_pool2d: divisor_override must be non-zero")
    pool = _avg_pool(_arrays(x.array), out_size, kernel=window.kernel, stride=window.stride,
                     padding=(window.padding[0], window.padding[2]),
                     count_include_pad=count_include_pad, divisor=divisor_override)
    return from_batch(LinearPool.apply(x, pool=pool), batched)


def _avg_pool2d_reference(x: Tensor, window: Window, out_size: tuple, count_include_pad: bool,
                          divisor_override: int | None) -> Tensor:
    """avg_pool2d of a 4-D x from differentiable ops: `sum` along each Im2col window, over
    torch's divisor. `LinearPool` is held to it."""
    total = reduce.sum(_windows(x, window, 0.0, out_size), dim=2)
    if divisor_override is not None:
        return total / divisor_override
    pad = (window.padding[0], window.padding[2])
    counts = [pool_arrays.window_counts(n, o, k, s, p, count_include_pad) for n, o, k, s, p in
              zip(x.shape[2:], out_size, window.kernel, window.stride, pad)]
    divisor = move_array(np.outer(*counts).astype(x.dtype), x.device)
    return total / Tensor._wrap(divisor)


def _adaptive_size(op: str, x: Tensor, output_size: Any) -> tuple:
    """(oh, ow) from an int or a pair whose None entries keep the input's size."""
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2:
        raise TypeError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    sizes = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(sizes))
    return pair(op, "output_size", sizes, minimum=1)


def _adaptive_axis(n_in: int, n_out: int) -> tuple:
    """torch's adaptive windows along one axis, window i covering
    [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out)), as (n_out, K) positions padded to the
    largest size K by repeating each window's last position, and a mask of the real ones."""
    i = np.arange(n_out)
    start, end = i * n_in // n_out, -(-(i + 1) * n_in // n_out)
    index = start[:, None] + np.arange((end - start).max())
    return np.minimum(index, end[:, None] - 1), index < end[:, None]


def _adaptive_windows(x: Tensor, out_size: tuple) -> tuple:
    """x's adaptive windows gathered as (N, C, oh, ow, K), their flat positions in the input
    plane (oh, ow, K) on x's device, and the (oh, ow, K) mask of real (unrepeated) entries."""
    n, c, h, w = x.shape
    (ih, mh), (iw, mw) = _adaptive_axis(h, out_size[0]), _adaptive_axis(w, out_size[1])
    flat = (ih[:, None, :, None] * w + iw[None, :, None, :]).reshape(out_size + (-1,))
    mask = (mh[:, None, :, None] & mw[None, :, None, :]).reshape(out_size + (-1,))
    flat = Tensor._wrap(move_array(flat, x.device))
    windows = getitem(reshape(x, (n, c, h * w)), (slice(None), slice(None), flat))
    return windows, flat, mask


def _divides(x: Tensor, out_size: tuple) -> bool:
    return x.shape[2] % out_size[0] == 0 and x.shape[3] % out_size[1] == 0


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average over the windows that split the input into `output_size` cells
    (torch.nn.functional.adaptive_avg_pool2d)."""
    x, batched = to_batch("adaptive_avg_pool2d", input)
    _check_float("adaptive_avg_pool2d", x)
    out_size = _adaptive_size("adaptive_avg_pool2d", x, output_size)
    if compiler.uses_kernels(x.array):
        pool = PoolKernels(functools.partial(kernels.adaptive_avgpool2d, out_size=out_size),
                           kernels.adaptive_avgpool2d_backward)
    elif _divides(x, out_size):
        # NOTE: cells that tile the input are avg_pool2d's windows, with stride = kernel.
        kernel = (x.shape[2] // out_size[0], x.shape[3] // out_size[1])
        pool = _avg_pool(pool_arrays, out_size, kernel=kernel, stride=kernel, padding=(0, 0),
                         count_include_pad=True, divisor=None)
    else:
        return from_batch(_adaptive_avg_pool2d_reference(x, out_size), batched)
    return from_batch(AdaptiveLinearPool.apply(x, pool=pool), batched)


def _adaptive_avg_pool2d_reference(x: Tensor, out_size: tuple) -> Tensor:
    """adaptive_avg_pool2d of a 4-D x from differentiable ops, for any cells: a weighted sum
    over the gathered windows (the CPU path where the cells do not tile the input)."""
    windows, _, mask = _adaptive_windows(x, out_size)
    weights = move_array((mask / mask.sum(-1, keepdims=True)).astype(x.dtype), x.device)
    return reduce.sum(windows * Tensor._wrap(weights), dim=-1)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False):
    """Largest value in each of the windows that split the input into `output_size` cells
    (torch.nn.functional.adaptive_max_pool2d)."""
    x, batched = to_batch("adaptive_max_pool2d", input)
    out_size = _adaptive_size("adaptive_max_pool2d", x, output_size)
    if _divides(x, out_size):
        kernel = (x.shape[2] // out_size[0], x.shape[3] // out_size[1])
        return max_pool2d(input, kernel, return_indices=return_indices)
    # NOTE: a window's repeated last entry only duplicates a value, and max picks the first
    # occurrence, so the padding needs no mask here.
    windows, flat, _ = _adaptive_windows(x, out_size)
    values, taps = reduce.max(windows, dim=-1)
    out = from_batch(values, batched)
    if not return_indices:
        return out
    xp = flat._xp
    oh, ow = out_size
    indices = flat.array[xp.arange(oh)[:, None], xp.arange(ow), taps.array]
    return out, from_batch(Tensor._wrap(indices), batched)
