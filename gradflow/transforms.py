"""Image transforms (torchvision.transforms): Compose, ToTensor, Normalize, Resize, CenterCrop,
RandomCrop, RandomResizedCrop and RandomHorizontalFlip.

The tensor transforms take one image (C x H x W, or H x W) or a whole batch (N x C x H x W);
on a batch the random ones choose independently per sample, with array ops only, so one call
augments a batch on the CPU or the GPU. Random choices are drawn on the CPU from `generator`
(or gradflow's default generator), so a seed gives the same crops and flips on every device.
Transforms preprocess data: their outputs carry no autograd graph.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from . import dtypes
from .backend import move_array, on_device_of
from .creation import from_numpy
from .random import Generator, cpu_rng
from .tensor import Tensor


def _on_input_device(call: Callable) -> Callable:
    """Run a transform's array work on its input's device: CuPy allocates and launches on the
    current device, not on its operands'."""
    @functools.wraps(call)
    def run(self, x, *args, **kwargs):
        with on_device_of((x,)):
            return call(self, x, *args, **kwargs)
    return run


class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for transform in self.transforms:
            img = transform(img)
        return img

    def __repr__(self) -> str:
        body = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToTensor:
    """H x W x C (or H x W) NumPy array or PIL image -> C x H x W tensor; uint8 values are
    scaled to float in [0, 1], other dtypes keep their values. An N x H x W x C array becomes
    an N x C x H x W batch (a gradflow extension)."""

    def __call__(self, pic: Any) -> Tensor:
        if isinstance(pic, Tensor):
            raise TypeError("ToTensor: expected a NumPy array or PIL image, got a Tensor "
                            "(it already is one)")
        arr = np.asarray(pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim not in (3, 4):
            raise ValueError(f"ToTensor: expected an H x W x C image or an N x H x W x C batch, "
                             f"got shape {arr.shape}")
        chw = np.ascontiguousarray(np.moveaxis(arr, -1, -3))
        if chw.dtype == np.uint8:
            chw = chw.astype(dtypes.get_default_dtype())
            chw /= 255
        return from_numpy(chw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _image_batch(op: str, x: Tensor) -> tuple:
    """x viewed as N x C x H x W, and the function that restores x's own layout."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor image (C x H x W) or batch (N x C x H x W), "
                        f"got {type(x).__name__}; apply ToTensor first")
    if not 2 <= x.ndim <= 4:
        raise ValueError(f"{op}: expected an H x W or C x H x W image or an N x C x H x W "
                         f"batch, got shape {tuple(x.shape)}")
    lead = (1,) * (4 - x.ndim)
    return x.array.reshape(lead + x.array.shape), lambda out: Tensor._wrap(
        out.reshape(out.shape[len(lead):]))


class Normalize:
    """(x - mean[c]) / std[c] per channel, for an image or a batch."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        self.mean = [float(m) for m in np.atleast_1d(mean)]
        self.std = [float(s) for s in np.atleast_1d(std)]
        self.inplace = inplace
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std {self.std} contains a zero, which would divide by "
                             "zero")

    @_on_input_device
    def __call__(self, x: Tensor) -> Tensor:
        batch, restore = _image_batch("Normalize", x)
        if not x.is_floating_point():
            raise TypeError(f"Normalize: input should be a float tensor, got {x.dtype}")
        channels = batch.shape[1]
        if len(self.mean) not in (1, channels) or len(self.std) not in (1, channels):
            raise ValueError(f"Normalize: {len(self.mean)} means and {len(self.std)} stds do not "
                             f"match the {channels} channels of an input of shape "
                             f"{tuple(x.shape)}")
        xp = x._xp
        mean = xp.asarray(self.mean, dtype=x.dtype).reshape(-1, 1, 1)
        std = xp.asarray(self.std, dtype=x.dtype).reshape(-1, 1, 1)
        if not self.inplace:
            return restore((batch - mean) / std)
        batch -= mean
        batch /= std
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


def _pair(op: str, value: int | Sequence[int], name: str) -> tuple:
    """An int or a sequence of 1 or 2 positive ints -> (h, w)."""
    if isinstance(value, (int, np.integer)):
        pair = int(value), int(value)
    elif len(value) in (1, 2):
        pair = int(value[0]), int(value[-1])
    else:
        raise ValueError(f"{op}: {name} should be an int or a sequence of 2 ints, got "
                         f"{value!r}")
    if min(pair) <= 0:
        raise ValueError(f"{op}: {name} should be positive, got {value!r}")
    return pair


def _interval(op: str, value: Sequence[float], name: str) -> tuple[float, float]:
    """A (low, high) pair with 0 < low <= high, as floats."""
    if len(value) != 2 or not 0 < value[0] <= value[1]:
        raise ValueError(f"{op}: {name} should be (low, high) with 0 < low <= high, got "
                         f"{value!r}")
    return float(value[0]), float(value[1])


def _padding(padding: int | Sequence[int] | None) -> tuple:
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if padding is None:
        return 0, 0, 0, 0
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    if len(padding) == 1:
        return (int(padding[0]),) * 4
    if len(padding) == 2:
        return int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])
    if len(padding) == 4:
        return tuple(int(p) for p in padding)
    raise ValueError(f"RandomCrop: padding should be an int or a sequence of 1, 2 or 4 ints, "
                     f"got {padding!r}")


