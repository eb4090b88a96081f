"""A NumPy-backed stand-in for CuPy 14, so CPU tests run gradflow's real GPU code path and
see what the kernel emulator cannot: which device is current when an array is made or read,
host synchronisations, host-to-device copies (pageable or pinned), and memory-pool use.

Only the subset gradflow uses is modelled, after CuPy 14.2's sources (cupy/_core/core.pyx,
cupy/cuda/{device,stream,memory,memory_hook}.pyx):
- `ndarray` wraps a NumPy array and the device it lives on; it is no np.ndarray subclass, and
  `np.asarray(a)` raises TypeError as CuPy's does. Reading it on the host (`get`, `item`,
  `tolist`, `bool`, `int`, `float`, `repr`) is a device-to-host copy plus a sync. CuPy 14 has
  no `__index__`, so neither has this (`range(a)` raises TypeError).
- Results are allocated on the CURRENT device, and an op or kernel launch that reads an array
  resident on another device raises CuPy's ValueError (no peer access); views (reshape,
  transpose, basic indexing) launch nothing and are not checked, as in CuPy.
- Every buffer charges its bytes to the current thread's allocator (a `MemoryPool` unless
  `set_allocator(None)`) on its device, and gives them back when it is garbage collected.
- Streams and events are per device and thread; a sync or device-to-host read on a stream
  that is capturing raises cudaErrorStreamCaptureUnsupported and invalidates the capture.

Everything notable goes to `event_log`; read it with `count`, `events_of`, and `clear_events`.
`reset(device_count=2, memory_limit=None)` starts afresh (tests/fakecuda.py's fixture calls it).
Functions not defined here are NumPy's, run on unwrapped arrays (module `__getattr__`).
"""
from __future__ import annotations

import builtins
import collections
import contextlib
import ctypes
import itertools
import os
import sys
import threading
import types
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

__version__ = "14.2.0.fake"
_HERE = {str(Path(__file__).resolve()), str(Path(__file__).with_name("fakecuda.py").resolve())}
_addresses = itertools.count(0x7F0000000000, 0x1000)  # fake device pointers, streams, events


