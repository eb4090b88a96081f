"""Image transforms (torchvision.transforms): Compose, ToTensor, Normalize, RandomCrop and
RandomHorizontalFlip.

The tensor transforms take one image (C x H x W, or H x W) or a whole batch (N x C x H x W);
on a batch the random ones choose independently per sample, with array ops only, so one call
augments a batch on the CPU or the GPU. Random choices are drawn on the CPU from `generator`
(or gradflow's default generator), so a seed gives the same crops and flips on every device.
Transforms preprocess data: their outputs carry no autograd graph.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Sequence

import numpy as np

from . import dtypes
from .backend import move_array
from .creation import from_numpy
from .random import Generator, cpu_rng
from .tensor import Tensor


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


def _pair(value: int | Sequence[int], name: str) -> tuple:
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    if len(value) == 1:
        return int(value[0]), int(value[0])
    if len(value) != 2:
        raise ValueError(f"RandomCrop: {name} should be an int or a sequence of 2 ints, got "
                         f"{value!r}")
    return int(value[0]), int(value[1])


def _padding(padding: int | Sequence[int] | None) -> tuple:
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if padding is None:
        return 0, 0, 0, 0
    if isinstance(padding, numbers.Integral):
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
        self.size = _pair(size, "size")
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


class RandomHorizontalFlip:
    """Mirror left-right with probability p, independently for each image of a batch."""

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        self.p = p
        self.generator = generator

    def __call__(self, x: Tensor) -> Tensor:
        batch, restore = _image_batch("RandomHorizontalFlip", x)
        flip = cpu_rng(self.generator).random(batch.shape[0]) < self.p
        flip = move_array(flip[:, None, None, None], x.device)
        return restore(x._xp.where(flip, batch[..., ::-1], batch))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"
