"""Resampling (torch.nn.functional.interpolate, grid_sample, affine_grid, unfold, fold,
pixel_shuffle, pixel_unshuffle).

Interpolation is separable: along each spatial axis, from the last to the first, every output
cell is a weighted sum of K input cells (K = 1 nearest, 2 linear, 4 cubic), one gather of the
(n_out, K) positions (`GetItem`, whose backward scatter-adds) times the weights, summed. The
positions and weights follow torch's index rules exactly (UpSample.h: half-pixel centers or
align_corners, torch's float arithmetic for the nearest modes, bicubic's A = -0.75), and being
gradflow ops they give every derivative order. 'area' is adaptive average pooling. grid_sample
gathers the 2**d corners of each sample point with weights that are gradflow expressions of
the grid, so input and grid both get gradients. unfold and fold are `Im2col` and `Col2im`
(gradflow.ops.conv), an adjoint pair that runs kernels/conv.cu on the GPU.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from .. import dtypes
from ..amp.autocast_mode import autocast_policy
from ..argcheck import pair
from ..backend import move_array
from ..tensor import Tensor
from . import elementwise, reduce
from .conv import Col2im, Im2col
from .index import GetItem
from .matmul import matmul
from .pool import adaptive_avg_pool1d, adaptive_avg_pool2d
from .pool3d import adaptive_avg_pool3d
from .shape import permute, reshape
from .window import Window, check_window, from_batch, to_batch

_LINEAR = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}  # mode: spatial axes
_MODES = ("nearest", "nearest-exact", "area") + tuple(_LINEAR)
_A = -0.75  # the cubic convolution's parameter (Keys, 1981), as torch's bicubic


# -- positions and weights along one axis (NumPy, on the host) --------------------------------
def _opmath(dtype: np.dtype) -> type:
    """The float type torch computes a dtype's source positions in (its opmath type)."""
    return np.float64 if dtype == np.float64 else np.float32


def _scale(t: type, n_in: int, n_out: int, align_corners: bool, scale: float | None):
    """torch's area_pixel_compute_scale: input cells per output cell, in type t."""
    if align_corners:
        return t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
    return t(1.0 / scale) if scale is not None and scale > 0 else t(n_in) / t(n_out)


def _source(t: type, n_in: int, n_out: int, align_corners: bool, scale: float | None,
            cubic: bool):
    """torch's area_pixel_compute_source_index of every output cell: where it samples the
    input, on half-pixel centers (clamped at 0 unless cubic) or on the corners."""
    ratio = _scale(t, n_in, n_out, align_corners, scale)
    i: Any = np.arange(n_out).astype(t)
    if align_corners:
        return ratio * i
    src = ratio * (i + t(0.5)) - t(0.5)
    return src if cubic else np.maximum(src, t(0))


def _floor_and_lambda(src, n_in: int) -> tuple:
    """torch's guard_index_and_lambda: the cell at or left of src (at most the last) and the
    fraction past it, in [0, 1]."""
    index = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    return index, np.clip(src - index, 0, 1)


def _nearest_taps(n_in: int, n_out: int, scale: float | None, exact: bool) -> tuple:
    """The input cell of each output cell, by torch's nearest_idx / nearest_exact_idx (in
    float32, as torch computes them)."""
    i = np.arange(n_out)
    if not exact and n_out == n_in:
        index = i
    elif not exact and n_out == 2 * n_in:
        index = i >> 1
    else:
        s = np.float32(1.0 / scale) if scale is not None and scale > 0 else \
            np.float32(n_in) / np.float32(n_out)
        # NOTE: torch's (i + 0.5) * scale is a double product, which floorf rounds to float
        src = ((i + 0.5) * np.float64(s)).astype(np.float32) if exact else \
            i.astype(np.float32) * s
        index = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return index[:, None], None


def _linear_taps(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                 dtype: np.dtype) -> tuple:
    """The two input cells each output cell interpolates and their weights (torch's
    compute_source_index_and_lambda)."""
    t = _opmath(dtype)
    if n_out == n_in:
        i = np.arange(n_out)
        return np.stack([i, i], 1), np.stack([np.ones(n_out), np.zeros(n_out)], 1)
    index, lam = _floor_and_lambda(_source(t, n_in, n_out, align_corners, scale, False), n_in)
    index = np.stack([index, index + (index < n_in - 1)], 1)
    return index, np.stack([t(1) - lam, lam], 1)