# -- the event log ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One logged happening. kind: sync, d2h, h2d, p2p, launch, alloc (with the buffer's
    `ptr`), record and wait (an event recorded on, or waited for by, `stream`), graph_launch
    or device_mismatch; where: the API (or kernel) name; caller: the first frame outside the
    fake, `file:line function`, innermost first."""
    kind: str
    where: str
    device: int
    stream: int | None = None
    nbytes: int = 0
    pinned: bool | None = None
    caller: str = ""
    ptr: int | None = None


event_log: list = []  # not `log`: that is cupy.log, the ufunc


def _caller(depth: int = 3) -> str:
    """The innermost `depth` frames outside the fake and NumPy, innermost first."""
    frame, found = sys._getframe(2), []
    while frame is not None and len(found) < depth:
        name = frame.f_code.co_filename
        if name not in _HERE and f"{os.sep}numpy{os.sep}" not in name:
            found.append(f"{Path(name).name}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(found)


def _record(kind: str, where: str, **fields) -> None:
    fields.setdefault("device", _state().device)
    event_log.append(Entry(kind, where, caller=_caller(), **fields))


def events_of(kind: str, **match) -> list:
    """The logged entries of `kind` whose fields equal `match` (e.g. pinned=False)."""
    return [e for e in event_log if e.kind == kind
            and all(getattr(e, k) == v for k, v in match.items())]


def count(kind: str, **match) -> int:
    return len(events_of(kind, **match))


def clear_events() -> None:
    event_log.clear()


# -- runtime: devices and errors ----------------------------------------------------------------
_ERRORS = {2: ("cudaErrorMemoryAllocation", "out of memory"),
           101: ("cudaErrorInvalidDevice", "invalid device ordinal"),
           400: ("cudaErrorInvalidResourceHandle", "invalid resource handle"),
           900: ("cudaErrorStreamCaptureUnsupported",
                 "operation not permitted when stream is capturing"),
           901: ("cudaErrorStreamCaptureInvalidated",
                 "operation failed due to a previous error during capture")}


class CUDARuntimeError(RuntimeError):
    """cupy.cuda.runtime.CUDARuntimeError: `status` is the cudaError_t."""

    def __init__(self, status: int) -> None:
        self.status = status
        name, text = _ERRORS[status]
        super().__init__(f"{name}: {text}")


class _Config:
    device_count = 2
    memory_limit: dict = {}  # device id -> bytes the device has (None: unlimited)


class _ThreadState(threading.local):
    """CuPy's per-thread state: current device, device stack, stream stacks, allocator and
    memory hooks."""

    def __init__(self) -> None:
        self.device = 0
        self.device_stack: list = []
        self.streams = [[Stream.null] for _ in range(_Config.device_count)]
        self.stream_devices: list = []
        self.allocator = None
        self.hooks: dict = collections.OrderedDict()


_tls: _ThreadState | None = None


def _state() -> _ThreadState:
    return _tls


def getDeviceCount() -> int:  # noqa: N802  (CUDA's names)
    return _Config.device_count


def getDevice() -> int:  # noqa: N802
    return _state().device


def setDevice(device_id: int) -> None:  # noqa: N802
    if not 0 <= int(device_id) < _Config.device_count:
        raise CUDARuntimeError(101)
    _state().device = int(device_id)


def deviceSynchronize() -> None:  # noqa: N802
    _sync("deviceSynchronize", None)


def runtimeGetVersion() -> int:  # noqa: N802
    return 13000  # cupy-cuda13x 14.2 is built against CUDA 13.0


def getDeviceProperties(device_id: int) -> dict:  # noqa: N802
    return {"name": f"Fake GPU {device_id}".encode(), "major": 9, "minor": 0,
            "totalGlobalMem": _Config.memory_limit.get(device_id) or 80 * 2**30}


class Device:
    """cupy.cuda.Device: `with Device(i):` makes i current for this thread; `Device()` is the
    current one."""

    def __init__(self, device=None) -> None:
        self.id = getDevice() if device is None else int(device)

    def __int__(self) -> int:
        return self.id

    def __enter__(self) -> "Device":
        _state().device_stack.append(getDevice())
        setDevice(self.id)
        return self

    def __exit__(self, *exc) -> None:
        setDevice(_state().device_stack.pop())

    def use(self) -> "Device":
        setDevice(self.id)
        return self

    def synchronize(self) -> None:
        _sync("Device.synchronize", None, self.id)

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


# -- streams, events, graphs --------------------------------------------------------------------
_capturing: dict = {}  # capturing stream ptr -> its Graph under construction


def _sync(where: str, stream: "_BaseStream | None", device: int | None = None) -> None:
    """A host wait on `stream` (None: the whole device); refused while what it waits on
    captures, which also invalidates that capture, as CUDA does."""
    device = getDevice() if device is None else device
    hit = [g for ptr, g in _capturing.items()
           if (stream.ptr == ptr if stream is not None else g.device == device)]
    if hit:
        for graph in hit:
            graph.invalidated = True
        raise CUDARuntimeError(900)
    _record("sync", where, device=device, stream=None if stream is None else stream.ptr)


class _BaseStream:
    """A CUDA stream: `ptr` is unique per stream (0 for the legacy default stream)."""

    def __init__(self, ptr: int, device_id: int) -> None:
        self.ptr, self.device_id = ptr, device_id

    def _device(self) -> int:
        return getDevice() if self.device_id == -1 else self.device_id

    def __enter__(self) -> "_BaseStream":
        device = self._device()
        if device != getDevice():
            raise RuntimeError(f"The device that the stream is created on ({device}) does "
                               f"not match with the current device ({getDevice()})")
        state = _state()
        state.streams[device].append(self)
        state.stream_devices.append(device)
        return self

    def __exit__(self, *exc) -> None:
        state = _state()
        state.streams[state.stream_devices.pop()].pop()

    def use(self) -> "_BaseStream":
        _state().streams[self._device()][-1] = self
        return self

    def __eq__(self, other) -> bool:
        return isinstance(other, _BaseStream) and other.ptr == self.ptr

    def __hash__(self) -> int:
        return self.ptr

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ptr} (device {self.device_id})>"

    @property
    def done(self) -> bool:
        return True  # cudaStreamQuery: asks, never waits

    def synchronize(self) -> None:
        _sync("Stream.synchronize", self, self._device())

    def record(self, event: "Event | None" = None) -> "Event":
        event = Event() if event is None else event
        event._stream = self
        _record("record", "Stream.record", stream=self.ptr)
        return event

    def wait_event(self, event: "Event") -> None:
        """Stream-ordered: nothing waits on the host."""
        _record("wait", "Stream.wait_event", stream=self.ptr)

    def begin_capture(self, mode=None) -> None:
        if self.ptr in (0, 1):
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if self.ptr in _capturing:
            raise CUDARuntimeError(400)
        _capturing[self.ptr] = Graph(self._device())

    def end_capture(self) -> "Graph":
        graph = _capturing.pop(self.ptr, None)
        if graph is None or graph.invalidated:
            raise CUDARuntimeError(901)
        return graph

    def is_capturing(self) -> bool:
        return self.ptr in _capturing


class Stream(_BaseStream):
    """cupy.cuda.Stream; `Stream.null` is the legacy default stream (ptr 0)."""

    null: "Stream"

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority=None) -> None:
        if null or ptds:
            super().__init__(0 if null else 2, -1)
        else:
            super().__init__(next(_addresses), getDevice())
        self.non_blocking = non_blocking


Stream.null = Stream(null=True)


class ExternalStream(_BaseStream):
    """A stream made elsewhere, named by its pointer."""

    def __init__(self, ptr: int, device_id: int = -1) -> None:
        super().__init__(int(ptr), device_id)


def get_current_stream(device_id: int = -1) -> _BaseStream:
    return _state().streams[getDevice() if device_id == -1 else device_id][-1]


class Event:
    """cupy.cuda.Event; `synchronize` is a host wait, refused on an event recorded by a stream
    that is capturing."""

    def __init__(self, block: bool = False, disable_timing: bool = False,
                 interprocess: bool = False) -> None:
        self.ptr = next(_addresses)
        self._stream = None

    def record(self, stream: _BaseStream | None = None) -> None:
        (get_current_stream() if stream is None else stream).record(self)

    @property
    def done(self) -> bool:
        return True

    def synchronize(self) -> None:
        _sync("Event.synchronize", self._stream or Stream.null)


def get_elapsed_time(start: Event, end: Event) -> float:
    _sync("get_elapsed_time", end._stream or Stream.null)
    return 0.0


class Graph:
    """What a capture recorded: `launches` names the kernels launched on the capturing
    stream. NumPy work happens when it is issued, so a fake graph cannot replay it: `launch`
    only logs a graph_launch (replayed steps compute nothing new)."""

    def __init__(self, device: int) -> None:
        self.device, self.launches, self.invalidated = device, [], False

    def launch(self, stream: _BaseStream | None = None) -> None:
        stream = get_current_stream() if stream is None else stream
        _record("graph_launch", "Graph.launch", stream=stream.ptr)

    def upload(self, stream: _BaseStream | None = None) -> None:
        """Nothing to upload."""


def kernel_arguments(name: str, args) -> list:
    """Check one kernel launch's arguments as CuPy does (device arrays on the current device,
    no host arrays), log it on the current stream, and return what the emulator takes."""
    inner = []
    for arg in args:
        if isinstance(arg, np.ndarray):
            raise TypeError(f"Unsupported type {type(arg)}")
        if isinstance(arg, ndarray):
            _check_devices([arg])
            arg = arg._a
        inner.append(arg)
    _launched(name)
    return inner


def _launched(name: str) -> None:
    stream = get_current_stream()
    _record("launch", name, stream=stream.ptr)
    if stream.ptr in _capturing:
        _capturing[stream.ptr].launches.append(name)


# -- memory -------------------------------------------------------------------------------------
class OutOfMemoryError(MemoryError):
    """cupy.cuda.memory.OutOfMemoryError, with CuPy's message."""

    def __init__(self, size: int, total: int, limit: int = 0) -> None:
        msg = f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes"
        super().__init__(msg + (f", limit set to: {limit:,} bytes)." if limit else ")."))


