"""Matrix products on the GPU through cuBLAS's C API, with NumPy's matmul semantics. This
module only launches: `gradflow.ops.matmul.matmul_arrays` decides which products come here.

Why not CuPy's matmul, nor even CuPy's low-level cuBLAS bindings: every one of them first
calls CuPy's setStream, which raises NotImplementedError while the stream captures a CUDA
graph (cupy_backends/cuda/libs/cublas.pyx; cupy/cupy#6290), and a captured training step
(`gradflow.cuda.graphs`) needs every product of the step. So gradflow calls cuBLAS's C API
itself through ctypes, on its own handle per device, binding the current stream before each
call and giving the handle a workspace made before any capture, so cuBLAS allocates nothing
while capturing. Eager steps use the same call, so a replayed graph runs exactly the products
an eager step runs.

cuBLAS is column-major. A row-major (r, c) matrix with row stride s is, read column-major,
its transpose with leading dimension s; a column-major one (a transposed view) is itself. So
the row-major C = A B is computed as the column-major C^T = B^T A^T, each operand passed as
it lies in memory with the transpose flag that makes it B^T or A^T: no operand is copied
unless its last two axes are neither layout or its batch axes cannot share one stride.

`plan` does the layout work on shapes and strides alone; the CPU suite checks every plan
against NumPy by reading memory exactly as cuBLAS would (tests/test_blas.py).

Precision: float64 runs cublasDgemmStridedBatched; float32 cublasSgemmStridedBatched, on TF32
tensor cores when the handle's math mode allows it (`gradflow.cuda.precision`: CUPY_TF32,
`set_float32_matmul_precision`); float16 and bfloat16 run cublasGemmStridedBatchedEx with
16-bit inputs and output, CUBLAS_COMPUTE_32F (float32 accumulation, float32 alpha and beta)
and CUBLAS_GEMM_DEFAULT_TENSOR_OP, as torch's half/bfloat16 GEMMs do. The TF32 math mode
only concerns float32 inputs, so the 16-bit products are the same with or without it; like
torch's defaults (allow_fp16/bf16_reduced_precision_reduction), cuBLAS may reduce split-K
partial sums in the output type.
"""
from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from ..backend import array_module, cupy_module
from . import libraries

OP_N, OP_T = 0, 1  # cublasOperation_t
_DEFAULT_MATH, _TF32_MATH = 0, 3  # cublasMath_t
_handles: dict = {}
_SCALARS = {np.dtype(t): (np.ones(1, t), np.zeros(1, t)) for t in (np.float32, np.float64)}
LOW_PRECISION = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
# cudaDataType_t of the 16-bit inputs and outputs (library_types.h), cublasComputeType_t and
# cublasGemmAlgo_t (cublas_api.h) of their products
_CUDA_R_16F, _CUDA_R_16BF = 2, 14
_DATA_TYPES = {LOW_PRECISION[0]: _CUDA_R_16F, LOW_PRECISION[1]: _CUDA_R_16BF}
_COMPUTE_32F = 68
_GEMM_DEFAULT_TENSOR_OP = 99


@dataclass(frozen=True)
class Operand:
    """One matrix operand as cuBLAS reads it: `array`'s first element, transposed or not,
    with leading dimension `ld` and `batch_stride` elements between batch items."""
    array: Any
    op: int
    ld: int
    batch_stride: int


@dataclass(frozen=True)
class Gemm:
    """Column-major C (m x n, leading dimension m) = op(a) (m x k) op(b) (k x n), `batch`
    times; C is the row-major product out_shape."""
    m: int
    n: int
    k: int
    batch: int
    a: Operand
    b: Operand
    out_shape: tuple


def matmul(a: Any, b: Any) -> Any:
    """a @ b by cuBLAS, for CuPy arrays of one float32/float64/float16/bfloat16 dtype
    (NumPy's matmul rules, 1-D operands included); `gradflow.ops.matmul.matmul_arrays` sends
    the others elsewhere."""
    xp = array_module(a)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a2.size and b2.size:
        gemm = plan(a2, b2, xp)
        out = xp.empty(gemm.out_shape, a.dtype)
        _run(gemm, out)
    else:  # nothing to read: an empty product, or sums over k = 0 terms
        out = xp.zeros(_product_shape(a2.shape, b2.shape), a.dtype)
    if b.ndim == 1:
        out = out[..., 0]
    if a.ndim == 1:
        out = out[..., 0, :] if b.ndim > 1 else out[..., 0]
    return out


def plan(a: Any, b: Any, xp: Any) -> Gemm:
    """The cuBLAS call for row-major a @ b (both at least 2-D, one dtype), copying an operand
    (with `xp`) only when its layout has no cuBLAS form."""
    *batch, m, n = _product_shape(a.shape, b.shape)
    batch_shape, k = tuple(batch), a.shape[-1]
    right = _operand(b, batch_shape, xp)  # B^T is cuBLAS's first operand
    left = _operand(a, batch_shape, xp)
    return Gemm(m=n, n=m, k=k, batch=math.prod(batch_shape), a=right, b=left,
                out_shape=batch_shape + (m, n))


