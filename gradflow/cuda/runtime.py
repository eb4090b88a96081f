"""torch.cuda's device, stream and event calls on CuPy: which GPU is current and what it is
(`set_device`, `get_device_properties`, `mem_get_info`), streams (`Stream`, `stream(s)`,
`current_stream`) and events (`Event`, for timing and ordering).

gradflow runs every kernel, cuBLAS call and copy on CuPy's current stream, so
`with gradflow.cuda.stream(s):` puts gradflow's own work on `s`, as torch's does. Without
CUDA each of these raises a RuntimeError saying why (torch raises an AssertionError).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from ..backend import cuda_index, cuda_unavailable_reason, cupy_module, device
from . import checks


def _cupy(what: str) -> Any:
    """The cupy module, or a RuntimeError naming `what` and why CUDA cannot be used."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"gradflow.cuda.{what}: CUDA is not available: {reason}")
    return cupy_module()


def _gpu(what: str, dev: Any) -> int:
    """The number of the GPU `dev` names (None: the current one)."""
    cp = _cupy(what)
    return cp.cuda.Device().id if dev is None else cuda_index(what, dev)


def set_device(device: Any) -> None:
    """Make a GPU ('cuda:1', 1, a device) the current one (torch.cuda.set_device)."""
    _cupy("set_device").cuda.Device(_gpu("set_device", device)).use()


@dataclass(frozen=True)
class DeviceProperties:
    """What torch.cuda.get_device_properties reports that scripts read: the GPU's name,
    memory in bytes, compute capability and number of streaming multiprocessors."""
    name: str
    total_memory: int
    major: int
    minor: int
    multi_processor_count: int

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
                f"minor={self.minor}, total_memory={self.total_memory // 2**20}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def get_device_properties(device: Any = None) -> DeviceProperties:
    """The properties of a GPU (default: the current one)."""
    return _properties("get_device_properties", device)


def _properties(what: str, device: Any) -> DeviceProperties:
    props = _cupy(what).cuda.runtime.getDeviceProperties(_gpu(what, device))
    name = props["name"]
    return DeviceProperties(name=name.decode() if isinstance(name, bytes) else str(name),
                            total_memory=int(props["totalGlobalMem"]),
                            major=int(props["major"]), minor=int(props["minor"]),
                            multi_processor_count=int(props["multiProcessorCount"]))


def get_device_name(device: Any = None) -> str:
    return _properties("get_device_name", device).name


def get_device_capability(device: Any = None) -> tuple:
    """(major, minor) compute capability of a GPU, e.g. (9, 0) for a Hopper."""
    props = _properties("get_device_capability", device)
    return props.major, props.minor