class MemoryPointer:
    """A device address; a block from an allocator goes back when `free()` is called or the
    pointer is garbage collected, as CuPy's pooled memory does."""

    def __init__(self, ptr: int, device_id: int, size: int = 0, release=None) -> None:
        self.ptr, self.device_id, self.size = ptr, device_id, size
        self.mem: object = None
        self._release = weakref.finalize(self, release) if release else None

    @property
    def device(self) -> Device:
        return Device(self.device_id)

    def free(self) -> None:
        if self._release is not None:
            self._release()


_raw_held: collections.Counter = collections.Counter()  # device -> bytes outside any pool
_pools: weakref.WeakSet = weakref.WeakSet()


def _physical_room(device: int, size: int) -> bool:
    limit = _Config.memory_limit.get(device)
    held = _raw_held[device] + sum(p._held[device] for p in list(_pools))
    return limit is None or held + size <= limit


def _round(size: int) -> int:
    return max(512, -(-size // 512) * 512)


def _malloc(size: int) -> MemoryPointer:
    """The raw allocator (cudaMalloc, no pool)."""
    device = getDevice()
    if not _physical_room(device, size):
        raise CUDARuntimeError(2)
    _raw_held[device] += size
    return MemoryPointer(next(_addresses), device, size,
                         lambda: _raw_held.subtract({device: size}))


class MemoryPool:
    """cupy.cuda.MemoryPool: blocks rounded to 512 bytes, kept per device; freed blocks stay
    held for reuse until `free_all_blocks`. Statistics are the current device's."""

    def __init__(self, allocator=None) -> None:
        self._used, self._held = collections.Counter(), collections.Counter()
        self._free: dict = collections.defaultdict(collections.Counter)  # device -> size: n
        self._limit = 0
        _pools.add(self)

    def malloc(self, size: int) -> MemoryPointer:
        device, rounded = getDevice(), _round(size)
        hooks = list(_state().hooks.values())
        for hook in hooks:
            hook.malloc_preprocess(device_id=device, size=size, mem_size=rounded)
        if self._free[device][rounded]:
            self._free[device][rounded] -= 1
        else:
            if not self._fits(device, rounded):
                self.free_all_blocks()  # CuPy retries after freeing its cached blocks
            if not self._fits(device, rounded):
                raise OutOfMemoryError(size, self._held[device], self._limit)
            self._held[device] += rounded
        self._used[device] += rounded
        ptr = MemoryPointer(next(_addresses), device, rounded,
                            lambda: self._give_back(device, rounded))
        for hook in hooks:
            hook.malloc_postprocess(device_id=device, size=size, mem_size=rounded,
                                    mem_ptr=ptr.ptr, pmem_id=id(ptr))
        return ptr

    def _fits(self, device: int, rounded: int) -> bool:
        within = not self._limit or self._held[device] + rounded <= self._limit
        return within and _physical_room(device, rounded)

    def _give_back(self, device: int, rounded: int) -> None:
        self._used[device] -= rounded
        self._free[device][rounded] += 1

    def used_bytes(self) -> int:
        return self._used[getDevice()]

    def total_bytes(self) -> int:
        return self._held[getDevice()]

    def free_bytes(self) -> int:
        return self.total_bytes() - self.used_bytes()

    def n_free_blocks(self) -> int:
        return sum(self._free[getDevice()].values())

    def free_all_blocks(self, stream=None) -> None:
        device = getDevice()
        self._held[device] -= sum(s * n for s, n in self._free[device].items())
        self._free[device].clear()

    def set_limit(self, size: int | None = None, fraction: float | None = None) -> None:
        self._limit = int(size or 0)

    def get_limit(self) -> int:
        return self._limit


_default_pool: MemoryPool | None = None
_global_allocator = None


def get_default_memory_pool() -> MemoryPool:
    return _default_pool


def get_allocator():
    state = _state()
    return _global_allocator if state.allocator is None else state.allocator


def set_allocator(allocator=None) -> None:
    """The process's allocator; None means raw cudaMalloc, no pool."""
    global _global_allocator
    if _state().allocator is not None:
        raise ValueError("Can't change the global allocator inside `using_allocator` context "
                         "manager")
    _global_allocator = _malloc if allocator is None else allocator


@contextlib.contextmanager
def using_allocator(allocator=None):
    """This thread's allocator inside the block (None: raw cudaMalloc)."""
    state = _state()
    previous, state.allocator = state.allocator, _malloc if allocator is None else allocator
    try:
        yield
    finally:
        state.allocator = previous


def alloc(size: int) -> MemoryPointer:
    return get_allocator()(size)


class MemoryHook:
    """cupy.cuda.MemoryHook: `with hook:` registers it for this thread; pools call
    malloc_preprocess/malloc_postprocess with keyword arguments."""

    name = "MemoryHook"

    def __enter__(self) -> "MemoryHook":
        hooks = _state().hooks
        if self.name in hooks:
            raise KeyError(f"memory hook {self.name} already exists")
        hooks[self.name] = self
        return self

    def __exit__(self, *exc) -> None:
        del _state().hooks[self.name]

    def malloc_preprocess(self, **kwargs) -> None:
        pass

    def malloc_postprocess(self, **kwargs) -> None:
        pass


class PinnedMemoryPointer(bytearray):
    """Page-locked host memory: view it with np.frombuffer; a copy from it is 'pinned'."""

    @property
    def ptr(self) -> int:
        return _address(np.frombuffer(self, np.uint8)) if len(self) else 0


_pinned: list = []  # weak references to live pinned blocks


def alloc_pinned_memory(size: int) -> PinnedMemoryPointer:
    block = PinnedMemoryPointer(_round(size))
    _pinned[:] = [ref for ref in _pinned if ref() is not None]
    _pinned.append(weakref.ref(block))
    return block


def _is_pinned(host: np.ndarray) -> bool:
    start = _address(host)
    for ref in _pinned:
        block = ref()
        if block is not None and block.ptr <= start and start + host.nbytes <= \
                block.ptr + len(block):
            return True
    return False


# -- ndarray ------------------------------------------------------------------------------------
_owners: dict = {}  # id(root NumPy buffer) -> (weakref to it, its device)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _root(a: np.ndarray) -> np.ndarray:
    while True:
        base = a.base
        if not isinstance(base, np.ndarray):
            # NOTE: as_strided's result has as base a holder of the array it views
            base = getattr(base, "base", None)
            if not isinstance(base, np.ndarray):
                return a
        a = base


def _owner(a: np.ndarray):
    root = _root(a)
    held = _owners.get(id(root))
    return (root, held[1]) if held is not None and held[0]() is root else (root, None)


def device_view(ptr: int, dtype) -> "ndarray":
    """The device memory from address `ptr` to the end of its buffer, as a 1-D array of
    `dtype` on the buffer's device: what a library reading raw pointers (cuBLAS) sees."""
    for ref, device in list(_owners.values()):
        root = ref()
        if root is None:
            continue
        start = _address(root)
        if start <= ptr < start + root.nbytes:
            # NOTE: the allocation's bytes in memory order, whatever the root's strides (a
            # reshape would copy a permuted root in logical order)
            raw = (ctypes.c_uint8 * root.nbytes).from_address(start)
            flat = np.frombuffer(raw, np.uint8)[ptr - start:]
            out = ndarray.__new__(ndarray)
            out._a = flat[:flat.size - flat.size % np.dtype(dtype).itemsize].view(dtype)
            out._device = device
            return out
    raise ValueError(f"address {ptr:#x} is in no live device buffer")


def _wrap(inner: np.ndarray) -> "ndarray":
    """A device array around a NumPy result: a view keeps its buffer's device, a new buffer is
    charged to the current thread's allocator on the current device."""
    root, device = _owner(inner)
    if device is None:
        device = getDevice()
        memptr = alloc(root.nbytes) if root.nbytes else None
        _owners[id(root)] = (weakref.ref(root), device)
        weakref.finalize(root, _forget, id(root), memptr)
        _record("alloc", "malloc", device=device, nbytes=root.nbytes, ptr=_address(root))
    out = ndarray.__new__(ndarray)
    out._a, out._device = inner, device
    return out


def _forget(key: int, memptr: MemoryPointer | None) -> None:
    _owners.pop(key, None)
    if memptr is not None:
        memptr.free()


def _check_devices(arrays) -> None:
    current = getDevice()
    for a in arrays:
        if a._device != current:
            _record("device_mismatch", "peer access", device=current)
            raise ValueError(f"The device where the array resides ({a._device}) is different "
                             f"from the current device ({current}). Peer access is "
                             "unavailable between these devices.")


def _unwrap(obj, found: list):
    """obj with device arrays replaced by their NumPy arrays (collected in `found`); host
    arrays are refused, as CuPy refuses them."""
    if isinstance(obj, ndarray):
        found.append(obj)
        return obj._a
    if isinstance(obj, np.ndarray):
        raise TypeError(f"Unsupported type {type(obj)}")
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, found) for o in obj)
    return obj