def _product_shape(ashape: tuple, bshape: tuple) -> tuple:
    """The shape of a @ b for operands of at least two axes."""
    if ashape[-1] != bshape[-2]:
        raise ValueError(f"matmul: shapes {tuple(ashape)} and {tuple(bshape)} cannot be "
                         f"multiplied ({ashape[-1]} != {bshape[-2]})")
    return tuple(np.broadcast_shapes(ashape[:-2], bshape[:-2])) + (ashape[-2], bshape[-1])


def _operand(x: Any, batch_shape: tuple, xp: Any) -> Operand:
    """x (..., r, c) as cuBLAS's view of x^T: (c x r) column-major."""
    layout = _matrix_layout(x)
    batch_stride = _batch_stride(x, batch_shape)
    if layout is None or batch_stride is None:
        x = xp.ascontiguousarray(xp.broadcast_to(x, batch_shape + x.shape[-2:]))
        layout, batch_stride = _matrix_layout(x), _batch_stride(x, batch_shape)
        # a C-contiguous, non-empty copy is row-major with evenly spaced batch items
        assert layout is not None and batch_stride is not None
    op, ld = layout
    return Operand(array=x, op=op, ld=ld, batch_stride=batch_stride)


def _matrix_layout(x: Any) -> tuple | None:
    """(op, ld) that reads the last two axes of x as x^T, or None when they are neither
    row-major nor column-major with a usable leading dimension."""
    r, c = x.shape[-2:]
    sr, sc = (s // x.itemsize if s % x.itemsize == 0 else -1 for s in x.strides[-2:])
    if c == 1:
        sc = 1  # a single column: its stride is never used
    if r == 1:
        sr = max(c, 1)  # a single row: likewise
    if sc == 1 and sr >= max(c, 1):
        return OP_N, sr
    if r == 1 or c == 1:
        return None
    if sr == 1 and sc >= r:
        return OP_T, sc
    return None


def _batch_stride(x: Any, batch_shape: tuple) -> int | None:
    """One stride, in elements, that steps x through the flattened batch (0 when x is shared
    by every batch item), or None when its batch axes need more than one."""
    own = x.shape[:-2]
    strides = (0,) * (len(batch_shape) - len(own)) + tuple(
        s // x.itemsize if size > 1 else 0 for size, s in zip(own, x.strides[:-2]))
    if any(s < 0 for s in strides) or any(s % x.itemsize for s in x.strides[:-2]):
        return None
    axes = [(size, s) for size, s in zip(batch_shape, strides) if size > 1]
    if not axes:
        return 0
    step = axes[-1][1]
    for (size, s), (inner_size, inner) in zip(axes[:-1], axes[1:]):
        if s != inner * inner_size:
            return None
    return step


# The cuBLAS C functions gradflow calls, with their C prototypes (cublas_api.h).
_HANDLE, _INT, _PTR = ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p
_GEMM_ARGS = [_HANDLE, _INT, _INT, _INT, _INT, _INT, _PTR, _PTR, _INT, ctypes.c_longlong,
              _PTR, _INT, ctypes.c_longlong, _PTR, _PTR, _INT, ctypes.c_longlong, _INT]
# cublasGemmStridedBatchedEx: handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA,
# B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo
_GEMM_EX_ARGS = [_HANDLE, _INT, _INT, _INT, _INT, _INT, _PTR, _PTR, _INT, _INT,
                 ctypes.c_longlong, _PTR, _INT, _INT, ctypes.c_longlong, _PTR, _PTR, _INT, _INT,
                 ctypes.c_longlong, _INT, _INT, _INT]
PROTOTYPES = {
    "cublasCreate_v2": (_INT, [ctypes.POINTER(_HANDLE)]),
    "cublasDestroy_v2": (_INT, [_HANDLE]),
    "cublasSetStream_v2": (_INT, [_HANDLE, _PTR]),
    "cublasSetWorkspace_v2": (_INT, [_HANDLE, _PTR, ctypes.c_size_t]),
    "cublasSetMathMode": (_INT, [_HANDLE, _INT]),
    "cublasSetPointerMode_v2": (_INT, [_HANDLE, _INT]),
    "cublasSgemmStridedBatched": (_INT, _GEMM_ARGS),
    "cublasDgemmStridedBatched": (_INT, _GEMM_ARGS),
    "cublasGemmStridedBatchedEx": (_INT, _GEMM_EX_ARGS),
    "cublasGetStatusString": (ctypes.c_char_p, [_INT]),
}
_GEMMS = {np.dtype(np.float32): "cublasSgemmStridedBatched",
          np.dtype(np.float64): "cublasDgemmStridedBatched"}
_POINTER_MODE_HOST = 0  # cublasPointerMode_t: alpha and beta are read from host memory
# NOTE: cuBLAS's recommended workspace on Hopper is 32 MiB; given one before any capture, it
# allocates nothing while a stream captures (the CUDA graphs section of its docs).
WORKSPACE_BYTES = 32 * 2**20
_INT_MAX = 2**31 - 1


def library() -> ctypes.CDLL:
    """cuBLAS's shared library, as CuPy's CUDA version finds it, with every function of
    PROTOTYPES bound to its C prototype; raises naming a missing one."""
    cp = cupy_module()
    lib = libraries.load("cublas", libraries.cuda_major(cp))
    if not getattr(lib, "_gradflow_bound", False):
        for name, (restype, argtypes) in PROTOTYPES.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                raise RuntimeError(f"cuBLAS: the library {lib._name} has no {name}; gradflow "
                                   "needs cuBLAS 11 or newer") from None
            fn.restype, fn.argtypes = restype, argtypes
        lib._gradflow_bound = True  # type: ignore[attr-defined]  # a marker on the loaded CDLL
    return lib


def _check(lib: ctypes.CDLL, name: str, status: int) -> None:
    if status:
        text = lib.cublasGetStatusString(status).decode(errors="replace")
        raise RuntimeError(f"cuBLAS {name} failed with status {status} ({text})")


class _Handle:
    """gradflow's cuBLAS handle on one device, with the workspace it was given and the stream
    it was last bound to."""

    def __init__(self, lib: ctypes.CDLL, cp: Any) -> None:
        raw = ctypes.c_void_p()
        _check(lib, "cublasCreate_v2", lib.cublasCreate_v2(ctypes.byref(raw)))
        self.ptr = raw.value
        tf32 = os.environ.get("CUPY_TF32", "0") not in ("", "0")
        _check(lib, "cublasSetMathMode",
               lib.cublasSetMathMode(self.ptr, _TF32_MATH if tf32 else _DEFAULT_MATH))
        _check(lib, "cublasSetPointerMode_v2",
               lib.cublasSetPointerMode_v2(self.ptr, _POINTER_MODE_HOST))
        self.workspace = cp.cuda.alloc(WORKSPACE_BYTES)
        _check(lib, "cublasSetWorkspace_v2",
               lib.cublasSetWorkspace_v2(self.ptr, self.workspace.ptr, WORKSPACE_BYTES))
        self.stream: int | None = None

    def bind(self, lib: ctypes.CDLL, stream: int) -> None:
        """Issue the next calls on `stream` (the current one: eager or capturing alike)."""
        if stream != self.stream:
            _check(lib, "cublasSetStream_v2", lib.cublasSetStream_v2(self.ptr, stream))
            self.stream = stream


def handle() -> _Handle:
    """gradflow's cuBLAS handle on the current device, made on first use with its workspace
    (before any capture: `graphs` runs eager warm-up steps first). CUPY_TF32=1 allows TF32
    tensor cores for float32, the switch CuPy itself reads."""
    cp = cupy_module()
    device_id = cp.cuda.Device().id
    if device_id not in _handles:
        _handles[device_id] = _Handle(library(), cp)
    return _handles[device_id]


def _run(gemm: Gemm, out: Any) -> None:
    """The one cuBLAS call of every product, on the current device and stream."""
    if max(gemm.m, gemm.n, gemm.k, gemm.a.ld, gemm.b.ld, gemm.batch) > _INT_MAX:
        raise RuntimeError(f"matmul: a product of {gemm.batch} ({gemm.m} x {gemm.k}) @ "
                           f"({gemm.k} x {gemm.n}) matrices exceeds cuBLAS's 32-bit sizes")
    cp = cupy_module()
    lib, h = library(), handle()
    h.bind(lib, cp.cuda.get_current_stream().ptr)
    a, b = gemm.a, gemm.b
    kind = _DATA_TYPES.get(np.dtype(out.dtype))
    if kind is not None:  # 16-bit in and out, float32 compute and scalars
        one, zero = _SCALARS[np.dtype(np.float32)]
        name = "cublasGemmStridedBatchedEx"
        status = lib.cublasGemmStridedBatchedEx(
            h.ptr, a.op, b.op, gemm.m, gemm.n, gemm.k, one.ctypes.data, a.array.data.ptr, kind,
            a.ld, a.batch_stride, b.array.data.ptr, kind, b.ld, b.batch_stride,
            zero.ctypes.data, out.data.ptr, kind, gemm.m, gemm.m * gemm.n, gemm.batch,
            _COMPUTE_32F, _GEMM_DEFAULT_TENSOR_OP)
        _check(lib, name, status)
        return
    one, zero = _SCALARS[np.dtype(out.dtype)]
    name = _GEMMS[np.dtype(out.dtype)]
    status = getattr(lib, name)(
        h.ptr, a.op, b.op, gemm.m, gemm.n, gemm.k, one.ctypes.data, a.array.data.ptr, a.ld,
        a.batch_stride, b.array.data.ptr, b.ld, b.batch_stride, zero.ctypes.data, out.data.ptr,
        gemm.m, gemm.m * gemm.n, gemm.batch)
    _check(lib, name, status)
