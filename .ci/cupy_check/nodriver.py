"""A stand-in CUDA runtime and driver under real CuPy, for a machine with no GPU.

CuPy's Cython modules call each other through C function pointers that each importer reads
from the exporter's `__pyx_capi__` capsules when it is imported, so patching
`cupy.cuda.runtime.getDevice` from Python reaches nothing. `install()` must run before
`import cupy`: it swaps the capsules of the few runtime and driver entry points that fail
without a driver for ctypes callbacks, so every CuPy module imported afterwards calls these:
device 0 of compute capability 9.0, memset and memcpy on host memory (all "device" memory
here is host memory, from `allocator`), no-op module loads and kernel launches that are
recorded, and a capture status that `capture` controls. NVRTC and everything else are real.
"""
from __future__ import annotations

import contextlib
import ctypes
from dataclasses import dataclass, field

import numpy as np

# cudaDeviceAttr values CuPy reads; others answer 0.
_ATTRIBUTES = {75: 9, 76: 0, 1: 1024, 2: 1024, 3: 64, 5: 2 ** 31 - 1, 6: 65535, 7: 65535,
               10: 32, 16: 132, 8: 49152, 97: 232448, 81: 65536}


@dataclass
class Record:
    """What the stand-in driver saw: loaded images, function lookups, launches, and the
    capture-status queries made while a capture was active."""
    images: list = field(default_factory=list)  # bytes given to cuModuleLoadData
    functions: dict = field(default_factory=dict)  # handle -> (module handle, name)
    launches: list = field(default_factory=list)  # (function name, grid, block)
    capturing: set = field(default_factory=set)  # stream pointers that are capturing
    capture_queries: int = 0
    events: int = 0


record = Record()
_keep: list = []  # callbacks, capsule names and host buffers that must outlive the process


def _none():
    # NOTE: a ctypes callback returning py_object None loses a reference to None each call
    # (CPython's callback code decrefs None once too often), so void entry points return 0.
    return 0


def _get_device(skip):
    return 0


def _device_attribute(attr, device, skip):
    return _ATTRIBUTES.get(attr, 0)


def _memset_async(ptr, value, size, stream, skip):
    ctypes.memset(ptr, value, size)
    return _none()


def _memcpy_async(dst, src, size, kind, stream, skip):
    ctypes.memmove(dst, src, size)
    return _none()


def _host_alloc(size, flags, skip):
    buffer = np.zeros(size + 64, np.uint8)
    _keep.append(buffer)
    return buffer.ctypes.data + (-buffer.ctypes.data % 64)


def _event_create(flags, skip):
    record.events += 1
    return 0x100000 + record.events


def _stream_is_capturing(stream, skip):
    if stream in record.capturing:
        record.capture_queries += 1
        return 1
    return 0


def _module_load_data(image, skip):
    record.images.append(bytes(image))
    return len(record.images)


def _module_get_function(module, name, skip):
    handle = 0x1000 + len(record.functions)
    record.functions[handle] = (module, name)
    return handle


def _launch_kernel(func, gx, gy, gz, bx, by, bz, shared, stream, params, extra, skip):
    record.launches.append((record.functions.get(func, (0, "?"))[1], (gx, gy, gz),
                            (bx, by, bz)))
    return _none()


_O, _I, _P, _U, _S = ctypes.py_object, ctypes.c_int, ctypes.c_ssize_t, ctypes.c_uint, \
    ctypes.c_size_t
# (module, entry point): (restype, argtypes, Python function); the argtypes follow each
# capsule's signature string, whose last `int` is Cython's __pyx_skip_dispatch.
_ENTRIES = {
    ("runtime", "getDevice"): (_I, (_I,), _get_device),
    ("runtime", "getDeviceCount"): (_I, (_I,), lambda skip: 1),
    ("runtime", "setDevice"): (_O, (_I, _I), lambda device, skip: _none()),
    ("runtime", "deviceGetAttribute"): (_I, (_I, _I, _I), _device_attribute),
    ("runtime", "_ensure_context"): (_O, (), _none),
    ("runtime", "memsetAsync"): (_O, (_P, _I, _S, _P, _I), _memset_async),
    ("runtime", "memcpyAsync"): (_O, (_P, _P, _S, _I, _P, _I), _memcpy_async),
    ("runtime", "streamIsCapturing"): (_I, (_P, _I), _stream_is_capturing),
    ("runtime", "hostAlloc"): (_P, (_S, _U, _I), _host_alloc),
    ("runtime", "freeHost"): (_O, (_P, _I), lambda ptr, skip: _none()),
    ("runtime", "eventCreateWithFlags"): (_P, (_U, _I), _event_create),
    ("runtime", "eventRecord"): (_O, (_P, _P, _I), lambda event, stream, skip: _none()),
    ("runtime", "eventDestroy"): (_O, (_P, _I), lambda event, skip: _none()),
    ("runtime", "eventQuery"): (_O, (_P, _I), lambda event, skip: _none()),  # done
    ("runtime", "pointerGetMemoryType"): (_I, (_P, _I), lambda ptr, skip: 0),  # unregistered
    ("driver", "moduleLoadData"): (_P, (_O, _I), _module_load_data),
    ("driver", "moduleGetFunction"): (_P, (_P, _O, _I), _module_get_function),
    ("driver", "moduleUnload"): (_O, (_P, _I), lambda module, skip: _none()),
    ("driver", "launchKernel"): (_O, (_P,) + (_U,) * 7 + (_P, _P, _P, _I), _launch_kernel),
}


def _capsule_name(capsule) -> bytes:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get_name(capsule)


def install() -> None:
    """Swap the capsules; must run before anything imports cupy."""
    import sys
    if "cupy" in sys.modules:
        raise RuntimeError("nodriver.install() must run before cupy is imported")
    from cupy_backends.cuda.api import driver, runtime
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p,
                                                   ctypes.c_void_p]
    modules = {"runtime": runtime, "driver": driver}
    for (module, name), (restype, argtypes, fn) in _ENTRIES.items():
        capi = modules[module].__pyx_capi__
        signature = _capsule_name(capi[name])
        callback = ctypes.CFUNCTYPE(restype, *argtypes)(fn)
        _keep.extend((callback, signature))
        capi[name] = new(ctypes.cast(callback, ctypes.c_void_p), signature, None)


def allocator(size: int):
    """A cupy allocator handing out zeroed host memory as device 0's (never freed before
    exit, so a pointer recorded anywhere stays valid)."""
    import cupy
    buffer = np.zeros(size + 64, np.uint8)
    _keep.append(buffer)
    address = buffer.ctypes.data
    address += -address % 64  # CuPy's own allocations are 512-byte aligned; 64 is enough
    memory = cupy.cuda.UnownedMemory(address, size, buffer, device_id=0)
    return cupy.cuda.MemoryPointer(memory, 0)


@contextlib.contextmanager
def capture(stream_ptr: int):
    """While inside, the stand-in runtime answers that `stream_ptr` is capturing."""
    record.capturing.add(stream_ptr)
    try:
        yield
    finally:
        record.capturing.discard(stream_ptr)
