"""Out of GPU memory, said in gradflow's terms (torch.cuda.OutOfMemoryError).

CuPy's error names only the bytes it could not get. Ops catch it (`Function.apply` for
forwards, the engine for backwards) and raise `OutOfMemoryError` naming the op, the request,
the pool's state and what to try, after returning the pool's cached blocks to the device so
that a smaller next step can still run. CuPy is looked up only when an error is on its way.
"""
from __future__ import annotations

import re

from ..backend import cupy_module
from . import memory

_REQUEST = re.compile(r"allocating ([\d,]+) bytes")


class OutOfMemoryError(RuntimeError):
    """A GPU allocation failed inside an op; `op`, `requested_bytes` (None when CuPy did not
    say), and the pool's `used_bytes` and `held_bytes` when it failed are kept as fields."""

    def __init__(self, op: str, requested_bytes: int | None, used_bytes: int, held_bytes: int,
                 detail: str) -> None:
        asked = ("an unknown number of bytes" if requested_bytes is None
                 else _size(requested_bytes))
        super().__init__(
            f"{op}: CUDA out of memory: tried to allocate {asked}; the memory pool had "
            f"{_size(used_bytes)} in use and held {_size(held_bytes)} from the device. Its "
            "cached blocks have been freed. Try a smaller batch size, drop references to "
            "tensors you no longer need, or call gf.cuda.empty_cache() between steps. "
            f"(CuPy: {detail})")
        self.op = op
        self.requested_bytes = requested_bytes
        self.used_bytes = used_bytes
        self.held_bytes = held_bytes
        self._detail = detail

    def __reduce__(self):
        # NOTE: pickled from a worker process, the error is rebuilt from its fields, not args
        return type(self), (self.op, self.requested_bytes, self.used_bytes, self.held_bytes,
                            self._detail)


_MEMORY_ALLOCATION = 2  # cudaErrorMemoryAllocation: a raw cudaMalloc (no pool) failed


def error_types() -> tuple:
    """The exception types that can mean the GPU is out of memory: CuPy's pool error, and
    CUDA runtime errors (a raw cudaMalloc when the pool is switched off); none without CuPy.
    `out_of_memory` tells which ones are."""
    cp = cupy_module()
    return () if cp is None else (cp.cuda.memory.OutOfMemoryError,
                                  cp.cuda.runtime.CUDARuntimeError)


def out_of_memory(op: str, err: BaseException) -> BaseException:
    """gradflow's error for CuPy's `err` raised in `op` when it means out of memory (the
    pools' cached blocks are freed first); any other CUDA error is returned as it is."""
    if getattr(err, "status", _MEMORY_ALLOCATION) != _MEMORY_ALLOCATION:
        return err
    found = _REQUEST.search(str(err))
    requested = int(found.group(1).replace(",", "")) if found else None
    used, held = memory.memory_allocated(), memory.memory_reserved()
    memory.empty_cache()
    return OutOfMemoryError(op, requested, used, held, str(err))


def _size(n: int) -> str:
    """Bytes with a binary unit for reading, and the exact count for grepping."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"
