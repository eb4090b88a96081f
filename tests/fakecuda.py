"""The `fake_cuda` fixture: gradflow's real GPU code path on the CPU, with tests/fakecupy.py
installed as `cupy` and gradflow's kernels and GEMMs run by the kernel emulator.

Each launch first goes through `fakecupy.kernel_arguments`, which holds it to CuPy's rules
(every array on the current device, no host arrays) and logs it, then hands the NumPy arrays
to the emulator. cuBLAS is the one library gradflow calls itself: `blas.library()` (cuBLAS
through ctypes) is `FakeCublas`, which takes gradflow's real ctypes arguments, so handles,
workspaces, stream binding and every GEMM's pointers, leading dimensions and strides are
exercised as on a GPU.
"""
from __future__ import annotations

import ctypes
import itertools
import sys
import weakref

import emulator
import fakecupy
import numpy as np
import pytest
from emulator import cublas

from gradflow import backend, dtypes
from gradflow.cuda import blas, checks, compiler, graphs, memory, optim, random

# Whether launches run (the emulator computes) or are only checked and logged: a test of what
# the host does around the kernels (syncs, copies, devices) needs no values, and the
# emulator's speed allows only small nets.
RUN = {"kernels": True}


class CheckedKernel:
    """An emulated kernel that launches as CuPy would on the current device."""

    def __init__(self, kernel, name: str) -> None:
        self.kernel, self.name = kernel, name

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        inner = fakecupy.kernel_arguments(self.name, args)
        if RUN["kernels"]:
            self.kernel(grid, block, inner, shared_mem)
        else:
            self.kernel.check(grid, block, inner)


class CheckedModule:
    """kernels/<family>.cu, emulated, as `compiler.load_module` returns it."""

    def __init__(self, family: str) -> None:
        self.family, self.module = family, emulator.load(family)

    def get_function(self, name: str) -> CheckedKernel:
        return CheckedKernel(self.module.get_function(name), f"{self.family}.{name}")


class FakeCublas:
    """libcublas as `blas.library()` binds it, fed the very arguments gradflow's ctypes call
    passes: a GEMM reads its operands from the raw device pointers, leading dimensions and
    batch strides (cuBLAS's reading, tests/emulator/cublas.py), on the stream its handle was
    last bound to, which must be the current one; `streams` keeps handle -> stream ptr."""

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

    def cublasSgemmStridedBatched(self, *args) -> int:  # noqa: N802
        return self._gemm(np.float32, np.float32, *args)

    def cublasDgemmStridedBatched(self, *args) -> int:  # noqa: N802
        return self._gemm(np.float64, np.float64, *args)

    def cublasGemmStridedBatchedEx(  # noqa: N802
            self, handle, op_a, op_b, m, n, k, alpha, a, type_a, lda, stride_a, b, type_b, ldb,
            stride_b, beta, c, type_c, ldc, stride_c, batch, compute, algo) -> int:
        """The 16-bit GEMM: CUDA_R_16F (2) or CUDA_R_16BF (14) operands, float32 compute
        (CUBLAS_COMPUTE_32F, 68) with float32 scales, the tensor-core default algorithm (99)."""
        dtype = {2: dtypes.float16, 14: dtypes.bfloat16}[type_c]
        assert type_a == type_b == type_c and (compute, algo) == (68, 99), (type_a, compute)
        return self._gemm(dtype, np.float32, handle, op_a, op_b, m, n, k, alpha, a, lda,
                          stride_a, b, ldb, stride_b, beta, c, ldc, stride_c, batch)

    def __getattr__(self, name: str):
        if "gemm" in name.lower():  # a product the fake cannot compute must not pass silently
            raise AttributeError(f"the fake cuBLAS has no {name}")
        return lambda *args: 0

    def _gemm(self, dtype, scale_dtype, handle, op_a, op_b, m, n, k, alpha, a, lda, stride_a,
              b, ldb, stride_b, beta, c, ldc, stride_c, batch) -> int:
        bound = self.streams.get(handle)
        current = fakecupy.get_current_stream().ptr
        if bound != current:
            raise AssertionError(f"cuBLAS GEMM on stream {bound} while the current stream is "
                                 f"{current}: the handle was not bound before the call")
        size = np.dtype(scale_dtype).itemsize
        scale = [np.frombuffer(ctypes.string_at(p, size), scale_dtype)[0] for p in (alpha, beta)]
        assert scale == [1, 0] and ldc == m and stride_c == m * n, (scale, ldc, stride_c)
        operands = [fakecupy.device_view(ptr, dtype) for ptr in (a, b, c)]
        fakecupy.kernel_arguments("cublas.gemm_strided_batched", operands)
        gemm = blas.Gemm(m=m, n=n, k=k, batch=batch, out_shape=(batch * m * n,),
                         a=blas.Operand(operands[0]._a, op_a, lda, stride_a),
                         b=blas.Operand(operands[1]._a, op_b, ldb, stride_b))
        if RUN["kernels"]:
            cublas.gemm_strided_batched(gemm, operands[2]._a[:batch * m * n])
        return 0


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
    library = FakeCublas()
    monkeypatch.setattr(blas, "library", lambda: library, raising=False)
    monkeypatch.setattr(fakecupy, "cublas_library", library, raising=False)
    for module, name, fresh in ((blas, "_handles", {}), (memory, "_tracker", None),
                                (memory, "_private", weakref.WeakSet()),
                                (random, "_eager_states", {}), (optim, "_in_flight", {}),
                                (graphs, "_local", type(graphs._local)()),
                                # the error words belong to the previous fake GPUs: a check a
                                # test left unread would make the next sync a device read
                                (checks, "_words", {}), (checks, "_dirty", set())):
        monkeypatch.setattr(module, name, fresh, raising=False)
    yield fakecupy
    _clear_caches()
    _modules.clear()
    RUN["kernels"] = True


@pytest.fixture
def fake_cuda_launch_only(fake_cuda):
    """`fake_cuda` with every kernel and GEMM checked and logged but not run: for tests of
    what the host does around them, on nets too big for the emulator (values are garbage)."""
    RUN["kernels"] = False
    with np.errstate(all="ignore"):  # CuPy's ops compute on the kernels' unwritten outputs
        yield fake_cuda

