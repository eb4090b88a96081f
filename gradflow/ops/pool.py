"""1-D and 2-D pooling: max and average over sliding windows and their adaptive forms
(torch.nn.functional.max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d, and
their 1-D forms, which run the 2-D ops on a height-1 view), power-average pooling
(lp_pool1d/2d/3d) and max unpooling (max_unpool1d/2d/3d). 3-D pooling is gradflow.ops.pool3d.

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
import math
from typing import Any, Callable, NamedTuple

import numpy as np

from .. import dtypes
from ..argcheck import ntuple, pair
from ..autograd.function import Op
from ..backend import move_array
from ..cuda import compiler
from ..cuda import pool as kernels
from ..tensor import Tensor
from . import elementwise, pool_arrays, reduce
from .adjoint import LinearOp, adjoints
from .conv import Im2col
from .index import check_range, getitem
from .shape import reshape, squeeze, unsqueeze
from .window import Window, batch_view, check_window, from_batch, to_batch


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
        return gather_planes(gg, ctx.argmax)


def gather_planes(g: Tensor, indices: Any) -> Tensor:
    """g[n, c].flat[indices[n, c]] for each plane: the gradient at the maxima (of any number
    of spatial axes), as `indices`' shape; its backward scatter-adds."""
    n, c = g.shape[:2]
    planes = Tensor._wrap(g._xp.arange(n * c)[:, None])
    picked = getitem(reshape(g, (n * c, -1)), (planes, Tensor._wrap(indices.reshape(n * c, -1))))
    return reshape(picked, indices.shape)


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


def pooled_sizes(op: str, in_size: tuple, kernel: tuple, stride: tuple, pad: tuple,
                 dilation: tuple, ceil_mode: bool) -> tuple:
    """The output size along each spatial axis of a pooling window, by torch's rules (its
    padding at most half the dilated span; ceil_mode's last window starts inside)."""
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(2 * p > s for p, s in zip(pad, span)):
        raise RuntimeError(f"{op}: padding {pad} should be at most half of the kernel size "
                           f"{kernel} (dilated span {span})")
    sizes = []
    for n, k, s, p in zip(in_size, span, stride, pad):
        size = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
        # NOTE: torch's ceil_mode rule: the last window must start inside the input or its
        # left padding, else it is dropped.
        if ceil_mode and (size - 1) * s >= n + p:
            size -= 1
        sizes.append(size)
    return tuple(sizes)


def _pool_window(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, ceil_mode: bool) -> tuple:
    """The Window a pooling op slides over x, and its output size (oh, ow)."""
    kernel = pair(op, "kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else pair(op, "stride", stride, minimum=1)
    pad = pair(op, "padding", padding, minimum=0)
    dilation = pair(op, "dilation", dilation, minimum=1)
    sizes = pooled_sizes(op, x.shape[2:], kernel, stride, pad, dilation, ceil_mode)
    # NOTE: a ceil_mode window may run past the padded input; padding it further lets
    # Im2col read it. Those cells never count: -inf for max, outside avg's divisor.
    extra = [max((o - 1) * s + d * (k - 1) + 1 - (n + 2 * p), 0) for n, o, k, s, p, d in
             zip(x.shape[2:], sizes, kernel, stride, pad, dilation)]
    window = Window(kernel, stride, dilation,
                    (pad[0], pad[0] + extra[0], pad[1], pad[1] + extra[1]))
    return window, check_window(op, window, x.shape)


def _windows(x: Tensor, window: Window, fill: float, out_size: tuple) -> Tensor:
    """x's pooling windows as (N, C, kh*kw, oh, ow), padding filled with `fill`."""
    n, c = x.shape[:2]
    cols = Im2col.apply(x, window=window, value=fill)
    return reshape(cols, (n, c, window.kernel[0] * window.kernel[1]) + tuple(out_size))


def check_float(op: str, x: Tensor) -> None:
    """Refuse integer inputs to average pooling (NotImplementedError, a RuntimeError, as torch
    refuses them to adaptive average pooling)."""
    if not dtypes.is_floating(x.dtype):
        raise NotImplementedError(f"{op}: expected a floating-point input, got {x.dtype}")


def _rows(op: str, input: Any) -> tuple:
    """A 1-D pool's input as (N, C, 1, L), the 2-D ops' height-1 planes, and whether it was
    batched."""
    x, batched = batch_view(op, input, 1)
    return unsqueeze(x, 2), batched


def _from_rows(out: Tensor, batched: bool) -> Tensor:
    return from_batch(squeeze(out, 2), batched)


def _row_sizes(op: str, kernel_size: Any, stride: Any, padding: Any, dilation: Any) -> tuple:
    """A 1-D pool's kernel, stride, padding and dilation as the (1, n) pairs of its height-1
    planes (stride None stays None: the kernel)."""
    kernel = (1,) + ntuple(op, "kernel_size", kernel_size, 1, minimum=1)
    stride = None if stride is None else (1,) + ntuple(op, "stride", stride, 1, minimum=1)
    return (kernel, stride, (0,) + ntuple(op, "padding", padding, 1, minimum=0),
            (1,) + ntuple(op, "dilation", dilation, 1, minimum=1))


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


def max_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False):
    """max_pool2d over (N, C, L) or (C, L) signals, as height-1 planes; indices are positions
    along L (torch.nn.functional.max_pool1d)."""
    x, batched = _rows("max_pool1d", input)
    kernel, stride, padding, dilation = _row_sizes("max_pool1d", kernel_size, stride, padding,
                                                   dilation)
    window, out_size = _pool_window("max_pool1d", x, kernel, stride, padding, dilation,
                                    ceil_mode)
    values, indices = MaxPool2d.apply(x, out_size=out_size, window=window)
    out = _from_rows(values, batched)
    return (out, _from_rows(indices, batched)) if return_indices else out