def _cubic_weights(t: Any) -> list:
    """The cubic convolution weights of the four cells around a point t past the second
    (t in [0, 1]; arrays or tensors), as torch's get_cubic_upsample_coefficients."""
    def near(x):  # |x| <= 1
        return ((_A + 2) * x - (_A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _cubic_taps(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                dtype: np.dtype) -> tuple:
    """The four input cells each output cell interpolates (clamped to the input) and their
    cubic convolution weights (torch's get_cubic_upsample_coefficients)."""
    t = _opmath(dtype)
    index, lam = _floor_and_lambda(_source(t, n_in, n_out, align_corners, scale, True), n_in)
    taps = np.clip(index[:, None] + np.arange(-1, 3), 0, n_in - 1)
    return taps, np.stack(_cubic_weights(lam), 1).astype(t)


def _along(x: Tensor, axis: int, index: np.ndarray, weights: np.ndarray | None) -> Tensor:
    """x resampled along `axis`: output cell i is sum_k weights[i, k] * x[..., index[i, k]]
    (one gather of the (n_out, K) positions; weights None: K = 1, a plain gather)."""
    items = (slice(None),) * axis + (move_array(index, x.device),)
    picked = GetItem.apply(x, items=items)  # (..., n_out, K, ...)
    if weights is None:
        return reshape(picked, x.shape[:axis] + (index.shape[0],) + x.shape[axis + 1:])
    w = move_array(weights.astype(x.dtype).reshape(weights.shape + (1,) * (x.ndim - 1 - axis)),
                   x.device)
    return reduce.sum(picked * Tensor._wrap(w), dim=axis + 1)


# -- interpolate ------------------------------------------------------------------------------
def _output_size(x: Tensor, size: Any, scale_factor: Any, recompute: bool | None,
                 mode: str) -> tuple:
    """torch's output size and the scales its kernels use (None where recomputed), from
    exactly one of size and scale_factor."""
    dim = x.ndim - 2
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is not None:
        if recompute:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an "
                             "explicit size.")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * dim
        if len(sizes) != dim:
            raise ValueError(f"interpolate: input and output must have the same number of "
                             f"spatial dimensions, but got input with spatial dimensions of "
                             f"{list(x.shape[2:])} and output size of {size}")
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in sizes):
            raise TypeError(f"interpolate: expected size to be an int or a tuple of ints, but "
                            f"got size {size!r}")
        return tuple(int(v) for v in sizes), (None,) * dim
    if scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else \
        (scale_factor,) * dim
    if len(scales) != dim:
        raise ValueError(f"interpolate: input and scale_factor must have the same number of "
                         f"spatial dimensions, but got input with spatial dimensions of "
                         f"{list(x.shape[2:])} and scale_factor of shape {scale_factor}")
    sizes = tuple(math.floor(n * float(s)) for n, s in zip(x.shape[2:], scales))
    if recompute or mode == "area":
        return sizes, (None,) * dim
    return sizes, tuple(float(s) for s in scales)


