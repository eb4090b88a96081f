"""NumPy/CuPy twins of gradflow/cuda/pool.py's max and average pooling launchers (the same
names, arguments and results), for the arrays that gradflow's kernels do not run. The bodies
take any number of spatial axes (the (N, C, *spatial) layout), so 3-D pooling runs them too.

No window is copied out as Im2col's columns are: each pass reads a strided view of the input.
Tap (ky, kx) of output pixel (oy, ox) reads input row oy*sh - pt + ky*dh and column
ox*sw - pl + kx*dw (and likewise along a third axis). Along an axis the outputs whose tap
lands inside the input form one run (`_run`), so a tap reads one strided slice of the input and
meets one block of the output; cells outside the input are never read, which is how padding
and ceil_mode's overhang are honoured without padding a copy. Max pooling takes one pass per
tap (its argmax follows torch's scan order); a window's sum is separable, so average pooling
sums rows, then columns: kh + kw passes, not kh * kw (a global pool over a 56x56 map makes 112
small adds, not 3136).
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Any, NamedTuple

import numpy as np

from .. import dtypes
from ..backend import array_module


class _Run(NamedTuple):
    """One tap along one axis: the outputs whose tap lands inside the input (`out`) and the
    input cells those taps read (`inp`), as slices."""

    out: slice
    inp: slice


def _run(n: int, n_out: int, tap: int, s: int, p: int, d: int) -> _Run | None:
    """The run of one tap along an axis of n cells (None when it never lands inside)."""
    offset = tap * d - p  # where output 0's tap lands
    lo, hi = max(0, -(offset // s)), min(n_out, (n - 1 - offset) // s + 1)
    if hi <= lo:
        return None
    start = lo * s + offset
    return _Run(slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s))


def _row_major(sizes: tuple) -> tuple:
    """The flat-index strides of an array of `sizes` in row-major order."""
    return tuple(math.prod(sizes[a + 1:]) for a in range(len(sizes)))


def _open_grid(xp, vectors: list):
    """sum_a vectors[a] laid along axis a: the open-mesh sum of per-axis offsets."""
    d = len(vectors)
    return sum(xp.asarray(v).reshape([-1 if b == a else 1 for b in range(d)])
               for a, v in enumerate(vectors))


def _taps(in_size: tuple, out_size: tuple, kernel: tuple, stride: tuple, padding: tuple,
          dilation: tuple) -> list:
    """(tap number, its run along each axis) of every kernel tap that lands inside the
    input, in torch's scan order (row-major over the kernel: number ky * kw + kx in 2-D)."""
    per_axis = []
    for n, n_out, k, s, p, d in zip(in_size, out_size, kernel, stride, padding, dilation):
        runs = ((tap, _run(n, n_out, tap, s, p, d)) for tap in range(k))
        per_axis.append([(tap, run) for tap, run in runs if run is not None])
    steps = _row_major(kernel)
    return [(sum(tap * m for (tap, _), m in zip(combo, steps)), tuple(run for _, run in combo))
            for combo in itertools.product(*per_axis)]


def _inp(runs: tuple) -> tuple:
    return (...,) + tuple(run.inp for run in runs)


def _out(runs: tuple) -> tuple:
    return (...,) + tuple(run.out for run in runs)


def lowest(dtype: np.dtype):
    """The value that never wins a max (the padding max pooling is defined with)."""
    return -np.inf if dtypes.is_floating(dtype) else np.iinfo(dtype).min