class RandomCrop:
    """Crop a random `size` window, after optional padding; each image of a batch gets its own
    window. `padding_mode` is 'constant' (with `fill`), 'edge', 'reflect' or 'symmetric'."""

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: float = 0, padding_mode: str = "constant",
                 generator: Generator | None = None) -> None:
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"RandomCrop: padding_mode should be constant, edge, reflect or "
                             f"symmetric, got {padding_mode!r}")
        self.size = _pair("RandomCrop", size, "size")
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    def _pad(self, batch: Any, xp: Any) -> Any:
        left, top, right, bottom = _padding(self.padding)
        h, w = self.size
        if self.pad_if_needed:
            grow_h = max(0, h - (batch.shape[2] + top + bottom))
            grow_w = max(0, w - (batch.shape[3] + left + right))
            top, bottom, left, right = top + grow_h, bottom + grow_h, left + grow_w, right + grow_w
        if not any((left, top, right, bottom)):
            return batch
        widths = ((0, 0), (0, 0), (top, bottom), (left, right))
        if self.padding_mode == "constant":
            return xp.pad(batch, widths, mode="constant", constant_values=self.fill)
        return xp.pad(batch, widths, mode=self.padding_mode)

    @_on_input_device
    def __call__(self, x: Tensor) -> Tensor:
        batch, restore = _image_batch("RandomCrop", x)
        xp = x._xp
        batch = self._pad(batch, xp)
        n, _, height, width = batch.shape
        h, w = self.size
        if h > height or w > width:
            raise ValueError(f"RandomCrop: crop size {(h, w)} is larger than the (padded) image "
                             f"size {(height, width)}")
        rng = cpu_rng(self.generator)
        top = rng.integers(0, height - h + 1, n)
        left = rng.integers(0, width - w + 1, n)
        # NOTE: one gather for the whole batch: out[n, c, i, j] = batch[n, c, top[n] + i,
        # left[n] + j]; the index arrays broadcast to N x 1 x h x w.
        rows = move_array((top[:, None] + np.arange(h))[:, None, :, None], x.device)
        cols = move_array((left[:, None] + np.arange(w))[:, None, None, :], x.device)
        samples = xp.arange(n)[:, None, None, None]
        channels = xp.arange(batch.shape[1])[None, :, None, None]
        return restore(batch[samples, channels, rows, cols])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


def _taps(start: np.ndarray, length: np.ndarray, out: int) -> tuple:
    """Bilinear taps along one axis for N windows [start, start + length) resized to `out`
    pixels: each output pixel's two source indices (N x out) and the weight of the second."""
    # NOTE: align_corners=False puts output pixel i at source coordinate (i + 0.5) * scale - 0.5
    # (pixel centres line up), clamped at 0; the upper tap stops at the window's last pixel.
    scale = (length / out)[:, None]
    src = np.maximum((np.arange(out) + 0.5) * scale - 0.5, 0)
    low = np.floor(src).astype(np.int64)
    high = np.minimum(low + 1, length[:, None] - 1)
    return start[:, None] + low, start[:, None] + high, src - low


def _resized_crops(batch: Any, windows: np.ndarray, size: tuple, xp: Any, device: Any) -> Any:
    """Each image's window (a row top, left, height, width of `windows`) resized to `size`,
    as torch's interpolate(mode='bilinear', align_corners=False, antialias=False) does.
    Integer images are interpolated in floating point and rounded back, like torchvision."""
    top, left, height, width = windows.T
    work = batch.dtype if dtypes.is_floating(batch.dtype) else np.dtype(np.float32)
    row0, row1, dy = _taps(top, height, size[0])
    col0, col1, dx = _taps(left, width, size[1])
    row0, row1 = (move_array(r[:, None, :, None], device) for r in (row0, row1))
    col0, col1 = (move_array(c[:, None, None, :], device) for c in (col0, col1))
    dy = move_array(dy.astype(work)[:, None, :, None], device)
    dx = move_array(dx.astype(work)[:, None, None, :], device)
    samples = xp.arange(batch.shape[0])[:, None, None, None]
    channels = xp.arange(batch.shape[1])[None, :, None, None]

    def along_row(rows: Any) -> Any:
        return (batch[samples, channels, rows, col0] * (1 - dx)
                + batch[samples, channels, rows, col1] * dx)

    out = along_row(row0) * (1 - dy) + along_row(row1) * dy
    return out if out.dtype == batch.dtype else xp.round(out).astype(batch.dtype)