def interpolate(input: Tensor, size: Any = None, scale_factor: Any = None,
                mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resample (N, C, *spatial) inputs to `size`, or by `scale_factor`, with torch's modes
    nearest, nearest-exact, linear (3-D), bilinear and bicubic (4-D), trilinear (5-D) and
    area (torch.nn.functional.interpolate; antialias is not supported)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: input must be a Tensor, got {type(input).__name__}")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("interpolate: align_corners option can only be set with the "
                             "interpolating modes: linear | bilinear | bicubic | trilinear")
    align = bool(align_corners)
    if input.ndim not in (3, 4, 5) or mode not in _MODES:
        raise NotImplementedError(f"interpolate: only 3-D, 4-D and 5-D inputs are supported "
                                  f"(got {input.ndim}-D) for the modes: "
                                  f"{' | '.join(_MODES)} (got {mode!r})")
    sizes, scales = _output_size(input, size, scale_factor, recompute_scale_factor, mode)
    if antialias:
        if not (mode in ("bilinear", "bicubic") and input.ndim == 4):
            raise ValueError("interpolate: anti-alias option is restricted to bilinear and "
                             "bicubic modes and requires a 4-D tensor as input")
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if mode in _LINEAR and _LINEAR[mode] != input.ndim - 2:
        raise NotImplementedError(f"interpolate: got {input.ndim}D input, but {mode} mode "
                                  f"needs {_LINEAR[mode] + 2}D input")
    if min(input.shape[2:]) < 1 or min(sizes) < 1:
        raise RuntimeError(f"interpolate: input and output sizes should be greater than 0, "
                           f"but got input {tuple(input.shape[2:])} and output {sizes}")
    if mode == "area":
        pool = {3: adaptive_avg_pool1d, 4: adaptive_avg_pool2d, 5: adaptive_avg_pool3d}
        return pool[input.ndim](input, sizes)
    if mode != "nearest" and mode != "nearest-exact" and not dtypes.is_floating(input.dtype):
        raise NotImplementedError(f"interpolate: {mode} mode needs a floating-point input, "
                                  f"got {input.dtype}")
    out = input
    # NOTE: the last axis first, as torch's kernels weigh a row before the rows
    for axis in reversed(range(2, input.ndim)):
        n_in, n_out, scale = input.shape[axis], sizes[axis - 2], scales[axis - 2]
        if n_out == n_in and mode in ("nearest", "linear", "bilinear", "trilinear"):
            continue  # torch copies an axis these modes keep
        if mode in ("nearest", "nearest-exact"):
            taps = _nearest_taps(n_in, n_out, scale, mode == "nearest-exact")
        elif mode == "bicubic":
            taps = _cubic_taps(n_in, n_out, scale, align, input.dtype)
        else:
            taps = _linear_taps(n_in, n_out, scale, align, input.dtype)
        out = _along(out, axis, *taps)
    return elementwise.clone(input) if out is input else out


# -- unfold and fold --------------------------------------------------------------------------
def _window(op: str, kernel_size: Any, dilation: Any, padding: Any, stride: Any) -> Window:
    kernel = pair(op, "kernel_size", kernel_size, minimum=1)
    dilation = pair(op, "dilation", dilation, minimum=1)
    ph, pw = pair(op, "padding", padding, minimum=0)
    stride = pair(op, "stride", stride, minimum=1)
    return Window(kernel, stride, dilation, (ph, ph, pw, pw))


def unfold(input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
           stride: Any = 1) -> Tensor:
    """Every kernel window of (N, C, H, W) planes as a column: (N, C*kh*kw, L), L windows
    (torch.nn.functional.unfold, im2col)."""
    x, batched = to_batch("unfold", input)
    window = _window("unfold", kernel_size, dilation, padding, stride)
    check_window("unfold", window, x.shape)
    return from_batch(Im2col.apply(x, window=window), batched)


