"""CUDA helpers mirroring torch.cuda: availability, device count, synchronisation, seeding,
memory statistics, and whole-step CUDA graphs (`graphs.compile_step`)."""
from __future__ import annotations

from typing import Any

from .. import random as _random
from ..backend import cuda_available, cuda_index, cuda_unavailable_reason, cupy_module
from . import checks, graphs
from .graphs import compile_step
from .memory import (
    empty_cache,
    max_memory_allocated,
    memory_allocated,
    memory_reserved,
    reset_peak_memory_stats,
)
from .oom import OutOfMemoryError


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


def synchronize() -> None:
    """Wait for all queued GPU work on the current device (a no-op without CUDA), then raise
    any failed check of device data that ran meanwhile (gradflow.cuda.checks)."""
    if cuda_available():
        device = cupy_module().cuda.Device()
        device.synchronize()
        checks.raise_pending(device.id)


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


__all__ = ["OutOfMemoryError", "compile_step", "current_device", "device_count", "empty_cache",
           "get_rng_state", "init",
           "get_rng_state_all", "is_available", "manual_seed", "manual_seed_all",
           "max_memory_allocated", "memory_allocated", "memory_reserved",
           "reset_peak_memory_stats", "set_rng_state", "set_rng_state_all", "synchronize"]