class Resize:
    """Bilinear resize to `size`: (h, w), or an int that the shorter side becomes (keeping the
    aspect ratio, the longer side rounded down), like torchvision. Only antialias=False is
    implemented, so the default differs from torchvision's (True); downscaling by a large
    factor aliases."""

    def __init__(self, size: int | Sequence[int], antialias: bool = False) -> None:
        if antialias:
            raise ValueError("Resize: antialias=True is not implemented; only plain bilinear "
                             "(antialias=False) is supported")
        shorter = isinstance(size, (int, np.integer)) or len(size) == 1
        pair = _pair("Resize", size, "size")
        self.size = pair[0] if shorter else pair
        self.antialias = antialias

    def _output_size(self, height: int, width: int) -> tuple:
        if isinstance(self.size, tuple):
            return self.size
        longer = int(self.size * max(height, width) / min(height, width))
        return (self.size, longer) if height <= width else (longer, self.size)

    @_on_input_device
    def __call__(self, x: Tensor) -> Tensor:
        batch, restore = _image_batch("Resize", x)
        n, _, height, width = batch.shape
        windows = np.tile([0, 0, height, width], (n, 1))
        size = self._output_size(height, width)
        return restore(_resized_crops(batch, windows, size, x._xp, x.device))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, antialias={self.antialias})"


def _centred(extent: int, crop: int) -> tuple:
    """(pad before, pad after, offset) that centre a `crop` window on `extent` pixels, as
    torchvision does: zero padding when the image is smaller, else round(margin / 2) with
    Python's round (halves to even)."""
    if crop > extent:
        return (crop - extent) // 2, (crop - extent + 1) // 2, 0
    return 0, 0, round((extent - crop) / 2)


class CenterCrop:
    """Crop the central `size` window; an image smaller than `size` is first padded with
    zeros, so every output has shape `size`."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair("CenterCrop", size, "size")

    @_on_input_device
    def __call__(self, x: Tensor) -> Tensor:
        batch, restore = _image_batch("CenterCrop", x)
        h, w = self.size
        top_pad, bottom_pad, top = _centred(batch.shape[2], h)
        left_pad, right_pad, left = _centred(batch.shape[3], w)
        if top_pad or bottom_pad or left_pad or right_pad:
            widths = ((0, 0), (0, 0), (top_pad, bottom_pad), (left_pad, right_pad))
            batch = x._xp.pad(batch, widths)
        # NOTE: the copy keeps a later in-place transform from writing into the input image.
        return restore(batch[:, :, top:top + h, left:left + w].copy())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class RandomResizedCrop:
    """Crop a random window, covering a `scale` fraction of the image's area with aspect ratio
    w / h in `ratio` (drawn log-uniformly), and resize it bilinearly to `size`; each image of
    a batch gets its own window. As in torchvision, when 10 draws all overflow the image it
    takes a centre crop with the nearest allowed ratio. No antialiasing (torchvision's default
    antialiases)."""

    tries = 10

    def __init__(self, size: int | Sequence[int], scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3),
                 generator: Generator | None = None) -> None:
        self.size = _pair("RandomResizedCrop", size, "size")
        self.scale = _interval("RandomResizedCrop", scale, "scale")
        self.ratio = _interval("RandomResizedCrop", ratio, "ratio")
        self.generator = generator

    def _fallback(self, height: int, width: int) -> tuple:
        """torchvision's centre crop (h, w) after 10 failed draws (kept at least 1 pixel)."""
        low, high = self.ratio
        if width / height < low:
            return max(1, round(width / low)), width
        if width / height > high:
            return height, max(1, round(height * high))
        return height, width

    def _windows(self, n: int, height: int, width: int) -> np.ndarray:
        """N x 4 windows (top, left, height, width): all draws at once, each sample taking its
        first draw that fits."""
        rng = cpu_rng(self.generator)
        area = height * width * rng.uniform(*self.scale, size=(n, self.tries))
        log_low, log_high = np.log(self.ratio)
        aspect = np.exp(rng.uniform(log_low, log_high, size=(n, self.tries)))
        w = np.round(np.sqrt(area * aspect)).astype(np.int64)
        h = np.round(np.sqrt(area / aspect)).astype(np.int64)
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = np.arange(n), fits.argmax(axis=1)
        h, w = h[first], w[first]
        failed = ~fits.any(axis=1)
        h[failed], w[failed] = self._fallback(height, width)
        top = rng.integers(0, height - h + 1)
        left = rng.integers(0, width - w + 1)
        top[failed], left[failed] = (height - h[failed]) // 2, (width - w[failed]) // 2
        return np.stack([top, left, h, w], axis=1)

    @_on_input_device
    def __call__(self, x: Tensor) -> Tensor:
        batch, restore = _image_batch("RandomResizedCrop", x)
        n, _, height, width = batch.shape
        windows = self._windows(n, height, width)
        return restore(_resized_crops(batch, windows, self.size, x._xp, x.device))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, scale={self.scale}, "
                f"ratio={self.ratio})")


class RandomHorizontalFlip:
    """Mirror left-right with probability p, independently for each image of a batch."""

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        self.p = p
        self.generator = generator

    @_on_input_device
    def __call__(self, x: Tensor) -> Tensor:
        batch, restore = _image_batch("RandomHorizontalFlip", x)
        flip = cpu_rng(self.generator).random(batch.shape[0]) < self.p
        flip = move_array(flip[:, None, None, None], x.device)
        return restore(x._xp.where(flip, batch[..., ::-1], batch))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"