def fold(input: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1,
         padding: Any = 0, stride: Any = 1) -> Tensor:
    """Columns (N, C*kh*kw, L) added back into (N, C, H, W) planes of `output_size`, the
    overlaps summed: the adjoint of unfold (torch.nn.functional.fold, col2im)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"fold: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"fold: expected a 2-D (unbatched) or 3-D (batched) input, got "
                           f"shape {tuple(input.shape)}")
    x = input if input.ndim == 3 else reshape(input, (1,) + tuple(input.shape))
    size = pair("fold", "output_size", output_size, minimum=1)
    window = _window("fold", kernel_size, dilation, padding, stride)
    n, rows, length = x.shape
    taps = window.kernel[0] * window.kernel[1]
    if rows % taps:
        raise RuntimeError(f"fold: expected size of input's dimension 1 to be divisible by the "
                           f"product of kernel_size, but got input.size(1)={rows} and "
                           f"kernel_size={window.kernel}")
    blocks = window.out_size(*size)
    if blocks[0] * blocks[1] != length or min(blocks) < 1:
        raise RuntimeError(f"fold: given output_size={size}, kernel_size={window.kernel}, "
                           f"dilation={window.dilation}, padding={window.padding[::2]}, "
                           f"stride={window.stride}, expected size of input's dimension 2 to "
                           f"match the calculated number of sliding blocks {blocks[0]} * "
                           f"{blocks[1]} = {blocks[0] * blocks[1]}, but got "
                           f"input.size(2)={length}")
    out = Col2im.apply(x, shape=(n, rows // taps) + size, window=window)
    return out if input.ndim == 3 else reshape(out, out.shape[1:])


# -- pixel shuffles ---------------------------------------------------------------------------
def _factor(op: str, name: str, x: Any, factor: Any) -> int:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if not isinstance(factor, numbers.Integral) or isinstance(factor, bool):
        raise TypeError(f"{op}: {name} must be an int, got {factor!r}")
    if factor < 1:
        raise RuntimeError(f"{op}: expects a positive {name}, but got {factor}")
    if x.ndim < 3:
        raise RuntimeError(f"{op}: expects input to have at least 3 dimensions, but got input "
                           f"with {x.ndim} dimension(s)")
    return int(factor)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r): channels rearranged into r x r blocks
    (torch.nn.functional.pixel_shuffle)."""
    r = _factor("pixel_shuffle", "upscale_factor", input, upscale_factor)
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle: expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r}")
    k = len(lead)
    y = reshape(input, (*lead, c // (r * r), r, r, h, w))
    y = permute(y, *range(k), k, k + 3, k + 1, k + 4, k + 2)
    return reshape(y, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W): the inverse of pixel_shuffle
    (torch.nn.functional.pixel_unshuffle)."""
    r = _factor("pixel_unshuffle", "downscale_factor", input, downscale_factor)
    *lead, c, h, w = input.shape
    for name, n, axis in (("height", h, -2), ("width", w, -1)):
        if n % r:
            raise RuntimeError(f"pixel_unshuffle: expects {name} to be divisible by "
                               f"downscale_factor, but input.size({axis})={n} is not divisible "
                               f"by {r}")
    k = len(lead)
    y = reshape(input, (*lead, c, h // r, r, w // r, r))
    y = permute(y, *range(k), k, k + 2, k + 4, k + 1, k + 3)
    return reshape(y, (*lead, c * r * r, h // r, w // r))


# -- grid sampling ----------------------------------------------------------------------------
def _align_corners(op: str, align_corners: bool | None) -> bool:
    if align_corners is None:
        warnings.warn(f"{op}: default grid_sample and affine_grid behavior has changed to "
                      "align_corners=False since 1.3.0. Please specify align_corners=True if "
                      "the old behavior is desired.", UserWarning, stacklevel=3)
        return False
    return bool(align_corners)


def _wrap_const(x: Tensor, a: Any) -> Tensor:
    return Tensor._wrap(a.astype(x.dtype) if hasattr(a, "astype") else a)


def _clip(c: Tensor, size: int) -> Tensor:
    """c clipped to [0, size - 1], with torch's gradient: zero at and beyond the borders
    (clip_coordinates_set_grad)."""
    xp, a = c._xp, c.array
    inside = Tensor._wrap((a > 0) & (a < size - 1))
    return elementwise.where(inside, c, _wrap_const(c, xp.clip(a, 0, size - 1)))


def _reflect(c: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """torch's reflect_coordinates: c folded back into [low, high] by reflections off its
    ends, differentiable (each reflection flips the gradient's sign)."""
    if twice_low == twice_high:
        return c * 0.0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    xp = c._xp
    shifted = c - low
    # NOTE: |shifted| as shifted * sign, the sign +1 at 0, as torch's derivative takes it
    distance = shifted * _wrap_const(c, xp.where(shifted.array < 0, -1.0, 1.0))
    extra = elementwise.fmod(distance, span)
    even = Tensor._wrap(xp.floor(distance.array / span) % 2 == 0)
    return elementwise.where(even, extra + low, (span - extra) + low)


def _padded(c: Tensor, size: int, padding_mode: str, align_corners: bool) -> Tensor:
    """Pixel coordinates after grid_sample's padding rule (torch's compute_coordinates):
    zeros keeps them, border clips them, reflection reflects and then clips them."""
    if padding_mode == "border":
        return _clip(c, size)
    if padding_mode == "reflection":
        return _clip(_reflect(c, 0, 2 * (size - 1)) if align_corners else
                     _reflect(c, -1, 2 * size - 1), size)
    return c


def _source_coordinates(coord: Tensor, size: int, padding_mode: str,
                        align_corners: bool) -> Tensor:
    """grid_sample's pixel coordinate of normalized coordinates in [-1, 1] along an axis of
    `size` cells, after the padding rule (torch's grid_sampler_compute_source_index)."""
    if align_corners:
        c = (coord + 1) / 2 * (size - 1)
    else:
        c = ((coord + 1) * size - 1) / 2
    return _padded(c, size, padding_mode, align_corners)


def _check_grid(input: Any, grid: Any, mode: str, padding_mode: str) -> None:
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"grid_sample: expected mode to be 'bilinear', 'nearest' or "
                         f"'bicubic', but got: {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"grid_sample: expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: {padding_mode!r}")
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"grid_sample: {name} must be a Tensor, got {type(t).__name__}")
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sample: expected a 4-D or 5-D input and a grid of as many "
                           f"dimensions, but got input with sizes {list(input.shape)} and grid "
                           f"with sizes {list(grid.shape)}")
    if grid.shape[-1] != input.ndim - 2:
        raise RuntimeError(f"grid_sample: expected grid to have size {input.ndim - 2} in last "
                           f"dimension, but got grid with sizes {list(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sample: expected grid and input to have same batch size, but "
                           f"got input with sizes {list(input.shape)} and grid with sizes "
                           f"{list(grid.shape)}")
    if input.dtype != grid.dtype or not dtypes.is_floating(input.dtype):
        raise RuntimeError(f"grid_sample: expected input and grid of one floating-point dtype, "
                           f"but got input {input.dtype} and grid {grid.dtype}")
    if 0 in input.shape[1:]:
        raise RuntimeError(f"grid_sample: expected input to have non-empty spatial dimensions, "
                           f"but got input with sizes {list(input.shape)}")
    if mode == "bicubic" and input.ndim != 4:
        raise RuntimeError(f"grid_sample: bicubic interpolation only supports 4-D input, got "
                           f"input with sizes {list(input.shape)}")


@autocast_policy("grid_sample")
def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear",
                padding_mode: str = "zeros", align_corners: bool | None = None) -> Tensor:
    """Sample (N, C, H, W) planes (or (N, C, D, H, W) volumes) at the grid's points, given as
    (x, y[, z]) in [-1, 1] over (N, Ho, Wo, 2) (or (N, Do, Ho, Wo, 3)): bilinear (trilinear),
    nearest or (in 2-D) bicubic, with zeros, border or reflection padding
    (torch.nn.functional.grid_sample).
    Gradients reach input and grid."""
    _check_grid(input, grid, mode, padding_mode)
    align_corners = _align_corners("grid_sample", align_corners)
    n, c, *spatial = input.shape
    out_spatial = tuple(grid.shape[1:-1])
    points = reshape(grid, (n, -1, len(spatial)))
    xp = input._xp
    # NOTE: the grid's last entry indexes the last spatial axis (x is the width); bicubic
    # pads each of its taps rather than the point
    point_padding = "zeros" if mode == "bicubic" else padding_mode
    coords = [_source_coordinates(points[:, :, len(spatial) - 1 - a], size, point_padding,
                                  align_corners) for a, size in enumerate(spatial)]
    flat = reshape(input, (n, c, -1))
    batch, channel = xp.arange(n)[:, None, None], xp.arange(c)[None, :, None]

    def gather(cells: list):
        """input at the given cells (one (N, P) index array per axis), 0 outside it."""
        inside = xp.ones(cells[0].shape, bool)
        position = xp.zeros(cells[0].shape, np.int64)
        for a, (cell, size) in enumerate(zip(cells, spatial)):
            inside &= (cell >= 0) & (cell < size)
            position += xp.clip(cell, 0, size - 1) * math.prod(spatial[a + 1:])
        values = GetItem.apply(flat, items=(batch, channel, position[:, None, :]))
        return values, inside[:, None, :]

    out: Any = None
    if mode == "nearest":
        # NOTE: torch rounds half to even (nearbyint)
        values, inside = gather([xp.rint(q.array).astype(np.int64) for q in coords])
        out = values * _wrap_const(input, inside)
    elif mode == "bicubic":
        lows = [xp.floor(q.array) for q in coords]
        weights = [_cubic_weights(q - _wrap_const(input, low)) for q, low in zip(coords, lows)]
        for taps in np.ndindex(4, 4):
            cells = [_padded(_wrap_const(input, low + tap - 1), size, padding_mode,
                             align_corners).array.astype(np.int64)
                     for low, tap, size in zip(lows, taps, spatial)]
            values, inside = gather(cells)
            tap_weight = weights[0][taps[0]] * weights[1][taps[1]]
            term = values * (reshape(tap_weight, (n, 1, -1)) * _wrap_const(input, inside))
            out = term if out is None else out + term
    else:
        lows = [xp.floor(q.array) for q in coords]
        for corner in np.ndindex(*(2,) * len(spatial)):
            weight: Any = None
            for q, low, bit in zip(coords, lows, corner):
                # NOTE: the far corner weighs the distance past the near one, and back
                w = q - _wrap_const(input, low) if bit else _wrap_const(input, low + 1) - q
                weight = w if weight is None else weight * w
            values, inside = gather([(low + bit).astype(np.int64)
                                     for low, bit in zip(lows, corner)])
            term = values * (reshape(weight, (n, 1, -1)) * _wrap_const(input, inside))
            out = term if out is None else out + term
    return reshape(out, (n, c) + out_spatial)


