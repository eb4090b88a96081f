"""Tensor factories: tensor, from_numpy, zeros/ones/full/empty, arange, linspace, eye, the
random ones, and the *_like forms. Each takes dtype, device and requires_grad; device=None
means the default device (`set_default_device`, the CPU unless changed), except for the
*_like forms, which keep their input's device, and from_numpy, always on the CPU."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import dtypes
from .backend import CPU, as_device, device, module_for, move_array, on_device
from .cuda import random as cuda_random
from .random import Generator, cpu_rng, cuda_generators
from .tensor import Tensor

_default_device: device = CPU


def set_default_device(device: Any) -> None:
    """Make `device` ('cpu', 'cuda', 'cuda:1', an index, None for the CPU) where factories
    put tensors when given no device (torch.set_default_device). Unlike torch's, the setting
    is process-wide, not per thread, and an unusable device is refused here, not at the next
    factory call."""
    global _default_device
    _default_device = CPU if device is None else as_device(device)


def get_default_device() -> device:
    """The device factories use when given none (torch.get_default_device)."""
    return _default_device


def _target(dev: Any) -> device:
    return _default_device if dev is None else as_device(dev)


def _has_float(data: Any) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, (float, np.floating)):
            return True
        elif isinstance(item, Tensor) and dtypes.is_floating(item.dtype):
            return True
    return False


def _nested_to_numpy(data: Any, op: str) -> np.ndarray:
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        data = [x.detach().cpu().array if isinstance(x, Tensor) else x for x in data]
    try:
        arr = np.array(data)
    except ValueError as err:
        raise ValueError(f"{op}: expected a rectangular nested sequence, got a ragged one "
                         f"({err})") from None
    if arr.dtype == object or dtypes.kind(arr.dtype) in "USV":
        raise TypeError(f"{op}: could not convert data of type {type(data).__name__} to a "
                        "tensor; expected numbers or nested sequences of numbers")
    return arr


def to_array(data: Any, dtype: Any, dev: Any, op: str = "tensor"):
    """A fresh array on `dev` holding `data`, with PyTorch's dtype inference."""
    target = _target(dev)
    if isinstance(data, Tensor):
        if dev is None:
            target = data.device
        arr = data.array.copy()
    elif isinstance(data, np.ndarray):
        arr = data.copy()
        if dtype is None and arr.dtype not in dtypes.SUPPORTED:
            raise TypeError(f"{op}: NumPy dtype {arr.dtype} is not supported")
    elif hasattr(data, "__cuda_array_interface__"):
        if dev is None:
            target = device("cuda", data.device.id)
        arr = data.copy()
    else:
        arr = _nested_to_numpy(data, op)
        if dtype is None:
            if dtypes.is_floating(arr.dtype) or (arr.size == 0) or _has_float(data):
                arr = arr.astype(dtypes.get_default_dtype())
            elif arr.dtype.kind in "iu":
                arr = arr.astype(dtypes.int64)
    if dtype is not None:
        arr = dtypes.astype(arr, dtypes.as_dtype(dtype), copy=False)
    return move_array(arr, target)