def mem_get_info(device: Any = None) -> tuple:
    """(free bytes, total bytes) of a GPU as the driver sees them: memory held by CuPy's pools
    counts as used (torch.cuda.mem_get_info)."""
    cp = _cupy("mem_get_info")
    with cp.cuda.Device(_gpu("mem_get_info", device)):
        free, total = cp.cuda.runtime.memGetInfo()
    return int(free), int(total)


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether the current GPU computes in bfloat16 (torch.cuda.is_bf16_supported): natively
    from compute capability 8.0 (Ampere) on; before that only through cuda_bf16.h's emulated
    conversions, which `including_emulation` accepts. False without CUDA."""
    from . import is_available
    if not is_available():
        return False
    return get_device_capability()[0] >= 8 or including_emulation


class Stream:
    """A CUDA stream on one GPU (torch.cuda.Stream): work issued inside
    `with gradflow.cuda.stream(s):` runs on it, in order, concurrently with other streams."""

    def __init__(self, device: Any = None, priority: int = 0) -> None:
        cp = _cupy("Stream")
        self._index = _gpu("Stream", device)
        with cp.cuda.Device(self._index):
            self._stream = cp.cuda.Stream(priority=priority)

    @classmethod
    def _of(cls, cupy_stream: Any, index: int) -> "Stream":
        """Wrap an existing CuPy stream of GPU `index`."""
        self = cls.__new__(cls)
        self._stream, self._index = cupy_stream, index
        return self

    @property
    def device(self) -> device:
        return device("cuda", self._index)

    @property
    def cuda_stream(self) -> int:
        """The raw cudaStream_t, as an int."""
        return int(self._stream.ptr)

    def query(self) -> bool:
        """True when all work queued on the stream has finished (does not wait)."""
        return bool(self._stream.done)

    def synchronize(self) -> None:
        """Wait for the stream's queued work, then raise any failed check of device data."""
        self._stream.synchronize()
        checks.raise_pending(self._index)

    def wait_event(self, event: "Event") -> None:
        """Make later work on this stream wait for `event` (no host wait)."""
        self._stream.wait_event(event._event)

    def wait_stream(self, stream: "Stream") -> None:
        """Make later work on this stream wait for the work queued on `stream` so far."""
        self.wait_event(stream.record_event())

    def record_event(self, event: "Event | None" = None) -> "Event":
        event = Event() if event is None else event
        event.record(self)
        return event

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stream):
            return NotImplemented
        return self.cuda_stream == other.cuda_stream and self._index == other._index

    def __hash__(self) -> int:
        return hash((self.cuda_stream, self._index))

    def __repr__(self) -> str:
        return f"<gradflow.cuda.Stream device={self.device} cuda_stream={self.cuda_stream:#x}>"


def current_stream(device: Any = None) -> Stream:
    """The stream gradflow's work on a GPU (default: the current one) is issued to."""
    cp = _cupy("current_stream")
    index = _gpu("current_stream", device)
    return Stream._of(cp.cuda.get_current_stream(index), index)


def default_stream(device: Any = None) -> Stream:
    """The GPU's legacy default stream (torch.cuda.default_stream)."""
    cp = _cupy("default_stream")
    return Stream._of(cp.cuda.Stream.null, _gpu("default_stream", device))


class StreamContext:
    """`with gradflow.cuda.stream(s):` makes `s` the current stream, and its GPU the current
    device, for the block (a no-op for None), as torch.cuda.StreamContext."""

    def __init__(self, stream: Stream | None) -> None:
        self.stream = stream
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Stream | None:
        if self.stream is not None:
            self._stack.enter_context(cupy_module().cuda.Device(self.stream._index))
            self._stack.enter_context(self.stream._stream)
        return self.stream

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def stream(stream: Stream | None) -> StreamContext:
    return StreamContext(stream)


class Event:
    """A CUDA event (torch.cuda.Event): a point in a stream's work to wait for or to time
    from. `enable_timing=True` lets `elapsed_time` measure between two recorded events."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False) -> None:
        cp = _cupy("Event")
        self.enable_timing = enable_timing
        self._event = cp.cuda.Event(block=blocking, disable_timing=not enable_timing,
                                    interprocess=interprocess)

    def record(self, stream: Stream | None = None) -> None:
        """Mark the point reached by the work queued so far on `stream` (default: current)."""
        self._event.record(None if stream is None else stream._stream)

    def wait(self, stream: Stream | None = None) -> None:
        """Make later work on `stream` (default: current) wait for this event."""
        (current_stream() if stream is None else stream).wait_event(self)

    def query(self) -> bool:
        """True when the work before the event has finished (does not wait)."""
        return bool(self._event.done)

    def synchronize(self) -> None:
        """Wait on the host until the work before the event has finished."""
        self._event.synchronize()

    def elapsed_time(self, end_event: "Event") -> float:
        """Milliseconds from this event to `end_event`, both recorded and made with
        enable_timing=True."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Event.elapsed_time: both events must be created with "
                               "enable_timing=True")
        return float(cupy_module().cuda.get_elapsed_time(self._event, end_event._event))