def _base_coordinates(t: Tensor, steps: int, align_corners: bool):
    """torch's linspace_from_neg_one: `steps` points over [-1, 1], pulled in to the cell
    centers without align_corners; a single point is 0."""
    if steps <= 1:
        return np.zeros(steps, t.dtype)
    points = np.linspace(-1, 1, steps, dtype=t.dtype)
    return points if align_corners else points * ((steps - 1) / steps)


def affine_grid(theta: Tensor, size: Any, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of a batch of affine maps theta ((N, 2, 3) for an (N, C, H, W) size,
    (N, 3, 4) for (N, C, D, H, W)), for grid_sample (torch.nn.functional.affine_grid)."""
    align_corners = _align_corners("affine_grid", align_corners)
    if not isinstance(theta, Tensor):
        raise TypeError(f"affine_grid: theta must be a Tensor, got {type(theta).__name__}")
    if not dtypes.is_floating(theta.dtype):
        raise ValueError(f"affine_grid: expected theta to have floating point type, but got "
                         f"{theta.dtype}")
    size = tuple(size)
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid: only 4-D and 5-D sizes are supported, for 2-D "
                                  f"and 3-D affine transforms, respectively; got size {size}")
    d = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (d, d + 1):
        raise ValueError(f"affine_grid: expected a batch of {d}D affine matrices of shape "
                         f"Nx{d}x{d + 1} for size {size}, got {tuple(theta.shape)}")
    if align_corners and min(size[2:]) == 1:
        warnings.warn("affine_grid: since version 1.3.0, affine_grid behavior has changed for "
                      "unit-size grids when align_corners=True. This is not an intended use "
                      "case of affine_grid.", UserWarning, stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"affine_grid: expected non-zero, positive output size, got {size}")
    if size[0] != theta.shape[0]:
        raise RuntimeError(f"affine_grid: size {size} has batch size {size[0]}, but theta has "
                           f"{theta.shape[0]} matrices")
    spatial = size[2:]
    # the base grid's points (x, y[, z], 1): x runs along the last axis
    axes = [_base_coordinates(theta, s, align_corners) for s in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")
    points = np.stack([m.reshape(-1) for m in mesh[::-1]] + [np.ones(math.prod(spatial))], -1)
    base = Tensor._wrap(move_array(points.astype(theta.dtype), theta.device))
    grid = matmul(base, permute(theta, 0, 2, 1))  # (N, points, d)
    return reshape(grid, (size[0],) + tuple(spatial) + (d,))
