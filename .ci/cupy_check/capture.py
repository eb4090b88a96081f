"""Check 4: no CuPy API that refuses stream capture is reachable from a captured step.

CuPy's cuBLAS/cuRAND/cuSOLVER/cuSPARSE `setStream` and its synchronous copies ask the
runtime whether the stream is capturing and raise (NotImplementedError 'calling cuBLAS API
during stream capture is currently unsupported', RuntimeError 'the current stream is
capturing ...'). The stand-in runtime (`nodriver`) answers "capturing" for a stand-in
cupy.cuda.ExternalStream, so those checks fire here as on a GPU; a trace function notes every
such exception raised into a Python frame, even one gradflow then catches. The captured code
is gradflow.cuda.blas.matmul on several layouts, with gradflow's own cuBLAS library replaced
by a recorder, since cuBLAS cannot run without a GPU.
"""
from __future__ import annotations

import sys
import warnings

import ml_dtypes
import numpy as np

from . import Report, nodriver

STREAM = 0x5EE0000  # the stand-in capturing stream's pointer
HANDLE = 0xC0B1A5


class RecordingCublas:
    """Stands in for `blas.library()`: each PROTOTYPES function records its call and returns
    CUBLAS_STATUS_SUCCESS; cublasCreate_v2 writes a made-up handle."""

    def __init__(self, prototypes: dict) -> None:
        self.prototypes, self.calls, self.stream = prototypes, [], None

    def __getattr__(self, name: str):
        if name not in self.__dict__.get("prototypes", {}):
            raise AttributeError(f"{name} is not in blas.PROTOTYPES")

        def call(*args):
            if name == "cublasSetStream_v2":
                self.stream = getattr(args[1], "value", args[1])
            self.calls.append((name, self.stream))
            if name == "cublasCreate_v2" and args:
                target = getattr(args[0], "_obj", None)  # ctypes.byref(c_void_p())
                (args[0].contents if target is None else target).value = HANDLE
            return b"" if name == "cublasGetStatusString" else 0
        return call


def _refusals():
    """A trace function collecting capture refusals raised into Python frames."""
    seen = []

    def trace(frame, event, arg):
        if event == "exception":
            kind, err, _ = arg
            if issubclass(kind, (NotImplementedError, RuntimeError)) and "captur" in str(err):
                where = f"{frame.f_code.co_filename.rsplit('/', 3)[-1]}:{frame.f_lineno}"
                if not any(w == where for w, _ in seen):
                    seen.append((where, f"{kind.__name__}: {err}"))
        return trace
    return seen, trace


def _cases(cp, dt):
    a = cp.empty((3, 4), dt)
    yield "(3,4) @ (4,5)", a, cp.empty((4, 5), dt)
    yield "(3,4) @ (5,4).T", a, cp.empty((5, 4), dt).T
    yield "(4,3).T @ (4,5)", cp.empty((4, 3), dt).T, cp.empty((4, 5), dt)
    yield "(2,3,4) @ (2,4,5)", cp.empty((2, 3, 4), dt), cp.empty((2, 4, 5), dt)
    yield "(3,4) @ (6,4,5) broadcast", a, cp.empty((6, 4, 5), dt)
    yield "(4,) @ (4,5)", cp.empty(4, dt), cp.empty((4, 5), dt)
    yield "(3,4) @ (4,)", a, cp.empty(4, dt)
    yield "(3,8)[:, ::2] @ (4,5) copied", cp.empty((3, 8), dt)[:, ::2], cp.empty((4, 5), dt)
    yield "(3,0) @ (0,5) empty", cp.empty((3, 0), dt), cp.empty((0, 5), dt)


def _self_test(report: Report) -> bool:
    from cupy_backends.cuda.libs import cublas
    with nodriver.capture(STREAM):
        try:
            cublas.setStream(0, STREAM)
        except NotImplementedError as err:
            report.ok(f"stand-in capture status reaches cupy_backends cublas.setStream "
                      f"({err})")
            return True
    report.fail("cublas.setStream did not refuse the stand-in capturing stream: the capture "
                "check would prove nothing")
    return False


def check(report: Report) -> None:
    import cupy

    from gradflow.cuda import blas
    if not _self_test(report):
        return
    prototypes = getattr(blas, "PROTOTYPES", {})
    recorder = RecordingCublas(prototypes)
    real_library = getattr(blas, "library", None)
    blas.library = lambda: recorder
    try:
        try:
            blas.handle()  # made before any capture, as gradflow.cuda.graphs' warm-up does
        except Exception as err:  # noqa: BLE001
            report.fail(f"blas.handle() outside capture raised {type(err).__name__}: {err}")
        with warnings.catch_warnings():  # deprecated in 14 for Stream.from_external
            warnings.simplefilter("ignore", DeprecationWarning)
            stream = cupy.cuda.ExternalStream(STREAM, 0)
        for dt in (np.float32, np.float64, np.float16, ml_dtypes.bfloat16):
            for label, a, b in _cases(cupy, dt):
                _captured_matmul(f"matmul[{np.dtype(dt).name}] {label}", blas, stream,
                                 recorder, a, b, report)
    finally:
        if real_library is None:
            del blas.library
        else:
            blas.library = real_library


def _captured_matmul(label, blas, stream, recorder, a, b, report) -> None:
    seen, trace = _refusals()
    recorder.calls.clear()
    queries = nodriver.record.capture_queries
    error = None
    with stream, nodriver.capture(STREAM):
        sys.settrace(trace)
        try:
            blas.matmul(a, b)
        except Exception as err:  # noqa: BLE001
            error = err
        finally:
            sys.settrace(None)
    if seen:  # the innermost Python frame it was raised into; callers' frames see it too
        where, what = seen[0]
        report.fail(f"{label}: a CuPy API refused capture at {where}: {what}")
    if error is not None and not seen:
        report.fail(f"{label}: raised {type(error).__name__}: {error}")
    if seen or error is not None:
        return
    calls = [name for name, _ in recorder.calls]
    for name, stream in recorder.calls:  # the stream the handle was bound to at each call
        if "gemm" in name.lower() and stream != STREAM:
            report.fail(f"{label}: {name} ran on stream {stream}, not the capturing stream "
                        f"{STREAM:#x}: it would not be captured")
            return
    report.ok(f"{label}: {', '.join(calls) or 'no cuBLAS call'}; capture queries "
              f"{nodriver.record.capture_queries - queries}")