def maxpool(x: Any, out_size: tuple, kernel: tuple, stride: tuple, padding: tuple,
            dilation: tuple) -> tuple:
    """Window maxima and their flat positions (row * W + col, int64; row-major over the
    spatial axes) in each input plane, by torch's CPU rule: scan the taps in order from the
    window's first tap inside the input, and move to a tap whose value is greater than the
    best so far or NaN (so the first of equal maxima wins, and NaN propagates with the index
    of a window's last NaN)."""
    xp = array_module(x)
    out_shape = x.shape[:2] + tuple(out_size)
    y = xp.full(out_shape, lowest(x.dtype), x.dtype)
    # NOTE: `tap` holds the tap number each window picked. Taps are scanned in increasing
    # number, each at least the window's first tap inside, so `maximum` records a win
    # without a masked copy (those branch on every element and run several times slower).
    tap = xp.empty(out_shape, np.min_scalar_type(math.prod(kernel) - 1))
    # A window starts at its first tap inside the input: each axis stepped past the padding
    # by whole dilations (torch's index for a window no value beats).
    firsts = [-(-np.maximum(p - np.arange(n_out) * s, 0) // d)
              for n_out, s, p, d in zip(out_size, stride, padding, dilation)]
    tap[...] = xp.asarray(_open_grid(np, [f * m for f, m in zip(firsts,
                                                                  _row_major(kernel))]))
    for t, runs in _taps(x.shape[2:], out_size, kernel, stride, padding, dilation):
        v = x[_inp(runs)]
        best, at = y[_out(runs)], tap[_out(runs)]
        wins = v > best
        if dtypes.is_floating(x.dtype):
            wins |= xp.isnan(v)
        xp.maximum(best, v, out=best)
        xp.maximum(at, xp.multiply(wins, t, dtype=at.dtype), out=at)
    return y, plane_positions(xp, tap, x.shape[2:], out_size, kernel, stride, padding,
                              dilation)


def plane_positions(xp, tap: Any, in_size: tuple, out_size: tuple, kernel: tuple,
                    stride: tuple, padding: tuple, dilation: tuple):
    """torch's max-pool indices from tap numbers: the flat position (row * W + col in 2-D) in
    the input plane of `in_size` of each window's tap."""
    plane = _row_major(tuple(in_size))
    digits = np.unravel_index(np.arange(math.prod(kernel)), kernel)
    offsets = xp.asarray(sum(t * d * m for t, d, m in zip(digits, dilation, plane)))
    starts = _open_grid(np, [(np.arange(o) * s - p) * m
                             for o, s, p, m in zip(out_size, stride, padding, plane)])
    return xp.take(offsets, tap) + xp.asarray(starts)


def _positions(xp, runs: tuple, in_size: tuple):
    """The flat positions (row * W + col in 2-D) of the input cells a tap reads, as its
    block."""
    return _open_grid(xp, [xp.arange(r.inp.start, r.inp.stop, r.inp.step) * m
                           for r, m in zip(runs, _row_major(tuple(in_size)))])


def _select(xp, mask: Any, values: Any):
    """`values` where `mask`, +0.0 elsewhere, exactly: an AND of the bits with an all-ones or
    all-zeros integer, so a NaN or inf gradient reaches only its own cell (multiplying by the
    mask would spread NaN) without np.where's branch per element."""
    bits = np.dtype(f"i{values.dtype.itemsize}")
    keep = xp.negative(mask, dtype=bits)
    return xp.bitwise_and(values.view(bits), keep).view(values.dtype)


def maxpool_backward(gy: Any, argmax: Any, in_shape: tuple, kernel: tuple, stride: tuple,
                     padding: tuple, dilation: tuple) -> Any:
    """Each input pixel's gradient: the sum of gy over the windows whose maximum it was."""
    xp = array_module(gy)
    gx = xp.zeros(in_shape, gy.dtype)
    if all(d == 1 for d in dilation) and all(s >= k for k, s in zip(kernel, stride)):
        # NOTE: disjoint windows, each holding an input cell (undilated, a window starts
        # inside the input or its padding and pads at most half its size), so every argmax
        # is its own window's cell and one scatter writes each cell at most once.
        n, c = in_shape[:2]
        planes = xp.arange(n * c) * math.prod(in_shape[2:])
        flat = argmax + planes.reshape((n, c) + (1,) * len(kernel))
        gx.reshape(-1)[flat.reshape(-1)] = gy.reshape(-1)
        return gx
    for _, runs in _taps(in_shape[2:], gy.shape[2:], kernel, stride, padding, dilation):
        block = _out(runs)
        gx[_inp(runs)] += _select(xp, argmax[block] == _positions(xp, runs, in_shape[2:]),
                                  gy[block])
    return gx


def window_counts(n: int, n_out: int, k: int, s: int, p: int, include_pad: bool):
    """Cells each window covers along one axis: within the padded input, or (without
    `include_pad`) within the input itself, as torch's avg_pool2d divides."""
    start = np.arange(n_out) * s - p
    end = np.minimum(start + k, n + p)
    if not include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, n)
    return end - start


