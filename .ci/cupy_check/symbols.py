"""Check 3: every cuBLAS C function gradflow.cuda.blas binds (`blas.PROTOTYPES`) is exported
by the libcublas that cuda.pathfinder loads, and `blas.library()` binds them all."""
from __future__ import annotations

import ctypes

from . import Report


def _cublas_path() -> str:
    from cuda.pathfinder import load_nvidia_dynamic_lib
    return load_nvidia_dynamic_lib("cublas").abs_path


def check(report: Report) -> None:
    from gradflow.cuda import blas
    prototypes = getattr(blas, "PROTOTYPES", None)
    if prototypes is None or not hasattr(blas, "library"):
        report.fail("gradflow.cuda.blas has no PROTOTYPES/library(): it does not bind "
                    "cuBLAS's C API itself")
        return
    check_prototypes(prototypes, blas.library, report)


def check_prototypes(prototypes: dict, library, report: Report) -> None:
    """Each name in `prototypes` must be a symbol of libcublas, and `library()` must return
    the library with each one bound to its (restype, argtypes)."""
    path = _cublas_path()
    cublas = ctypes.CDLL(path)
    if hasattr(cublas, "cublasNoSuchFunction_v2"):  # the lookup below must be able to fail
        report.fail(f"{path}: a made-up symbol resolves; the symbol check proves nothing")
        return
    for name in prototypes:
        if hasattr(cublas, name):
            report.ok(f"{name} in {path.rsplit('/', 1)[-1]}")
        else:
            report.fail(f"{name}: no such symbol in {path}")
    try:
        lib = library()
    except Exception as err:  # noqa: BLE001
        report.fail(f"blas.library() raised {type(err).__name__}: {err}")
        return
    for name, (restype, argtypes) in prototypes.items():
        fn = getattr(lib, name, None)
        if fn is None or fn.restype != restype or list(fn.argtypes or ()) != list(argtypes):
            report.fail(f"blas.library().{name} is not bound as PROTOTYPES says")
    print(f"  blas.library() -> {getattr(lib, '_name', lib)}")
