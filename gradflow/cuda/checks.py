"""Checks of device data that never make the host wait: an op that must validate values on
the GPU (index bounds, integer divisors) folds "was anything bad" into a per-device error
word, on the stream, instead of reading the values back; the word is read where the host
waits for the GPU anyway (`.item()`, `.cpu()`, printing, `gf.cuda.synchronize()`), and a set
word raises there, naming the op and what was wrong. PyTorch reports its device-side asserts
the same way, at the next synchronisation. Until then the op's result is not to be trusted
(CuPy wraps an out-of-range index around rather than faulting), and the error says so.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

_codes: dict = {}  # (error type, message) -> its code (1, 2, ...)
_checks: list = []  # code - 1 -> (error type, message)
_words: dict = {}  # device id -> int32 device array holding the first failed check's code
_dirty: set = set()  # devices whose word may have been set since it was last read


def defer_range(index: Any, low: int, high: int, message: str) -> None:
    """Raise IndexError(`message`) at the next host read if an entry of the device integer
    array `index` lies outside [low, high); records the check, on `index`'s device, without
    waiting for it."""
    defer(index, lambda a: ((a < low) | (a >= high)).any(), message, IndexError)


def defer(array: Any, is_bad: Callable[[Any], Any], message: str,
          error: type = RuntimeError) -> None:
    """Raise `error(message)` at the next host read if `is_bad(array)`, a 0-d device bool
    computed on `array`'s device, is set; records the check without waiting for it."""
    cp = _cupy()
    device_id = array.device.id
    code = _codes.get((error, message))
    if code is None:
        _checks.append((error, message))
        code = _codes[error, message] = len(_checks)
    with cp.cuda.Device(device_id):
        word = prepare(device_id)
        # NOTE: keeps the first failure's code: later ones only write where the word is 0
        cp.copyto(word, np.int32(code), where=(word == 0) & is_bad(array))
    _dirty.add(device_id)


def prepare(device_id: int) -> Any:
    """The error word of `device_id`, made (zeroed, from the default pool) on first use;
    `compile_step` asks before a capture, so no captured graph makes or zeroes it."""
    if device_id not in _words:
        cp = _cupy()
        with cp.cuda.Device(device_id):
            _words[device_id] = cp.zeros((), np.int32)
    return _words[device_id]


def raise_pending(device_id: int | None = None) -> None:
    """Raise the first failed deferred check on `device_id` (default: every device that ran
    one since the last read), clearing it. Call only where the host waits for the GPU."""
    for index in ([device_id] if device_id is not None else sorted(_dirty)):
        if index not in _dirty:
            continue
        _dirty.discard(index)
        word = _words[index]
        code = int(word.get())
        if code:
            with _cupy().cuda.Device(index):
                word.fill(0)
            error, message = _checks[code - 1]
            raise error(f"{message} (found on the GPU by a check that ran without stopping "
                        "the host; results computed since that op are not to be trusted)")


def replayed(device_id: int) -> None:
    """A captured graph ran on `device_id`: its checks may have set the word."""
    if device_id in _words:
        _dirty.add(device_id)


def _cupy():
    from ..backend import cupy_module
    return cupy_module()