def _max_pool2d_reference(x: Tensor, window: Window, out_size: tuple,
                          return_indices: bool) -> tuple:
    """max_pool2d of a 4-D x from differentiable ops: `max` along each Im2col window, and the
    plane indices of the maxima when asked (else None). `MaxPool2d` is held to it."""
    values, taps = reduce.max(_windows(x, window, pool_arrays.lowest(x.dtype), out_size),
                              dim=2)
    if not return_indices:
        return values, None
    pt, _, pl, _ = window.padding
    indices = pool_arrays.plane_positions(taps._xp, taps.array, x.shape[2:], out_size,
                                          window.kernel, window.stride, (pt, pl),
                                          window.dilation)
    return values, Tensor._wrap(indices)


def check_divisor(op: str, divisor_override: Any) -> None:
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError(f"{op}: divisor_override must be non-zero")


def _avg_pool_planes(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
                     ceil_mode: bool, count_include_pad: bool,
                     divisor_override: int | None) -> Tensor:
    """avg_pool2d of a 4-D x, checked under the name `op`."""
    check_float(op, x)
    window, out_size = _pool_window(op, x, kernel_size, stride, padding, 1, ceil_mode)
    check_divisor(op, divisor_override)
    pool = _avg_pool(_arrays(x.array), out_size, kernel=window.kernel, stride=window.stride,
                     padding=(window.padding[0], window.padding[2]),
                     count_include_pad=count_include_pad, divisor=divisor_override)
    return LinearPool.apply(x, pool=pool)


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean of each window (torch.nn.functional.avg_pool2d)."""
    x, batched = to_batch("avg_pool2d", input)
    return from_batch(_avg_pool_planes("avg_pool2d", x, kernel_size, stride, padding,
                                       ceil_mode, count_include_pad, divisor_override),
                      batched)


def avg_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """avg_pool2d over (N, C, L) or (C, L) signals, as height-1 planes
    (torch.nn.functional.avg_pool1d)."""
    x, batched = _rows("avg_pool1d", input)
    kernel, stride, padding, _ = _row_sizes("avg_pool1d", kernel_size, stride, padding, 1)
    return _from_rows(_avg_pool_planes("avg_pool1d", x, kernel, stride, padding, ceil_mode,
                                       count_include_pad, None), batched)


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


def adaptive_sizes(op: str, x: Tensor, output_size: Any, dims: int) -> tuple:
    """The output size of an adaptive pool of x's `dims` spatial axes, from an int or a
    sequence of `dims` entries whose None entries keep the input's size."""
    seq = isinstance(output_size, (tuple, list))
    sizes = tuple(output_size) if seq else (output_size,) * dims
    if len(sizes) != dims:
        raise TypeError(f"{op}: output_size must be an int or {dims} ints, got "
                        f"{output_size!r}")
    sizes = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(sizes))
    return ntuple(op, "output_size", sizes, dims, minimum=1)


