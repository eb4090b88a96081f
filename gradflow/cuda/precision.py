"""The float32 matrix-product precision (torch.set_float32_matmul_precision): 'highest' keeps
float32 GEMMs in full float32; 'high' and 'medium' allow TF32 tensor cores (a 10-bit
mantissa on the inputs, float32 accumulation) on GPUs that have them (compute capability 8.0
and up). `gradflow.backends.cuda.matmul.allow_tf32` reads and writes the same setting.

The switch is CuPy's own, the CUPY_TF32 environment variable: gradflow's cuBLAS handles
(`blas.handle`) read it when they are made, and CuPy reads it at its first float32 product.
Setting the precision here writes the variable, sets the math mode of the handles already
made and makes CuPy read the variable again, so the change holds from the next product on.
Convolutions are GEMMs on the same handles (im2col), so they follow it too. A captured step
(`compile_step`) keeps the mode it was captured with.
"""
from __future__ import annotations

import importlib
import os

import numpy as np

from ..backend import cupy_module
from . import blas

PRECISIONS = ("highest", "high", "medium")
_chosen: str | None = None  # None: follow CUPY_TF32 as the process found it


def get_float32_matmul_precision() -> str:
    """'highest', or 'high'/'medium' when TF32 is allowed (torch's name and values)."""
    if _chosen is not None:
        return _chosen
    return "high" if tf32_allowed() else "highest"


def tf32_allowed() -> bool:
    return os.environ.get("CUPY_TF32", "0") not in ("", "0")


def set_float32_matmul_precision(precision: str) -> None:
    """Allow TF32 for float32 GEMMs ('high', 'medium') or not ('highest'). An unknown value
    raises ValueError (torch only warns and ignores it)."""
    global _chosen
    if precision not in PRECISIONS:
        raise ValueError(f"set_float32_matmul_precision: precision must be one of "
                         f"{', '.join(map(repr, PRECISIONS))}; got {precision!r}")
    _chosen = precision
    tf32 = precision != "highest"
    os.environ["CUPY_TF32"] = "1" if tf32 else "0"
    _apply(tf32)


def _apply(tf32: bool) -> None:
    """Make the GEMMs already set up follow the variable: gradflow's live cuBLAS handles, and
    CuPy's cached float32 compute type (reset to 'to be decided', so it reads CUPY_TF32
    again)."""
    if blas._handles:
        lib = blas.library()
        mode = blas._TF32_MATH if tf32 else blas._DEFAULT_MATH
        for handle in blas._handles.values():
            blas._check(lib, "cublasSetMathMode", lib.cublasSetMathMode(handle.ptr, mode))
    if cupy_module() is None:
        return
    try:
        linalg = importlib.import_module("cupy._core._routines_linalg")
    except ImportError:  # a CuPy without this private module (or a stand-in): nothing cached
        return
    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TBD)  # complex64 shares its slot
