"""The CUDA libraries gradflow's GPU path needs beside the driver, found the way CuPy finds
them, and a plain-words reason when one is missing.

CuPy 14's wheels bring none of NVRTC (which compiles kernels/*.cu), cuBLAS (every matrix
product) or the CUDA runtime library: on a machine with only the driver they come from the
NVIDIA wheels that gradflow's `cuda12`/`cuda13` extras install, or from a CUDA toolkit.
`cuda.pathfinder` (a CuPy dependency) searches those places; without it the loader's own
search path is tried.
"""
from __future__ import annotations

import ctypes
import functools
from typing import Any

# The libraries the GPU path loads, with what each is for (said when one is missing).
NEEDED = {"nvrtc": "compiles gradflow's kernels", "cublas": "runs every matrix product",
          "cudart": "the CUDA runtime library CuPy loads"}


def cuda_major(cp: Any) -> int:
    """The CUDA major version CuPy was built for (12 or 13)."""
    return cp.cuda.runtime.runtimeGetVersion() // 1000


@functools.lru_cache(maxsize=None)
def load(name: str, major: int) -> ctypes.CDLL:
    """The shared library `name` ('cublas', 'nvrtc', 'cudart') of CUDA `major`, as a CDLL.

    Raises OSError naming what was searched when it cannot be loaded."""
    try:
        from cuda import pathfinder
    except ImportError:
        pathfinder = None
    if pathfinder is not None:
        try:
            return ctypes.CDLL(pathfinder.load_nvidia_dynamic_lib(name).abs_path)
        except Exception as err:  # not found by pathfinder: try the loader's own search
            found_by_pathfinder = str(err)
    else:
        found_by_pathfinder = "cuda.pathfinder is not installed"
    soname = f"lib{name}.so.{major}"
    try:
        return ctypes.CDLL(soname)
    except OSError as err:
        raise OSError(f"{soname} could not be loaded ({err}; {found_by_pathfinder})") from None


def missing(cp: Any) -> str | None:
    """Why the libraries the GPU path needs cannot be loaded, or None when they all can."""
    extra = "cuda13" if cuda_major(cp) >= 13 else "cuda12"
    problems = []
    for name, role in NEEDED.items():
        try:
            load(name, cuda_major(cp))
        except OSError as err:
            problems.append(f"{name} ({role}): {err}")
    if not problems:
        return None
    return ("the CUDA libraries gradflow needs are missing: " + "; ".join(problems)
            + f". Install them with pip install 'gradflow[{extra}]' (NVIDIA's wheels), or "
            "install the CUDA toolkit and put its lib64 folder on LD_LIBRARY_PATH")
