"""Device model and array-module lookup: NumPy backs CPU tensors, CuPy backs CUDA tensors.

CuPy is imported lazily and only if installed, so `import gradflow` never needs it.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np


@functools.lru_cache(maxsize=None)
def cupy_module():
    """Return the cupy module, or None when CuPy is not installed or cannot start."""
    try:
        import cupy
    except Exception:  # CuPy missing, or its CUDA libraries failed to load
        return None
    return cupy


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    cp = cupy_module()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, or no device
        return False


class device:
    """A place where tensors live, like torch.device: 'cpu', 'cuda' or 'cuda:N'."""

    __slots__ = ("type", "index")

    def __init__(self, spec: "str | device", index: int | None = None) -> None:
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, num = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device: unknown device type {kind!r} in {spec!r}; "
                             "expected 'cpu', 'cuda' or 'cuda:N'")
        if num:
            if index is not None:
                raise ValueError(f"device: index given twice in device({spec!r}, {index})")
            if not num.isdigit():
                raise ValueError(f"device: bad device index {num!r} in {spec!r}")
            index = int(num)
        if kind == "cpu" and index not in (None, 0):
            raise ValueError(f"device: the cpu device has no index {index}")
        self.type = kind
        self.index = index if kind == "cuda" else None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (TypeError, ValueError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self._ordinal() == other._ordinal()

    def __hash__(self) -> int:
        return hash((self.type, self._ordinal()))

    def _ordinal(self) -> int | None:
        if self.type == "cpu":
            return None
        return 0 if self.index is None else self.index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + (
            f", index={self.index})" if self.index is not None else ")")


CPU = device("cpu")


def as_device(spec: Any) -> device:
    """Normalise a device argument ('cuda', 'cuda:1', 0, device) to a concrete device."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        dev = device("cuda", spec)
    else:
        dev = device(spec)
    if dev.type == "cuda":
        if not cuda_available():
            raise RuntimeError(f"device {dev}: CUDA is not available (CuPy is not installed or "
                               "no GPU is visible); install gradflow[cuda12] or gradflow[cuda13]")
        count = cupy_module().cuda.runtime.getDeviceCount()
        idx = dev._ordinal()
        if idx >= count:
            raise RuntimeError(f"device {dev}: invalid device ordinal, {count} GPU(s) visible")
        dev = device("cuda", idx)
    return dev


def device_of(array: Any) -> device:
    """The device holding a NumPy or CuPy array."""
    if isinstance(array, np.ndarray):
        return CPU
    return device("cuda", array.device.id)


def array_module(array: Any):
    """numpy for NumPy arrays, cupy for CuPy arrays (DeZero's get_array_module)."""
    if isinstance(array, np.ndarray):
        return np
    cp = cupy_module()
    if cp is not None and isinstance(array, cp.ndarray):
        return cp
    return np


def module_for(dev: device):
    """The array module that backs tensors on `dev`."""
    return np if dev.type == "cpu" else cupy_module()


def move_array(array: Any, dev: device):
    """Copy `array` to `dev` (no copy when it is already there)."""
    if dev.type == "cpu":
        if isinstance(array, np.ndarray):
            return array
        return array.get()
    cp = cupy_module()
    with cp.cuda.Device(dev.index):
        if isinstance(array, cp.ndarray) and array.device.id == dev.index:
            return array
        return cp.asarray(array)