def _wrap_result(result):
    if isinstance(result, np.ndarray):
        return _wrap(result)
    if isinstance(result, np.generic):  # CuPy reduces to 0-d device arrays, not scalars
        return _wrap(np.asarray(result))
    if isinstance(result, list):
        return [_wrap_result(r) for r in result]
    if isinstance(result, tuple):  # NOTE: plain tuples where NumPy 2 gives named ones, as CuPy
        return tuple(_wrap_result(r) for r in result)
    return result


# Functions that read no operand's data (only its shape or dtype), and ones that return a
# view when they can (a kernel runs, and the device is checked, only when they copy).
_NO_READ = {"empty_like", "zeros_like", "ones_like", "full_like", "shape", "ndim", "size",
            "result_type", "can_cast", "min_scalar_type", "shares_memory", "may_share_memory"}
_VIEWS = {"reshape", "transpose", "view", "squeeze", "expand_dims", "broadcast_to",
          "broadcast_arrays", "swapaxes", "moveaxis", "ravel", "as_strided", "astype",
          "atleast_1d", "atleast_2d", "atleast_3d", "split", "array_split", "diagonal",
          "__getitem__"}


def _is_view(result, operands: list) -> bool:
    roots = {id(_root(a._a)) for a in operands}
    results = result if isinstance(result, (list, tuple)) else [result]
    return all(isinstance(r, np.ndarray) and id(_root(r)) in roots for r in results)


