"""The `fake_cuda` fixture: gradflow's real GPU code path on the CPU, with tests/fakecupy.py
installed as `cupy` and gradflow's kernels and GEMMs run by the kernel emulator.

Each launch first goes through `fakecupy.kernel_arguments`, which holds it to CuPy's rules
(every array on the current device, no host arrays) and logs it, then hands the NumPy arrays
to the emulator. cuBLAS is the one library call gradflow makes itself: `blas._run` (the single
place a GEMM is issued) is routed to the emulated GEMM, and `blas.library()` (cuBLAS through
ctypes) to `FakeCublas`, so handles and workspaces are made as on a GPU.
"""
from __future__ import annotations

import dataclasses
import itertools
import sys
import weakref

import emulator
import fakecupy
import pytest
from emulator import cublas

from gradflow import backend
from gradflow.cuda import blas, compiler, graphs, memory, optim, random


class CheckedKernel:
    """An emulated kernel that launches as CuPy would on the current device."""

    def __init__(self, kernel, name: str) -> None:
        self.kernel, self.name = kernel, name

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        self.kernel(grid, block, fakecupy.kernel_arguments(self.name, args), shared_mem)


class CheckedModule:
    """kernels/<family>.cu, emulated, as `compiler.load_module` returns it."""

    def __init__(self, family: str) -> None:
        self.family, self.module = family, emulator.load(family)

    def get_function(self, name: str) -> CheckedKernel:
        return CheckedKernel(self.module.get_function(name), f"{self.family}.{name}")


class FakeCublas:
    """libcublas as `blas.library()` binds it: every call succeeds; the stream each handle is
    bound to is kept in `streams` (handle -> stream ptr). GEMMs never get here: `blas._run`
    is routed to the emulator."""

    _name, _gradflow_bound = "libcublas.so (fake)", True

    def __init__(self) -> None:
        self.streams: dict = {}
        self._handles = itertools.count(1)

    def cublasCreate_v2(self, handle) -> int:  # noqa: N802  (cuBLAS's names)
        handle._obj.value = next(self._handles)
        return 0

    def cublasSetStream_v2(self, handle, stream) -> int:  # noqa: N802
        self.streams[handle] = stream
        return 0

    def cublasGetStatusString(self, status) -> bytes:  # noqa: N802
        return b"fake cuBLAS status"

    def __getattr__(self, name: str):
        if "gemm" in name.lower():
            raise AttributeError(f"FakeCublas: {name} is issued through blas._run")
        return lambda *args: 0


def _emulated_gemm(gemm: blas.Gemm, out) -> None:
    """blas._run: check and log the GEMM like a kernel launch, then emulate cuBLAS's."""
    a, b, out = fakecupy.kernel_arguments("cublas.gemm_strided_batched",
                                          (gemm.a.array, gemm.b.array, out))
    gemm = dataclasses.replace(gemm, a=dataclasses.replace(gemm.a, array=a),
                               b=dataclasses.replace(gemm.b, array=b))
    cublas.gemm_strided_batched(gemm, out)


_modules: dict = {}  # (family, device id) -> CheckedModule


def _loaded(family: str) -> CheckedModule:
    """compiler.load_module: one module per family and current device, as on a GPU."""
    key = (family, fakecupy.getDevice())
    if key not in _modules:
        _modules[key] = CheckedModule(family)
    return _modules[key]


def _clear_caches() -> None:
    backend.cupy_module.cache_clear()
    compiler._compiled.cache_clear()
    compiler._function.cache_clear()


@pytest.fixture
def fake_cuda(monkeypatch):
    """tests/fakecupy.py as `cupy` with 2 fake GPUs (`fake_cuda.reset(n)` for others); yields
    the fake module, whose `count`/`events_of` read what gradflow did."""
    if emulator.compiler() is None:
        pytest.skip("no C++ compiler (g++): the kernel emulator cannot build")
    fakecupy.reset()
    monkeypatch.setitem(sys.modules, "cupy", fakecupy)
    monkeypatch.setitem(sys.modules, "cupyx", fakecupy.cupyx)
    _clear_caches()
    monkeypatch.setattr(backend, "_unavailable", {})
    monkeypatch.setattr("gradflow.cuda.libraries.missing", lambda cp: None, raising=False)
    monkeypatch.setattr(compiler, "load_module", _loaded)
    monkeypatch.setattr(blas, "_run", _emulated_gemm)
    library = FakeCublas()
    monkeypatch.setattr(blas, "library", lambda: library, raising=False)
    monkeypatch.setattr(fakecupy, "cublas_library", library, raising=False)
    for module, name, fresh in ((blas, "_handles", {}), (memory, "_tracker", None),
                                (memory, "_private", weakref.WeakSet()),
                                (random, "_eager_states", {}), (optim, "_in_flight", {}),
                                (graphs, "_local", type(graphs._local)())):
        monkeypatch.setattr(module, name, fresh, raising=False)
    yield fakecupy
    _clear_caches()
    _modules.clear()

