"""Device model and array-module lookup: NumPy backs CPU tensors, CuPy backs CUDA tensors.

CuPy is imported lazily and only if installed, so `import gradflow` never needs it.
"""
from __future__ import annotations

import contextlib
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


_unavailable: dict = {}  # id(cupy module or None) -> the reason CUDA is unusable, or None


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, in words a user can act on; None when it can (CuPy
    imports, a GPU is visible, and NVRTC, cuBLAS and the CUDA runtime library load). Worked
    out once per process."""
    cp = cupy_module()
    key = id(cp)
    if key not in _unavailable:
        _unavailable[key] = _find_unavailable_reason(cp)
    return _unavailable[key]


def _find_unavailable_reason(cp) -> str | None:
    if cp is None:
        try:
            import cupy  # noqa: F401  (only to say why it failed)
        except Exception as err:  # noqa: BLE001
            return (f"CuPy cannot be imported ({type(err).__name__}: {err}); install "
                    "gradflow[cuda12] or gradflow[cuda13] to match your NVIDIA driver")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as err:  # noqa: BLE001  (no driver, or one too old for CuPy's CUDA)
        return f"no usable NVIDIA driver or GPU ({err})"
    if count < 1:
        return "no GPU is visible (CUDA_VISIBLE_DEVICES may hide them)"
    from .cuda import libraries
    return libraries.missing(cp)


def cuda_available() -> bool:
    """True when CuPy imports, sees at least one GPU, and the CUDA libraries load."""
    return cuda_unavailable_reason() is None


class device:
    """A place where tensors live, like torch.device: 'cpu', 'cuda' or 'cuda:N'."""

    __slots__ = ("type", "index")
    type: str
    index: int | None

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
        # NOTE: `index or 0` is the ordinal: 'cuda' is GPU 0, and a cpu device's index is None.
        return self.type == other.type and (self.index or 0) == (other.index or 0)

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
        reason = cuda_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"device {dev}: CUDA is not available: {reason}")
        count = cupy_module().cuda.runtime.getDeviceCount()
        idx = dev._ordinal()
        if idx >= count:
            raise RuntimeError(f"device {dev}: invalid device ordinal, {count} GPU(s) visible")
        dev = device("cuda", idx)
    return dev


def cuda_index(what: str, spec: Any) -> int:
    """The number of the GPU a device argument names ('cuda' is GPU 0, as device equality has
    it); `what` (the caller's name) opens the error for a CPU device."""
    dev = as_device(spec)
    if dev.type != "cuda":
        raise ValueError(f"{what}: expected a CUDA device, got {dev}")
    return 0 if dev.index is None else dev.index


def device_of(array: Any) -> device:
    """The device holding a NumPy or CuPy array."""
    if isinstance(array, np.ndarray):
        return CPU
    return device("cuda", array.device.id)


def data_address(array: Any) -> int:
    """The address of an array's first element: host memory for NumPy, device for CuPy."""
    if isinstance(array, np.ndarray):
        return array.__array_interface__["data"][0]
    return array.data.ptr


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
        return host_read(array, array.get)
    cp = cupy_module()
    if isinstance(array, cp.ndarray):
        if array.device.id == dev.index:
            return array
        with array.device:  # NOTE: CuPy copies between devices only from a contiguous array
            array = cp.ascontiguousarray(array)
    with cp.cuda.Device(dev.index):
        return array.copy() if isinstance(array, cp.ndarray) else cp.asarray(array)


def host_read(array: Any, read):
    """`read()` of a GPU array (which waits for its device), then any failed deferred check
    of that device raised (gradflow.cuda.checks): where the host waits anyway."""
    value = read()
    from .cuda import checks
    checks.raise_pending(array.device.id)
    return value


def on_device(dev: device):
    """The context that makes `dev` CUDA's current device (a no-op for the CPU): every
    allocation, kernel launch, cuBLAS call and stream use inside it runs on `dev`, as CuPy
    works on the current device, not on its operands' device."""
    if dev.type == "cpu":
        return contextlib.nullcontext()
    return cupy_module().cuda.Device(dev.index)


def on_device_of(tensors: Any):
    """`on_device` for the device of the first tensor in `tensors` that lives on a GPU."""
    for t in tensors:
        if getattr(t, "is_cuda", False):
            return on_device(t.device)
    return contextlib.nullcontext()