def _adaptive_axis(n_in: int, n_out: int) -> tuple:
    """torch's adaptive windows along one axis, window i covering
    [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out)), as (n_out, K) positions padded to the
    largest size K by repeating each window's last position, and a mask of the real ones."""
    i = np.arange(n_out)
    start, end = i * n_in // n_out, -(-(i + 1) * n_in // n_out)
    index = start[:, None] + np.arange((end - start).max())
    return np.minimum(index, end[:, None] - 1), index < end[:, None]


def _adaptive_windows(x: Tensor, out_size: tuple) -> tuple:
    """x's adaptive windows gathered as (N, C, *out_size, K), their flat positions in the
    input plane (*out_size, K) on x's device, and the (*out_size, K) mask of real
    (unrepeated) entries; K runs row-major over each window's own axes."""
    n, c = x.shape[:2]
    spatial, d = x.shape[2:], len(out_size)
    flat, mask = np.zeros((1,) * 2 * d, np.int64), np.ones((1,) * 2 * d, bool)
    for a, (index, real) in enumerate(_adaptive_axis(s, o) for s, o in zip(spatial, out_size)):
        # NOTE: axis a's windows lie along output axis a and window axis d + a
        shape = [1] * 2 * d
        shape[a], shape[d + a] = index.shape
        flat = flat + index.reshape(shape) * math.prod(spatial[a + 1:])
        mask = mask & real.reshape(shape)
    positions = Tensor._wrap(move_array(flat.reshape(out_size + (-1,)), x.device))
    windows = getitem(reshape(x, (n, c, -1)), (slice(None), slice(None), positions))
    return windows, positions, mask.reshape(out_size + (-1,))


def divides(x: Tensor, out_size: tuple) -> bool:
    """Whether the adaptive cells of `out_size` tile x's planes (equal fixed windows)."""
    return all(n % o == 0 for n, o in zip(x.shape[2:], out_size))


