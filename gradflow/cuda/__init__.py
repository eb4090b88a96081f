"""CUDA helpers mirroring torch.cuda: availability, device count, synchronisation, seeding,
memory statistics."""
from __future__ import annotations

from .. import random as _random
from ..backend import cuda_available, cupy_module
from .memory import (
    empty_cache,
    max_memory_allocated,
    memory_allocated,
    memory_reserved,
    reset_peak_memory_stats,
)


def is_available() -> bool:
    """True when CuPy is installed and a GPU is visible (never imports CuPy otherwise)."""
    return cuda_available()


def device_count() -> int:
    return cupy_module().cuda.runtime.getDeviceCount() if cuda_available() else 0


def current_device() -> int:
    if not cuda_available():
        raise RuntimeError("current_device: CUDA is not available")
    return cupy_module().cuda.Device().id


def synchronize() -> None:
    """Wait for all queued GPU work (a no-op without CUDA)."""
    if cuda_available():
        cupy_module().cuda.Device().synchronize()


def manual_seed(seed: int) -> None:
    """Seed the GPU generators (gradflow.manual_seed seeds these and the CPU's)."""
    _random.seed_cuda(seed)


manual_seed_all = manual_seed


__all__ = ["current_device", "device_count", "empty_cache", "is_available", "manual_seed",
           "manual_seed_all", "max_memory_allocated", "memory_allocated", "memory_reserved",
           "reset_peak_memory_stats", "synchronize"]