def _call(name: str, fn, args: tuple, kwargs: dict, owner: "ndarray | None" = None):
    """fn on unwrapped arguments, with CuPy's device rule, the result wrapped."""
    found = [] if owner is None else [owner]
    args, kwargs = _unwrap(args, found), {k: _unwrap(v, found) for k, v in kwargs.items()}
    if name in _VIEWS:
        result = fn(*args, **kwargs)
        if not _is_view(result, found):
            _check_devices(found)
            _launched(f"cupy.{name}")
    else:
        if found and name not in _NO_READ:
            _check_devices(found)
            _launched(f"cupy.{name}")
        result = fn(*args, **kwargs)
    same = next((a for a in found if a._a is result), None)  # `out=`, or astype(copy=False)
    return _wrap_result(result) if same is None else same


class _Forward:
    """A NumPy function (or ufunc, with its .reduce, .at, ...) run on device arrays."""

    def __init__(self, name: str, fn) -> None:
        self.__name__, self._fn = name, fn

    def __call__(self, *args, **kwargs):
        return _call(self.__name__, self._fn, args, kwargs)

    def __getattr__(self, attr: str):
        value = getattr(self._fn, attr)
        return _Forward(f"{self.__name__}.{attr}", value) if callable(value) else value


def _forward(name: str, value):
    if isinstance(value, types.ModuleType):
        return _Namespace(value)
    if callable(value) and not isinstance(value, type):
        return _Forward(name, value)
    return value  # dtypes, scalar types and constants pass through


