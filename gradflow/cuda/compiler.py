"""Compile kernels/*.cu once per process and device through cupy.RawModule, and launch them.

A family's kernels are templates over the element type; each `.cu` file lists its explicit
instantiations (`template __global__ void im2col<float>(...)`), and those lines are the name
expressions the module is compiled with, so a kernel and its list cannot drift apart. CuPy
keeps the compiled binary in its on-disk cache, so later processes skip NVRTC.

Element types: float32, float64, float16 (`__half`) and bfloat16 (`__nv_bfloat16`,
`gradflow.dtypes.bfloat16`). The 16-bit kernels compute in float32 (`acc_dtype`); their
scalar arguments and per-channel or per-row float results are float32 arrays or scalars.
The types come from CUDA's cuda_fp16.h and cuda_bf16.h, which NVRTC finds through the -I
CuPy adds for the CUDA runtime headers (the nvidia-cuda-runtime wheel of the cuda13 extra,
nvidia/cu13/include, or a toolkit's include/) and which OPTIONS pre-include, so `source`
hands CuPy a file without #include lines (common.cuh includes them only for nvcc).

Set GRADFLOW_CUDA_DEBUG=1 (or call `set_debug(True)`) to synchronise after every launch and
name the kernel that faulted, at the cost of speed.
"""
from __future__ import annotations

import functools
import os
import re
from typing import Any

import numpy as np

from .. import dtypes
from ..backend import array_module, cupy_module
from ..kernels_path import kernel_dir
from . import graphs

# The element types the kernels are instantiated for, and their C names.
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
           dtypes.float16: "__half", dtypes.bfloat16: "__nv_bfloat16"}
LOW_PRECISION = (dtypes.float16, dtypes.bfloat16)  # computed in float32 by the kernels
THREADS = 256  # threads per block of the 1-D grid-stride kernels
MAX_BLOCKS = 65535 * 4  # grid-stride loops cover the rest
# NVRTC options every family is compiled with (CuPy adds its own, the include paths too)
OPTIONS = ("-std=c++17", "--pre-include=cuda_fp16.h", "--pre-include=cuda_bf16.h")
_INSTANTIATION = re.compile(r"^template __global__ void (\w+<[\w ,]+>)\(", re.MULTILINE)
_INCLUDE = re.compile(r'^#include "([\w.]+\.cuh)"$', re.MULTILINE)
_SYSTEM_INCLUDE = re.compile(r"^#include <(cuda_fp16|cuda_bf16)\.h>\n", re.MULTILINE)
_debug = os.environ.get("GRADFLOW_CUDA_DEBUG", "") not in ("", "0")


def set_debug(enabled: bool) -> None:
    """Synchronise and check for errors after every kernel launch (slow; for debugging)."""
    global _debug
    _debug = bool(enabled)


def name_expressions(source: str) -> list:
    """The kernels a `.cu` source instantiates, as `name<type>` strings."""
    return [" ".join(m.split()) for m in _INSTANTIATION.findall(source)]


def uses_kernels(array: Any) -> bool:
    """True when gradflow's own kernels handle ops on `array`: a CuPy array of a kernel
    dtype (float32, float64, float16, bfloat16). Other arrays take the array-module path.
    Each op family asks once, at its entry in gradflow/ops/ (the op decides the backend; no
    layer above asks); a family whose file instantiates fewer types also asks
    `instantiated`."""
    return array_module(array) is not np and array.dtype in C_TYPES


@functools.lru_cache(maxsize=None)
def _instantiated_types(family: str) -> frozenset:
    return frozenset(e.split("<", 1)[1].rstrip(">") for e in name_expressions(source(family)))


def instantiated(family: str, dtype: Any) -> bool:
    """Whether kernels/<family>.cu instantiates its kernels for `dtype` (read from its
    explicit instantiations, once per process)."""
    ctype = C_TYPES.get(np.dtype(dtype))
    return ctype is not None and ctype in _instantiated_types(family)


def acc_dtype(dtype: Any) -> np.dtype:
    """The dtype a kernel for elements of `dtype` computes in: float32 for float16 and
    bfloat16, `dtype` itself otherwise. Scalars passed by value and the float results the
    16-bit kernels keep at full precision (batch statistics, log-sum-exp) have this dtype."""
    dt = np.dtype(dtype)
    return dtypes.float32 if dt in LOW_PRECISION else dt


def source(family: str) -> str:
    """kernels/<family>.cu with its local `#include "x.cuh"` lines replaced by the headers'
    text, so CuPy's cache, keyed on the code, also notices a changed header. The CUDA
    headers common.cuh includes for nvcc are dropped: OPTIONS pre-include them."""
    folder = kernel_dir()
    code = _INCLUDE.sub(lambda m: (folder / m.group(1)).read_text().replace("#pragma once", ""),
                        (folder / f"{family}.cu").read_text())
    return _SYSTEM_INCLUDE.sub("", code)


@functools.lru_cache(maxsize=None)
def _compiled(family: str, device_id: int):
    code = source(family)
    cp = cupy_module()
    with cp.cuda.Device(device_id):
        return cp.RawModule(code=code, options=OPTIONS,
                            name_expressions=name_expressions(code))


def load_module(family: str) -> Any:
    """The compiled module of kernels/<family>.cu on the current device (compiled once)."""
    return _compiled(family, cupy_module().cuda.Device().id)


def kernel(family: str, name: str, dtype: Any) -> Any:
    """The kernel `name` of `family` for elements of `dtype`."""
    try:
        return _function(load_module(family), f"{name}<{C_TYPES[np.dtype(dtype)]}>")
    except Exception as err:  # noqa: BLE001  (CuPy's lookup error; the emulator's KeyError)
        if instantiated(family, dtype):
            raise
        raise TypeError(f"kernels/{family}.cu has no {name} for {np.dtype(dtype)}: the op's "
                        f"entry must check compiler.instantiated({family!r}, dtype)") from err


@functools.lru_cache(maxsize=None)
def _function(module: Any, expression: str) -> Any:
    """A compiled module's kernel, looked up once rather than on every launch."""
    return module.get_function(expression)


def blocks_for(n: int, threads: int = THREADS) -> int:
    """Blocks for a grid-stride loop over n items: one item per thread up to MAX_BLOCKS."""
    return max(1, min(-(-n // threads), MAX_BLOCKS))


def launch(family: str, name: str, dtype: Any, grid: int, block: int, args: tuple) -> None:
    """Launch a kernel on a 1-D grid; in debug mode wait for it and name it if it failed."""
    kernel(family, name, dtype)((grid,), (block,), args)
    if _debug and not graphs.capturing():  # a capturing stream cannot be synchronised
        _check(family, name)


def launch_loop(family: str, name: str, dtype: Any, n: int, args: tuple) -> None:
    """Launch a grid-stride kernel over n items."""
    if n > 0:
        launch(family, name, dtype, blocks_for(n), THREADS, args)


def _check(family: str, name: str) -> None:
    cp = cupy_module()
    try:
        cp.cuda.get_current_stream().synchronize()
    except cp.cuda.runtime.CUDARuntimeError as err:
        raise RuntimeError(f"CUDA kernel {family}.{name} failed: {err}") from err
