"""glibc's malloc settings for NumPy's short-lived buffers, applied once when gradflow loads.

A CPU training step allocates and frees the same large arrays every step (activations, im2col
columns, gradients). glibc returns freed memory at the top of its heap to the system once more
than M_TRIM_THRESHOLD is free, and serves blocks above M_MMAP_THRESHOLD by mmap; both limits
move with the allocation history, so a step's buffers kept leaving and re-entering the process,
and each return trip costs a page fault per 4 KiB touched again (1,700 to 8,600 faults per
step on this project's benchmark nets at batch 32). Fixing the mmap threshold at its largest
value (32 MiB on 64-bit glibc) and keeping up to 1 GiB free in the heap removes nearly all of
them; blocks over 32 MiB still come from mmap and go back to the system when freed.

The price: freed heap memory up to 1 GiB stays with the process (its RSS stays near its peak,
as with any caching allocator). Set GRADFLOW_MALLOC_TUNING=0 to keep glibc's defaults; any
MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ in the environment is left to glibc too.
Elsewhere (macOS, Windows, musl) nothing changes.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
SETTINGS = {M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 2**30}
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

applied: dict[int, int] = {}  # what `tune` set, for tests and bug reports


def tune() -> None:
    """Apply SETTINGS through glibc's mallopt, unless opted out or not on glibc."""
    if (not sys.platform.startswith("linux") or os.environ.get("GRADFLOW_MALLOC_TUNING") == "0"
            or any(name in os.environ for name in USER_SETTINGS)):
        return
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc's own (musl's mallopt is a stub)
        return
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    for param, value in SETTINGS.items():
        if mallopt(param, value) == 1:  # mallopt returns 1 on success
            applied[param] = value
