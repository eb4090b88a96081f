"""CUDA helpers mirroring torch.cuda: availability, devices and their properties, streams
and events (`runtime`), synchronisation, seeding, memory statistics, and whole-step CUDA
graphs (`graphs.compile_step`)."""
from __future__ import annotations

from typing import Any

from .. import random as _random
from ..backend import cuda_available, cuda_index, cuda_unavailable_reason, cupy_module
from . import checks, graphs, precision
from .graphs import compile_step
from .memory import (
    empty_cache,
    max_memory_allocated,
    memory_allocated,
    memory_reserved,
    reset_peak_memory_stats,
)
from .oom import OutOfMemoryError
from .runtime import (
    DeviceProperties,
    Event,
    Stream,
    StreamContext,
    current_stream,
    default_stream,
    get_device_capability,
    get_device_name,
    get_device_properties,
    is_bf16_supported,
    mem_get_info,
    set_device,
    stream,
)


def is_available() -> bool:
    """True when CuPy imports, a GPU is visible and the CUDA libraries gradflow needs (NVRTC,
    cuBLAS, the CUDA runtime) load; `init()` says why not."""
    return cuda_available()


def init() -> None:
    """Raise a RuntimeError saying, in words a user can act on, why CUDA cannot be used here
    (CuPy missing, no driver or GPU, a CUDA library missing); return when it can
    (torch.cuda.init)."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"gradflow.cuda: CUDA is not available: {reason}")


def device_count() -> int:
    return cupy_module().cuda.runtime.getDeviceCount() if cuda_available() else 0


def current_device() -> int:
    if not cuda_available():
        raise RuntimeError("current_device: CUDA is not available")
    return cupy_module().cuda.Device().id


def synchronize(device: Any = None) -> None:
    """Wait for all queued GPU work on `device` (default: the current one; a no-op without
    CUDA), then raise any failed check of device data that ran meanwhile
    (gradflow.cuda.checks)."""
    if cuda_available():
        gpu = cupy_module().cuda.Device(None if device is None else cuda_index("synchronize",
                                                                               device))
        gpu.synchronize()
        checks.raise_pending(gpu.id)


def manual_seed(seed: int) -> None:
    """Seed the GPU generators (gradflow.manual_seed seeds these and the CPU's)."""
    _random.seed_cuda(seed)


manual_seed_all = manual_seed


def _index(what: str, device: Any) -> int:
    return current_device() if device is None else cuda_index(what, device)


def get_rng_state(device: Any = None) -> dict:
    """The generator state of a GPU (default: the current one), as {"seed", "offset"}
    (torch.cuda.get_rng_state); `set_rng_state` restores it exactly."""
    return _random.get_cuda_rng_state(_index("get_rng_state", device))


def set_rng_state(state: dict, device: Any = None) -> None:
    _random.set_cuda_rng_state(state, _index("set_rng_state", device))


def get_rng_state_all() -> list:
    """Every GPU's generator state, by device index (torch.cuda.get_rng_state_all)."""
    return [_random.get_cuda_rng_state(i) for i in range(device_count())]


def set_rng_state_all(states: list) -> None:
    for i, state in enumerate(states):
        _random.set_cuda_rng_state(state, i)


def __getattr__(name: str) -> Any:
    """`gradflow.cuda.amp` (torch.cuda.amp's deprecated names), imported on first use: it
    builds on gradflow.amp, which itself imports this package."""
    if name == "amp":
        import importlib
        return importlib.import_module(".amp", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DeviceProperties", "Event", "OutOfMemoryError", "Stream", "StreamContext",
           "compile_step", "current_device", "current_stream", "default_stream",
           "device_count", "empty_cache", "get_device_capability", "get_device_name",
           "get_device_properties", "get_rng_state", "get_rng_state_all", "init",
           "is_available", "is_bf16_supported", "manual_seed", "manual_seed_all",
           "max_memory_allocated", "mem_get_info", "memory_allocated", "memory_reserved",
           "reset_peak_memory_stats", "set_device", "set_rng_state", "set_rng_state_all",
           "stream", "synchronize"]
