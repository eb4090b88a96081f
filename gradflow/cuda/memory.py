"""GPU memory statistics mirroring torch.cuda's: bytes in use, the peak since a reset, bytes
the pool holds, and emptying the pool's cache. Every function returns 0 (or does nothing)
without CUDA.

CuPy's memory pool reports its current use but keeps no peak, so gradflow samples it: a CuPy
memory hook reads the pool's use after every allocation the main thread makes and keeps the
maximum. The hook costs a Python call per allocation, so it is registered only when a peak
is first asked for (`reset_peak_memory_stats` or `max_memory_allocated`): call
`reset_peak_memory_stats()` before the code you measure. CuPy's hooks are per thread: an
allocation made and freed by another thread between two of the main thread's allocations
can escape the peak; the training step's own allocations never do.
"""
from __future__ import annotations

import threading

from ..backend import cuda_available, cupy_module

_tracker = None


def _pool():
    return cupy_module().get_default_memory_pool()


def _track_peak() -> None:
    """Register the peak-keeping hook, once, from the main thread (a no-op elsewhere)."""
    if _tracker is None and threading.current_thread() is threading.main_thread():
        _register()


def _register() -> None:
    global _tracker

    class PeakTracker(cupy_module().cuda.MemoryHook):
        name = "gradflow_peak_memory"

        def __init__(self) -> None:
            self.peak = _pool().used_bytes()

        def malloc_postprocess(self, **kwargs) -> None:
            used = _pool().used_bytes()
            if used > self.peak:
                self.peak = used

    _tracker = PeakTracker()
    _tracker.__enter__()  # registers the hook for this thread, for the process's life


def _peak_so_far() -> int:
    _track_peak()
    used = _pool().used_bytes()
    return used if _tracker is None else max(_tracker.peak, used)


def memory_allocated() -> int:
    """Bytes held by live arrays in CuPy's default memory pool on the current device
    (torch.cuda.memory_allocated)."""
    return _pool().used_bytes() if cuda_available() else 0


def max_memory_allocated() -> int:
    """The most bytes live arrays have held since the last `reset_peak_memory_stats()`, or
    since the first call of this function (torch.cuda.max_memory_allocated)."""
    return _peak_so_far() if cuda_available() else 0


def reset_peak_memory_stats() -> None:
    """Start a new peak from the bytes in use now (torch.cuda.reset_peak_memory_stats)."""
    if cuda_available():
        _track_peak()
        if _tracker is not None:
            _tracker.peak = _pool().used_bytes()


def memory_reserved() -> int:
    """Bytes the pool holds from the device, in use or cached (torch.cuda.memory_reserved)."""
    return _pool().total_bytes() if cuda_available() else 0


def empty_cache() -> None:
    """Return the pool's cached, unused blocks to the device (torch.cuda.empty_cache)."""
    if cuda_available():
        _pool().free_all_blocks()
