"""GPU memory statistics mirroring torch.cuda's, per device: bytes in use, the peak since a
reset, bytes the pools hold, and emptying the pools' caches. Every function returns 0 (or
does nothing) without CUDA.

The bytes counted are those of CuPy's default memory pool plus the private pools of the
captured steps (`compile_step` gives each graph its own pool, which the graph keeps while it
lives), as torch counts its graphs' pools.

CuPy's pools report their current use but keep no peak, so gradflow samples it: a CuPy
memory hook reads the device's use after every allocation the main thread makes and keeps
the maximum. The hook costs a Python call per allocation, so it is registered only when a
peak is first asked for (`reset_peak_memory_stats` or `max_memory_allocated`): call
`reset_peak_memory_stats()` before the code you measure. CuPy's hooks are per thread: an
allocation made and freed by another thread between two of the main thread's allocations
can escape the peak; the training step's own allocations never do.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

from ..backend import cuda_available, cuda_index, cupy_module

_tracker = None
_private: weakref.WeakSet = weakref.WeakSet()


class PrivatePool:
    """A memory pool of its own for one captured graph on one device, counted in the
    statistics while its owner keeps it."""

    def __init__(self, device_id: int) -> None:
        self.device_id = device_id
        self.pool = cupy_module().cuda.MemoryPool()
        self.malloc = self.pool.malloc


def private_pool(device_id: int) -> PrivatePool:
    """A new private pool on `device_id`, counted by the statistics below while it lives."""
    pool = PrivatePool(device_id)
    _private.add(pool)
    return pool


def _pools(device_id: int) -> list:
    """The CuPy pools whose blocks count for `device_id`: the default one and the live
    private pools made there."""
    return [cupy_module().get_default_memory_pool()] + [
        p.pool for p in list(_private) if p.device_id == device_id]


def _sum(device_id: int, what: str) -> int:
    """A pool statistic summed over `_pools(device_id)`, read on that device (CuPy's pools
    report the current device's blocks)."""
    with cupy_module().cuda.Device(device_id):
        return sum(getattr(pool, what)() for pool in _pools(device_id))


def _index(what: str, device: Any) -> int:
    return cupy_module().cuda.Device().id if device is None else cuda_index(what, device)


def _track_peak() -> None:
    """Register the peak-keeping hook, once, from the main thread (a no-op elsewhere)."""
    if _tracker is None and threading.current_thread() is threading.main_thread():
        _register()


def _register() -> None:
    global _tracker

    hook_base: Any = cupy_module().cuda.MemoryHook

    class PeakTracker(hook_base):
        name = "gradflow_peak_memory"

        def __init__(self) -> None:
            self.peaks: dict = {}

        def malloc_postprocess(self, device_id: int, **kwargs) -> None:
            used = _sum(device_id, "used_bytes")
            if used > self.peaks.get(device_id, 0):
                self.peaks[device_id] = used

    _tracker = PeakTracker()
    _tracker.__enter__()  # registers the hook for this thread, for the process's life


def memory_allocated(device: Any = None) -> int:
    """Bytes held by live arrays on a GPU (default: the current one), in CuPy's default pool
    and the captured steps' pools (torch.cuda.memory_allocated)."""
    return _sum(_index("memory_allocated", device), "used_bytes") if cuda_available() else 0


def max_memory_allocated(device: Any = None) -> int:
    """The most bytes live arrays have held on a GPU since the last
    `reset_peak_memory_stats()`, or since the first call of this function
    (torch.cuda.max_memory_allocated)."""
    if not cuda_available():
        return 0
    index = _index("max_memory_allocated", device)
    _track_peak()
    used = _sum(index, "used_bytes")
    return used if _tracker is None else max(_tracker.peaks.get(index, 0), used)


def reset_peak_memory_stats(device: Any = None) -> None:
    """Start a new peak from the bytes in use now (torch.cuda.reset_peak_memory_stats)."""
    if cuda_available():
        index = _index("reset_peak_memory_stats", device)
        _track_peak()
        if _tracker is not None:
            _tracker.peaks[index] = _sum(index, "used_bytes")


def memory_reserved(device: Any = None) -> int:
    """Bytes the pools hold from a GPU, in use or cached (torch.cuda.memory_reserved)."""
    return _sum(_index("memory_reserved", device), "total_bytes") if cuda_available() else 0


def empty_cache() -> None:
    """Return every pool's cached, unused blocks to every GPU (torch.cuda.empty_cache)."""
    if not cuda_available():
        return
    cp = cupy_module()
    for index in range(cp.cuda.runtime.getDeviceCount()):
        with cp.cuda.Device(index):
            for pool in _pools(index):
                pool.free_all_blocks()