def _divisor(xp, in_size: tuple, out_size: tuple, kernel: tuple, stride: tuple,
             padding: tuple, count_include_pad: bool, divisor: int | None, dtype):
    """torch's avg_pool2d divisor: `divisor` when given, else each window's cell count."""
    if divisor is not None:
        return divisor
    counts = [window_counts(*axis, count_include_pad)
              for axis in zip(in_size, out_size, kernel, stride, padding)]
    return xp.asarray(functools.reduce(np.multiply.outer, counts).astype(dtype))


def _along(axis: int, index: slice) -> tuple:
    """The index that applies `index` to (negative) axis `axis` of an array."""
    return (..., index) + (slice(None),) * (-1 - axis)


def _window_sums(xp, a: Any, axis: int, n_out: int, k: int, s: int, p: int):
    """The sum of each window along one (negative) axis of `a`: one add per tap."""
    shape = list(a.shape)
    shape[axis] = n_out
    out = xp.zeros(shape, a.dtype)
    for tap in range(k):
        run = _run(a.shape[axis], n_out, tap, s, p, 1)
        if run is not None:
            out[_along(axis, run.out)] += a[_along(axis, run.inp)]
    return out


def _window_spread(xp, g: Any, axis: int, n: int, k: int, s: int, p: int):
    """The adjoint of `_window_sums`: each window's entry added back onto its n cells."""
    shape = list(g.shape)
    shape[axis] = n
    out = xp.zeros(shape, g.dtype)
    for tap in range(k):
        run = _run(n, g.shape[axis], tap, s, p, 1)
        if run is not None:
            out[_along(axis, run.inp)] += g[_along(axis, run.out)]
    return out


def avgpool(x: Any, out_size: tuple, kernel: tuple, stride: tuple, padding: tuple,
            count_include_pad: bool, divisor: int | None) -> Any:
    """Window means with torch's divisor rules (`divisor` overrides when given): the window
    sums one spatial axis at a time, first to last."""
    xp = array_module(x)
    d = len(out_size)
    y = x
    for axis, geometry in enumerate(zip(out_size, kernel, stride, padding)):
        y = _window_sums(xp, y, axis - d, *geometry)
    y /= _divisor(xp, x.shape[2:], out_size, kernel, stride, padding, count_include_pad,
                  divisor, x.dtype)
    return y


def avgpool_backward(gy: Any, in_shape: tuple, kernel: tuple, stride: tuple,
                     padding: tuple, count_include_pad: bool, divisor: int | None) -> Any:
    """Spread each window's gradient evenly over the input cells it averaged (the adjoint of
    `avgpool`: the axes in reverse order)."""
    xp = array_module(gy)
    d = len(kernel)
    g = gy / _divisor(xp, in_shape[2:], gy.shape[2:], kernel, stride, padding,
                      count_include_pad, divisor, gy.dtype)
    for axis in reversed(range(d)):
        g = _window_spread(xp, g, axis - d, in_shape[2 + axis], kernel[axis], stride[axis],
                           padding[axis])
    return g


# The twins of gradflow.cuda.pool's launchers, under its names.
maxpool2d, maxpool2d_backward = maxpool, maxpool_backward
avgpool2d, avgpool2d_backward = avgpool, avgpool_backward