def _finish(arr, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data: Any, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """A new tensor copied from data (a number, nested list, NumPy array or tensor)."""
    return _finish(to_array(data, dtype, device), requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like `tensor`, but reuses `data` when it already is a tensor of that dtype/device."""
    if isinstance(data, Tensor) and (dtype is None or dtypes.as_dtype(dtype) == data.dtype) \
            and (device is None or as_device(device) == data.device):
        return data
    if isinstance(data, np.ndarray) and dtype is None and _target(device) == CPU:
        return from_numpy(data)
    return tensor(data, dtype, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with a NumPy array."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    if array.dtype not in dtypes.SUPPORTED:
        raise TypeError(f"from_numpy: NumPy dtype {array.dtype} is not supported; use one of "
                        + ", ".join(str(d) for d in dtypes.SUPPORTED))
    return Tensor._wrap(array)


def _shape(op: str, size: tuple) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"{op}: sizes must be non-negative ints, got {size}")
    return tuple(int(s) for s in size)


def _dtype_or_default(dtype: Any) -> np.dtype:
    """The requested dtype, or the default float dtype when none is given."""
    return dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)


def _filled(op: str, size: tuple, value: Any, dtype: Any, device: Any,
            requires_grad: bool) -> Tensor:
    dev = _target(device)
    if dtype is not None or value is None:
        dt = _dtype_or_default(dtype)
    else:
        dt = dtypes.scalar_dtype(value)  # full((2,), 7) is int64, full((2,), 7.0) float32
    xp = module_for(dev)
    shape = _shape(op, size)
    with on_device(dev):
        arr = xp.empty(shape, dt) if value is None else xp.full(shape, value, dt)
    return _finish(arr, requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    return _filled("zeros", size, 0.0, dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    return _filled("ones", size, 1.0, dtype, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    return _filled("empty", size, None, dtype, device, requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor filled with one value; its dtype follows the value, as in PyTorch."""
    return _filled("full", (size,) if isinstance(size, int) else tuple(size), fill_value,
                   dtype, device, requires_grad)


def _like(x: Tensor, dtype: Any, device: Any) -> tuple:
    return (x.dtype if dtype is None else dtype), (x.device if device is None else device)


def zeros_like(x: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return zeros(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(x: Tensor, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return ones(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def empty_like(x: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return empty(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(x: Tensor, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return full(x.shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values from start up to (not including) end; int64 unless an argument is a float."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        floats = any(isinstance(v, (float, np.floating)) for v in (start, end, step))
        dtype = dtypes.get_default_dtype() if floats else dtypes.int64
    dev = _target(device)
    with on_device(dev):
        arr = module_for(dev).arange(start, end, step, dtype=dtypes.as_dtype(dtype))
    return _finish(arr, requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    dev = _target(device)
    dt = _dtype_or_default(dtype)
    with on_device(dev):
        if (dt == dtypes.float16 or dt == dtypes.bfloat16) and steps > 1:
            arr = _low_precision_linspace(module_for(dev), start, end, steps, dt)
        else:
            # NOTE: an integer dtype takes the float points truncated toward zero, as torch
            # does (NumPy's integer linspace rounds down)
            arr = module_for(dev).linspace(start, end, steps).astype(dt, copy=False)
    return _finish(arr, requires_grad)


def _low_precision_linspace(xp: Any, start: float, end: float, steps: int, dt: np.dtype):
    """torch's float16/bfloat16 linspace, bit for bit: it steps in the dtype itself, each
    operation rounded to it: step = (end - start) / (steps - 1), then start + step * i for the
    first half of the points and end - step * (steps - 1 - i) for the rest."""
    def rounded(v):
        return xp.asarray(v, dtypes.float32).astype(dt).astype(dtypes.float32)

    s, e = rounded(start), rounded(end)
    step = rounded(rounded(e - s) / rounded(steps - 1))
    i = xp.arange(steps)
    head = rounded(s + rounded(step * rounded(i)))
    tail = rounded(e - rounded(step * rounded(steps - 1 - i)))
    return xp.where(i < steps // 2, head, tail).astype(dt)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    dev = _target(device)
    with on_device(dev):
        arr = module_for(dev).eye(n, n if m is None else m, dtype=_dtype_or_default(dtype))
    return _finish(arr, requires_grad)


def _random(op: str, draw_cpu, draw_cuda, size: tuple, dtype: Any, device: Any,
            requires_grad: bool, generator: Generator | None) -> Tensor:
    dev = _target(device)
    shape = _shape(op, size)
    dt = _dtype_or_default(dtype)
    if dev.type == "cpu":
        arr = draw_cpu(cpu_rng(generator), shape).astype(dt, copy=False)
    else:
        if generator is not None:
            raise ValueError(f"{op}: a CPU Generator cannot draw CUDA tensors; omit generator "
                             "or draw on the CPU and move the result")
        with on_device(dev):
            arr = draw_cuda(shape, dev, dt).astype(dt, copy=False)
    return _finish(arr, requires_grad)


def _cuda_float(shape: tuple, dev: device, dtype: Any, draw, *args) -> Any:
    """Draw `shape` samples on GPU `dev` (the current device) with a kernel of
    kernels/random.cu, advancing that device's generator: in `dtype` when it is float32 or
    float64, else in float64 for the caller to cast."""
    dtype = dtype if dtype in (dtypes.float32, dtypes.float64) else dtypes.float64
    index = 0 if dev.index is None else dev.index  # as_device gives CUDA devices their number
    key = cuda_generators.take(index, math.prod(shape))
    return draw(module_for(dev), shape, dtype, key, *args)


def rand(*size: Any, generator: Generator | None = None, dtype: Any = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _random("rand", lambda g, s: g.random(s),
                   lambda s, d, t: _cuda_float(s, d, t, cuda_random.uniform),
                   size, dtype, device, requires_grad, generator)


def randn(*size: Any, generator: Generator | None = None, dtype: Any = None,
          device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    return _random("randn", lambda g, s: g.standard_normal(s),
                   lambda s, d, t: _cuda_float(s, d, t, cuda_random.normal, 0.0, 1.0), size, dtype,
                   device, requires_grad, generator)


def normal(mean: float = 0.0, std: float = 1.0, size: Any = (), generator: Generator | None
           = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Normal samples with the given mean and standard deviation."""
    if std < 0:
        raise ValueError(f"normal: std must be non-negative, got {std}")
    size = (size,) if isinstance(size, int) else tuple(size)
    return _random("normal", lambda g, s: g.normal(mean, std, s),
                   lambda s, d, t: _cuda_float(s, d, t, cuda_random.normal, mean, std), size, dtype,
                   device, requires_grad, generator)


def randint(low: int, high: int | None = None, size: Any = (), generator: Generator | None
            = None, dtype: Any = None, device: Any = None) -> Tensor:
    """Integers drawn uniformly from [low, high); int64 by default."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    dev = _target(device)
    shape = _shape("randint", (size,) if isinstance(size, int) else tuple(size))
    dt = dtypes.int64 if dtype is None else dtypes.as_dtype(dtype)
    if dev.type == "cpu":
        arr = cpu_rng(generator).integers(low, high, shape).astype(dt)
    else:
        # NOTE: floor(u * range) of a 53-bit uniform u: the bias is below range / 2**53.
        with on_device(dev):
            unit = _cuda_float(shape, dev, dtypes.float64, cuda_random.uniform)
            arr = (module_for(dev).floor(unit * (high - low)) + low).astype(dt)
    return Tensor._wrap(arr)


def randperm(n: int, generator: Generator | None = None, device: Any = None) -> Tensor:
    """A random permutation of 0..n-1 (int64)."""
    arr = cpu_rng(generator).permutation(n).astype(np.int64)
    return Tensor._wrap(move_array(arr, _target(device)))


def _like_random(fn, x: Tensor, dtype: Any, device: Any, requires_grad: bool) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return fn(*x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def rand_like(x: Tensor, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return _like_random(rand, x, dtype, device, requires_grad)


def randn_like(x: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    return _like_random(randn, x, dtype, device, requires_grad)


def randint_like(x: Tensor, low: int, high: int | None = None, dtype: Any = None,
                 device: Any = None) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return randint(low, high, tuple(x.shape), dtype=dt, device=dev)


__all__ = [n for n in dir() if not n.startswith("_") and n not in
           ("np", "dtypes", "Any", "annotations", "CPU", "as_device", "device",
            "module_for", "move_array", "Generator", "cpu_rng", "cuda_generators",
            "cuda_random", "Tensor", "math", "to_array")]