def _adaptive_avg_planes(op: str, x: Tensor, out_size: tuple) -> Tensor:
    """adaptive_avg_pool2d of a 4-D x, checked under the name `op`."""
    check_float(op, x)
    if compiler.uses_kernels(x.array):
        pool = PoolKernels(functools.partial(kernels.adaptive_avgpool2d, out_size=out_size),
                           kernels.adaptive_avgpool2d_backward)
    elif divides(x, out_size):
        # NOTE: cells that tile the input are avg_pool2d's windows, with stride = kernel.
        kernel = (x.shape[2] // out_size[0], x.shape[3] // out_size[1])
        pool = _avg_pool(pool_arrays, out_size, kernel=kernel, stride=kernel, padding=(0, 0),
                         count_include_pad=True, divisor=None)
    else:
        return adaptive_avg_reference(x, out_size)
    return AdaptiveLinearPool.apply(x, pool=pool)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average over the windows that split the input into `output_size` cells
    (torch.nn.functional.adaptive_avg_pool2d)."""
    x, batched = to_batch("adaptive_avg_pool2d", input)
    out_size = adaptive_sizes("adaptive_avg_pool2d", x, output_size, 2)
    return from_batch(_adaptive_avg_planes("adaptive_avg_pool2d", x, out_size), batched)


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """adaptive_avg_pool2d over (N, C, L) or (C, L) signals, as height-1 planes
    (torch.nn.functional.adaptive_avg_pool1d)."""
    x, batched = _rows("adaptive_avg_pool1d", input)
    out_size = (1,) + ntuple("adaptive_avg_pool1d", "output_size", output_size, 1, 1)
    return _from_rows(_adaptive_avg_planes("adaptive_avg_pool1d", x, out_size), batched)


def adaptive_avg_reference(x: Tensor, out_size: tuple) -> Tensor:
    """Adaptive average pooling of an (N, C, *spatial) x from differentiable ops, for any
    cells: a weighted sum over the gathered windows (the path where the cells do not tile
    the input and no kernel runs)."""
    windows, _, mask = _adaptive_windows(x, out_size)
    weights = move_array((mask / mask.sum(-1, keepdims=True)).astype(x.dtype), x.device)
    return reduce.sum(windows * Tensor._wrap(weights), dim=-1)


_adaptive_avg_pool2d_reference = adaptive_avg_reference  # the 2-D kernels' reference


def adaptive_max_gathered(x: Tensor, out_size: tuple) -> tuple:
    """Adaptive max pooling of an (N, C, *spatial) x over its gathered windows: the maxima
    and their flat plane positions."""
    # NOTE: a window's repeated last entry only duplicates a value, and max picks the first
    # occurrence, so the padding needs no mask here.
    windows, flat, _ = _adaptive_windows(x, out_size)
    values, taps = reduce.max(windows, dim=-1)
    xp = flat._xp
    positions = xp.broadcast_to(flat.array, taps.shape + flat.shape[-1:])
    indices = xp.take_along_axis(positions, taps.array[..., None], axis=-1)[..., 0]
    return values, Tensor._wrap(indices)


def _adaptive_max_planes(x: Tensor, out_size: tuple) -> tuple:
    """adaptive_max_pool2d of a 4-D x: values and indices."""
    if divides(x, out_size):
        kernel = (x.shape[2] // out_size[0], x.shape[3] // out_size[1])
        window, size = _pool_window("adaptive_max_pool2d", x, kernel, None, 0, 1, False)
        return MaxPool2d.apply(x, out_size=size, window=window)
    return adaptive_max_gathered(x, out_size)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False):
    """Largest value in each of the windows that split the input into `output_size` cells
    (torch.nn.functional.adaptive_max_pool2d)."""
    x, batched = to_batch("adaptive_max_pool2d", input)
    out_size = adaptive_sizes("adaptive_max_pool2d", x, output_size, 2)
    values, indices = _adaptive_max_planes(x, out_size)
    out = from_batch(values, batched)
    return (out, from_batch(indices, batched)) if return_indices else out


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False):
    """adaptive_max_pool2d over (N, C, L) or (C, L) signals, as height-1 planes
    (torch.nn.functional.adaptive_max_pool1d)."""
    x, batched = _rows("adaptive_max_pool1d", input)
    out_size = (1,) + ntuple("adaptive_max_pool1d", "output_size", output_size, 1, 1)
    values, indices = _adaptive_max_planes(x, out_size)
    out = _from_rows(values, batched)
    return (out, _from_rows(indices, batched)) if return_indices else out


# -- power-average pooling --------------------------------------------------------------------
def lp_pool(op: str, dims: int, avg_pool: Callable, max_pool: Callable, input: Tensor,
            norm_type: float, kernel_size: Any, stride: Any, ceil_mode: bool) -> Tensor:
    """torch's lp_pool{1,2,3}d, composed as torch composes it: the p-th root of the window
    sums of x**p (avg_pool times the window's size); p = +-inf is max pooling of |x|."""
    kernel = ntuple(op, "kernel_size", kernel_size, dims, minimum=1)
    if norm_type == math.inf:
        return max_pool(elementwise.abs(input), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -math.inf:
        return -max_pool(-elementwise.abs(input), kernel_size, stride, 0, 1, ceil_mode)
    out = avg_pool(elementwise.pow(input, norm_type), kernel_size, stride, 0, ceil_mode)
    # NOTE: sign * relu(abs) is torch's own guard: the root of a window sum that rounding
    # made negative stays real (its sign kept), and its gradient is defined.
    total = elementwise.sign(out) * elementwise.relu(elementwise.abs(out)) * math.prod(kernel)
    return elementwise.pow(total, 1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling of (N, C, L) signals: (sum over each window of x**p)**(1/p)
    (torch.nn.functional.lp_pool1d)."""
    return lp_pool("lp_pool1d", 1, avg_pool1d, max_pool1d, input, norm_type, kernel_size,
                   stride, ceil_mode)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling of (N, C, H, W) planes: (sum over each window of x**p)**(1/p)
    (torch.nn.functional.lp_pool2d)."""
    return lp_pool("lp_pool2d", 2, avg_pool2d, max_pool2d, input, norm_type, kernel_size,
                   stride, ceil_mode)


# -- max unpooling ----------------------------------------------------------------------------
class MaxUnpool(Op):
    """Each plane's values written at their flat positions into zero planes of `out_size`
    (the partial inverse of max pooling); the backward gathers the gradient at the positions,
    as torch's does. Where positions repeat, one of the values is kept (torch's rule too)."""

    op_name = "max_unpool"

    @staticmethod
    def forward(ctx, x, indices, out_size):
        n, c = x.shape[:2]
        xp = x._xp
        ctx.indices = indices
        out = xp.zeros((n * c, math.prod(out_size)), x.dtype)
        out[xp.arange(n * c)[:, None], indices.reshape(n * c, -1)] = x.array.reshape(n * c, -1)
        return out.reshape((n, c) + tuple(out_size))

    @staticmethod
    def backward(ctx, g):
        return gather_planes(g, ctx.indices)


def _unpool_size(op: str, x: Tensor, kernel: tuple, stride: tuple, padding: tuple,
                 output_size: Any) -> tuple:
    """torch's max_unpool output size: (n - 1) * stride + kernel - 2 * padding per axis, or
    `output_size` (its spatial sizes, or all of (N, C, *spatial)) within a stride of that."""
    dims = len(kernel)
    default = tuple((n - 1) * s + k - 2 * p
                    for n, k, s, p in zip(x.shape[2:], kernel, stride, padding))
    if output_size is None:
        sizes = default
    else:
        sizes = tuple(output_size)
        if len(sizes) == dims + 2:
            sizes = sizes[2:]
        if len(sizes) != dims:
            raise ValueError(f"{op}: output_size should be a sequence containing {dims} or "
                             f"{dims + 2} elements, but it has a length of {len(sizes)}")
        for d, (size, base, s) in enumerate(zip(sizes, default, stride)):
            if not base - s < size < base + s:
                raise ValueError(f"{op}: invalid output_size {tuple(output_size)} (dim {d} "
                                 f"must be between {base - s} and {base + s})")
    if min(sizes) < 0:
        raise ValueError(f"{op}: output_size must contain non-negative spatial dimensions, "
                         f"but got {sizes}")
    return tuple(int(v) for v in sizes)


def max_unpool(op: str, dims: int, input: Tensor, indices: Tensor, kernel_size: Any,
               stride: Any, padding: Any, output_size: Any) -> Tensor:
    """max_unpool{1,2,3}d: `input` written at `indices` (max_pool's flat plane positions) into
    zero planes, by torch's rules for the output size and the indices."""
    kernel = ntuple(op, "kernel_size", kernel_size, dims)
    stride = kernel if stride is None else ntuple(op, "stride", stride, dims)
    padding = ntuple(op, "padding", padding, dims)
    x, batched = batch_view(op, input, dims)
    if not isinstance(indices, Tensor):
        raise TypeError(f"{op}: indices must be a Tensor, got {type(indices).__name__}")
    if indices.dtype != np.int64:
        raise RuntimeError(f"{op}: elements in indices should be type int64 but got "
                           f"{indices.dtype}")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"{op}: expected indices of the input's shape "
                           f"{tuple(input.shape)}, got indices of shape "
                           f"{tuple(indices.shape)}")
    out_size = _unpool_size(op, x, kernel, stride, padding, output_size)
    index = indices.array if batched else indices.array[None]
    plane = "x".join(str(v) for v in out_size)
    check_range(op, "index", index, 0, math.prod(out_size), f"output planes of size {plane}",
                RuntimeError)
    return from_batch(MaxUnpool.apply(x, indices=index, out_size=out_size), batched)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Any = None) -> Tensor:
    """The partial inverse of max_pool1d: each value back at its index, zeros elsewhere
    (torch.nn.functional.max_unpool1d)."""
    return max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding,
                      output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Any = None) -> Tensor:
    """The partial inverse of max_pool2d: each value back at its index, zeros elsewhere
    (torch.nn.functional.max_unpool2d)."""
    return max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding,
                      output_size)