class _Namespace:
    """A NumPy submodule (np.lib.stride_tricks, ...) forwarded like this module."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module

    def __getattr__(self, name: str):
        return _forward(name, getattr(self._module, name))


_HOST_ONLY = {"ctypes", "tofile", "dump", "dumps", "tobytes", "tostring", "setflags",
              "resize", "byteswap", "getfield", "setfield"}


class ndarray(NDArrayOperatorsMixin):  # noqa: N801  (CuPy's name)
    """cupy.ndarray: a NumPy array `_a` resident on device `_device`. Each op that reads
    device arrays logs a launch named `cupy.<op>` (CuPy runs one kernel per op)."""

    __slots__ = ("_a", "_device", "__weakref__")

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C") -> None:
        if memptr is not None or strides is not None:
            raise NotImplementedError("fakecupy.ndarray: memptr and strides are not modelled")
        made = _wrap(np.empty(shape, dtype, order=order))
        self._a, self._device = made._a, made._device

    # -- what lives on the array itself
    @property
    def device(self) -> Device:
        return Device(self._device)

    @property
    def data(self) -> MemoryPointer:
        pointer = MemoryPointer(_address(self._a), self._device)
        pointer.mem = _root(self._a)  # NOTE: as CuPy's, one object per allocation, views share it
        return pointer

    @property
    def base(self):
        return None if self._a.base is None else _wrap(_root(self._a))

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self._a.shape, "typestr": self._a.dtype.str, "version": 3,
                "data": (_address(self._a), False), "descr": self._a.dtype.descr,
                "strides": None if self._a.flags.c_contiguous else self._a.strides}

    def __getattr__(self, name: str):
        if name.startswith("__") or name in _HOST_ONLY:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        value = getattr(self._a, name)
        if not callable(value):
            return _wrap(value) if isinstance(value, np.ndarray) else value
        return lambda *args, **kwargs: _call(name, value, args, kwargs, owner=self)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # -- NumPy interoperation: operators, ufuncs and np.* functions run on the device
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = kwargs["out"][0] if len(kwargs["out"]) == 1 else kwargs["out"]
        return _call(ufunc.__name__, getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return getattr(sys.modules[__name__], func.__name__)(*args, **kwargs)

    def __getitem__(self, key):
        return _call("__getitem__", lambda k: self._a[_wrapped(self._a.shape, k)],
                     (_host_index(key),), {}, owner=self)

    def __setitem__(self, key, value) -> None:
        if isinstance(value, np.ndarray):
            value = asarray(value)

        def assign(k, v):
            self._a[_wrapped(self._a.shape, k)] = v
        _call("__setitem__", assign, (_host_index(key), value), {}, owner=self)

    # -- copies and conversions
    def copy(self, order: str = "C") -> "ndarray":
        """A copy on the current device; from another device a peer copy (contiguous only),
        as CuPy allows."""
        if self._device == getDevice():
            return _wrap(self._a.copy(order=order))
        if not (self._a.flags.c_contiguous or self._a.flags.f_contiguous):
            raise NotImplementedError("CuPy cannot copy non-contiguous array between devices.")
        _record("p2p", "copy", nbytes=self._a.nbytes)
        return _wrap(self._a.copy(order=order))

    def __copy__(self) -> "ndarray":
        return self.copy()

    def __deepcopy__(self, memo) -> "ndarray":
        with Device(self._device):
            return self.copy()

    def get(self, stream=None, order: str = "C", out=None, blocking: bool = True):
        return self._to_host("get", stream, out, blocking, order)

    def _to_host(self, where: str, stream=None, out=None, blocking: bool = True,
                 order: str = "C") -> np.ndarray:
        """A device-to-host copy on `stream` (default: the current one), then a wait."""
        stream = get_current_stream() if stream is None else stream
        if stream.ptr in _capturing:
            _capturing[stream.ptr].invalidated = True
            raise CUDARuntimeError(900)
        _record("d2h", where, device=self._device, stream=stream.ptr, nbytes=self._a.nbytes)
        if blocking:
            _sync(where, stream, self._device)
        if out is None:
            return np.array(self._a, order=order)
        out[...] = self._a
        return out

    def set(self, arr: np.ndarray, stream=None) -> None:
        """Copy a host array in, on `stream` (default: the current one)."""
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype or arr.shape != self.shape:
            raise ValueError(f"set: {arr.dtype} {arr.shape} into {self.dtype} {self.shape}")
        stream = get_current_stream() if stream is None else stream
        _record("h2d", "set", device=self._device, stream=stream.ptr, nbytes=arr.nbytes,
                pinned=_is_pinned(arr))
        self._a[...] = arr

    def item(self):
        if self._a.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._to_host("item").item()

    def tolist(self):
        return self._to_host("tolist").tolist()

    def __bool__(self) -> bool:
        return bool(self._to_host("bool"))

    def __int__(self) -> int:
        return int(self._to_host("int"))

    def __float__(self) -> float:
        return float(self._to_host("float"))

    def __repr__(self) -> str:
        return repr(self._to_host("repr"))

    def __str__(self) -> str:
        return str(self._to_host("str"))

    def __format__(self, spec: str) -> str:
        return format(self._to_host("format"), spec)


def _wrapped(shape: tuple, key):
    """`key` with its integer arrays taken modulo the size of the axis they index: CuPy wraps
    an out-of-range integer-array index around where NumPy raises, so a lost bounds check
    shows as wrong values, as on a GPU."""
    items = key if isinstance(key, tuple) else (key,)
    consumed = sum(k.ndim if isinstance(k, np.ndarray) and k.dtype == bool else 1
                   for k in items if k is not None and k is not Ellipsis)
    out, axis = [], 0
    for k in items:
        if k is None:
            out.append(k)
            continue
        if k is Ellipsis:
            axis += len(shape) - consumed
            out.append(k)
            continue
        if isinstance(k, np.ndarray) and k.dtype.kind in "iu" and axis < len(shape) \
                and shape[axis]:
            k = np.mod(k, shape[axis])
        axis += k.ndim if isinstance(k, np.ndarray) and k.dtype == bool else 1
        out.append(k)
    return tuple(out) if isinstance(key, tuple) else out[0]


def _host_index(key):
    """An index with host integer arrays copied to the device first, as CuPy copies them."""
    if isinstance(key, tuple):
        return tuple(_host_index(k) for k in key)
    if isinstance(key, (np.ndarray, list)) and not isinstance(key, ndarray):
        return asarray(np.asarray(key))
    return key


# -- module functions with CuPy's own rules -----------------------------------------------------
def array(obj, dtype=None, copy: bool = True, order: str = "K", subok: bool = False,
          ndmin: int = 0, blocking: bool = False) -> ndarray:
    """A device array on the current device: from a device array of another device a peer
    copy, from host data a host-to-device copy (pinned when `obj` lies in pinned memory)."""
    if isinstance(obj, ndarray):
        if obj._device != getDevice():
            obj, copy = obj.copy(), None
        return _call("array", np.array, (obj,), {"dtype": dtype, "copy": copy, "ndmin": ndmin})
    host = np.array(obj, dtype=dtype, ndmin=ndmin, copy=None)
    pinned = isinstance(obj, np.ndarray) and obj.flags.c_contiguous and _is_pinned(obj)
    out = _wrap(np.array(host, order="C", copy=True))
    if host.ndim:  # CuPy fills a 0-d array from the scalar: no copy
        _record("h2d", "asarray", stream=get_current_stream().ptr, nbytes=host.nbytes,
                pinned=pinned)
    if blocking:
        _sync("asarray", get_current_stream())
    return out


def asarray(a, dtype=None, order=None, *, blocking: bool = False) -> ndarray:
    return array(a, dtype, copy=None, blocking=blocking)


def asnumpy(a, stream=None, order: str = "C", out=None, blocking: bool = True):
    if isinstance(a, ndarray):
        return a._to_host("asnumpy", stream, out, blocking, order)
    return np.asarray(a, order=order)


def ascontiguousarray(a, dtype=None) -> ndarray:
    if not isinstance(a, ndarray):
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy.ndarray, got "
                        f"{type(a).__name__})")
    if a._a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    return _call("ascontiguousarray", np.ascontiguousarray, (a,), {"dtype": dtype})


def copyto(dst: ndarray, src, casting: str = "same_kind", where=None) -> None:
    """NumPy's copyto; across devices only a plain same-shape, same-dtype copy, as CuPy."""
    if isinstance(src, ndarray) and src._device != dst._device and where is None and \
            src.shape == dst.shape and src.dtype == dst.dtype:
        _record("p2p", "copyto", nbytes=src.nbytes)
        dst._a[...] = src._a
        return
    if isinstance(src, np.ndarray):
        if src.size != 1:
            raise ValueError("non-scalar numpy.ndarray cannot be used for copyto")
        src = src.reshape(())[()]
    _call("copyto", np.copyto, (dst, src), {"casting": casting,
                                          "where": True if where is None else where})


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    value = _forward(name, getattr(np, name))
    if not hasattr(builtins, name):  # NOTE: caching max, sum, ... would shadow the built-ins here
        globals()[name] = value
    return value


def _namespace(name: str, **members) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(members)
    return module


class _CublasStub:
    """cupy.cuda.cublas's handle calls; gradflow issues its GEMMs itself (tests/fakecuda.py
    routes them to the emulator)."""

    def __getattr__(self, name: str):
        raise NotImplementedError(f"fakecupy: cupy.cuda.cublas.{name} is not modelled")


runtime = _namespace(
    "cupy.cuda.runtime", CUDARuntimeError=CUDARuntimeError, getDeviceCount=getDeviceCount,
    getDevice=getDevice, setDevice=setDevice, deviceSynchronize=deviceSynchronize,
    runtimeGetVersion=runtimeGetVersion, driverGetVersion=runtimeGetVersion,
    getDeviceProperties=getDeviceProperties, streamCaptureModeRelaxed=2)
memory = _namespace(
    "cupy.cuda.memory", OutOfMemoryError=OutOfMemoryError, MemoryPool=MemoryPool,
    MemoryPointer=MemoryPointer, alloc=alloc, set_allocator=set_allocator,
    get_allocator=get_allocator, using_allocator=using_allocator)
cuda = _namespace(
    "cupy.cuda", Device=Device, Stream=Stream, ExternalStream=ExternalStream, Event=Event,
    Graph=Graph, get_current_stream=get_current_stream, get_elapsed_time=get_elapsed_time,
    MemoryPool=MemoryPool, MemoryPointer=MemoryPointer, MemoryHook=MemoryHook, alloc=alloc,
    set_allocator=set_allocator, get_allocator=get_allocator, using_allocator=using_allocator,
    alloc_pinned_memory=alloc_pinned_memory, PinnedMemoryPointer=PinnedMemoryPointer,
    runtime=runtime, memory=memory, cublas=_CublasStub(), is_available=lambda: True)


def _scatter_add(a: ndarray, slices, value) -> None:
    """cupyx.scatter_add: a[slices] += value, adding every duplicate (NumPy's add.at)."""
    _call("scatter_add", np.add.at, (a, _host_index(slices), value), {})


cupyx = _namespace("cupyx", scatter_add=_scatter_add)  # install as sys.modules["cupyx"]


def reset(device_count: int = 2, memory_limit: dict | None = None) -> None:
    """Start afresh: `device_count` devices, device 0 current, new default pool and allocator,
    optional per-device byte limits ({device: bytes}) that raise OutOfMemoryError, empty log.
    Arrays made before keep their (now stale) accounting."""
    global _tls, _default_pool, _global_allocator, _pools
    _Config.device_count, _Config.memory_limit = device_count, dict(memory_limit or {})
    _tls, _pools = _ThreadState(), weakref.WeakSet()
    _raw_held.clear()
    _capturing.clear()
    _default_pool = MemoryPool()
    _global_allocator = _default_pool.malloc
    clear_events()


reset()
