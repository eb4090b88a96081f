"""DLPack: zero-copy exchange of tensors with NumPy, PyTorch, CuPy and JAX (torch.utils.dlpack).

Export is `Tensor.__dlpack__` / `__dlpack_device__` (the Python array API's protocol), which
hand the work to the backing NumPy or CuPy array's own `__dlpack__`; `from_dlpack` takes any
object with `__dlpack__` or a DLPack capsule and wraps the imported array as a leaf tensor that
shares the producer's memory: a write through either side is seen by the other.

CUDA streams (the protocol's handshake): the consumer passes its stream to the producer's
`__dlpack__` as an int: None or 1 the legacy default stream, 2 the per-thread default stream,
-1 no ordering, anything else a `cudaStream_t`. When that stream is not the producer's current
stream on the tensor's device (current when `__dlpack__` runs: like torch, gradflow does not
track which stream last wrote a tensor), CuPy's `ndarray.__dlpack__` records an event on the
current stream and makes the consumer's stream wait on it, so the consumer sees every write
queued before the export. As the consumer, `from_dlpack` lets `cupy.from_dlpack` pass CuPy's current
stream of the producer's device (1 for the legacy default stream).

bfloat16: NumPy's DLPack refuses ml_dtypes' bfloat16, so on the CPU it crosses as uint16 whose
DLPack type code is rewritten (kDLUInt <-> kDLBfloat, 16 bits) in the capsule: still zero-copy.
CuPy 14 exchanges bfloat16 itself.
"""
from __future__ import annotations

import ctypes
import datetime
import enum
from typing import Any

import numpy as np

from .. import backend, dtypes
from ..tensor import Tensor

__all__ = ["DLDeviceType", "from_dlpack", "to_dlpack"]


class DLDeviceType(enum.IntEnum):
    """DLPack's device types (dlpack.h), as torch.utils.dlpack.DLDeviceType."""

    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16
    kDLMAIA = 17


_HOST = (DLDeviceType.kDLCPU, DLDeviceType.kDLCUDAHost, DLDeviceType.kDLROCMHost)
_CUDA = (DLDeviceType.kDLCUDA, DLDeviceType.kDLCUDAManaged)

# -- the C structs of dlpack.h (v1.1), read from a capsule with ctypes ---------------------------
_K_DL_UINT, _K_DL_BFLOAT = 1, 4
# NOTE: DLDataTypeCode names, for errors about dtypes gradflow cannot hold
_TYPE_CODES = {0: "int", 1: "uint", 2: "float", 3: "opaque handle", 4: "bfloat", 5: "complex",
               6: "bool", 7: "float8_e3m4", 8: "float8_e4m3", 9: "float8_e4m3b11fnuz",
               10: "float8_e4m3fn", 11: "float8_e4m3fnuz", 12: "float8_e5m2",
               13: "float8_e5m2fnuz", 14: "float8_e8m0fnu", 15: "float6_e2m3fn",
               16: "float6_e3m2fn", 17: "float4_e2m1fn"}
_FIXED_WIDTH = {"float8", "float6", "float4"}  # names that carry their width already
# NOTE: (code, bits, lanes) of gradflow's dtypes; bool also as NumPy before 2.0 sent it (uint8)
_READABLE = {({"i": 0, "u": 1, "f": 2, "b": 6}[dt.kind], dt.itemsize * 8, 1)
             for dt in dtypes.SUPPORTED if dt != dtypes.bfloat16} | {(_K_DL_BFLOAT, 16, 1)}


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):  # the legacy capsule "dltensor"
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


class _DLManagedTensorVersioned(ctypes.Structure):  # the capsule "dltensor_versioned"
    _fields_ = [("version", ctypes.c_uint32 * 2), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p), ("flags", ctypes.c_uint64),
                ("dl_tensor", _DLTensor)]


_LEGACY, _VERSIONED = b"dltensor", b"dltensor_versioned"
_CAPSULE_TYPE = type(datetime.datetime_CAPI)  # NOTE: types.CapsuleType from Python 3.13 on
# NOTE: prototypes of our own, so no other user of ctypes.pythonapi sees changed argtypes
_capsule_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(
    ("PyCapsule_GetName", ctypes.pythonapi))
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


def _dl_tensor(capsule: Any) -> tuple[_DLTensor, bool]:
    """The DLTensor inside an unconsumed DLPack capsule (a view on its memory, valid while the
    capsule lives), and whether the capsule is versioned (DLPack 1.x)."""
    name = _capsule_name(capsule)
    if name not in (_LEGACY, _VERSIONED):
        raise RuntimeError(
            f"from_dlpack received an invalid capsule (named {name.decode()!r}). Note that "
            "DLTensor capsules can be consumed only once, so you might have already "
            "constructed a tensor from it once.")
    address = _capsule_pointer(capsule, name)
    if name == _VERSIONED:
        return _DLManagedTensorVersioned.from_address(address).dl_tensor, True
    return _DLManagedTensor.from_address(address).dl_tensor, False


def _dtype_name(dtype: _DLDataType) -> str:
    name = _TYPE_CODES.get(dtype.code, f"type code {dtype.code}")
    if name.split("_")[0] not in _FIXED_WIDTH:
        name += str(dtype.bits)
    return name if dtype.lanes == 1 else f"{name}x{dtype.lanes}"


# -- export -------------------------------------------------------------------------------------
def dlpack_device(tensor: Tensor) -> tuple[DLDeviceType, int]:
    """`Tensor.__dlpack_device__`: (device type, device id) of the tensor's memory."""
    kind, index = tensor.array.__dlpack_device__()
    return DLDeviceType(kind), int(index)


def export(tensor: Tensor, stream: Any = None, max_version: tuple[int, int] | None = None,
           dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
    """`Tensor.__dlpack__`: a DLPack capsule sharing the tensor's memory, made by its NumPy or
    CuPy array; tensors that require grad are refused, as torch refuses them. `stream` is the
    consumer's (None or -1 on the CPU; on CUDA as the module's docstring says), `max_version`
    the newest DLPack the consumer reads (a legacy capsule below 1.0), `dl_device` and `copy`
    as the array API says, handled by NumPy or CuPy."""
    if tensor.requires_grad:
        raise BufferError("__dlpack__: Can't export tensors that require gradient, use "
                          "tensor.detach()")
    return _capsule_of(tensor, stream, max_version, dl_device, copy)


def to_dlpack(tensor: Tensor) -> Any:
    """A legacy DLPack capsule ("dltensor") sharing the tensor's memory, to hand to a consumer's
    `from_dlpack` once (torch.utils.dlpack.to_dlpack, which, unlike `__dlpack__`, also exports
    a tensor that requires grad)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack: expected a gradflow Tensor, got {type(tensor).__name__}")
    return _capsule_of(tensor, None, None, None, None)


def _capsule_of(tensor: Tensor, stream: Any, max_version: tuple[int, int] | None,
                dl_device: tuple[int, int] | None, copy: bool | None) -> Any:
    if stream is not None and type(stream) is not int:
        raise TypeError(f"__dlpack__: stream must be ``int`` or ``none``, got "
                        f"{type(stream).__name__}")
    if not tensor.is_cuda and stream not in (None, -1):
        raise AssertionError(f"__dlpack__: stream should be None on cpu, got {stream}")
    array = tensor.array
    if any(step < 0 for step in array.strides):
        # NOTE: PyTorch aborts the process on a DLPack tensor with negative strides, so such a
        # view (NumPy's flip of an imported array) leaves as a copy, or not at all.
        if copy is False:
            raise BufferError(f"__dlpack__: a tensor with negative strides "
                              f"{tensor.stride()} cannot be exported without a copy")
        with backend.on_device(tensor.device):
            array = tensor._xp.ascontiguousarray(array)
    asked = {name: value for name, value in
             (("max_version", max_version), ("dl_device", dl_device), ("copy", copy))
             if value is not None}
    if not tensor.is_cuda:
        if array.dtype != dtypes.bfloat16:
            return array.__dlpack__(**asked)
        capsule = array.view(np.uint16).__dlpack__(**asked)
        _dl_tensor(capsule)[0].dtype.code = _K_DL_BFLOAT
        return capsule
    # NOTE: CuPy's __dlpack__ orders the consumer's stream after the current stream of the
    # current device, so the tensor's device is made current first
    with backend.on_device(tensor.device):
        return array.__dlpack__(stream=stream, **asked)


# -- import -------------------------------------------------------------------------------------
class _Capsule:
    """A capsule dressed in the protocol, for `numpy.from_dlpack`, which takes no capsules."""

    def __init__(self, capsule: Any, device: tuple[int, int]) -> None:
        self._capsule, self._device = capsule, device

    def __dlpack__(self, **_ignored: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device


def from_dlpack(ext_tensor: Any, *, device: Any = None, copy: bool | None = None) -> Tensor:
    """A tensor sharing the memory of `ext_tensor`: an object with `__dlpack__` (a NumPy or
    CuPy array, a torch or JAX tensor, a gradflow tensor) or a DLPack capsule
    (torch.from_dlpack). It lands on the producer's device (`cuda:1` stays on GPU 1) unless
    `device` says otherwise (a copy); `copy=True` always copies, `copy=False` never does. The
    result is a leaf that does not require grad."""
    is_capsule = isinstance(ext_tensor, _CAPSULE_TYPE)
    if is_capsule:
        if device is not None or copy is not None:
            raise AssertionError("from_dlpack: device and copy kwargs not supported when "
                                 "ext_tensor is already a DLPack capsule")
        dl_tensor, _ = _dl_tensor(ext_tensor)
        source = (dl_tensor.device.device_type, dl_tensor.device.device_id)
    elif hasattr(ext_tensor, "__dlpack__"):
        source = tuple(ext_tensor.__dlpack_device__())
    else:
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ or a DLPack capsule, "
                        f"got {type(ext_tensor).__name__}")
    home = _device_for("from_dlpack", source)
    target = home if device is None else _as_device(device)
    if target != home and copy is False:
        raise ValueError(f"from_dlpack: cannot move DLPack tensor from device {home} to "
                         f"{target} without copying. Set copy=None or copy=True.")
    # NOTE: the producer is never asked for copy=True, which CuPy refuses on the GPU; the
    # array imported in place is copied here instead
    asked = {"copy": False} if copy is False else {}
    if home.type == "cpu":
        array = _host_array(ext_tensor if is_capsule else _request(ext_tensor, asked), source)
    else:
        array = backend.cupy_module().from_dlpack(ext_tensor, **asked)
    if array.dtype not in dtypes.SUPPORTED:  # what CuPy imported
        raise _unsupported(str(array.dtype))
    out = Tensor._wrap(array)
    if target != home:
        return out.to(target)
    if copy:
        with backend.on_device(home):
            return Tensor._wrap(array.copy())
    return out


def _unsupported(dtype_name: str) -> TypeError:
    return TypeError(f"from_dlpack: dtype {dtype_name} is not supported; gradflow holds "
                     + ", ".join(str(dt) for dt in dtypes.SUPPORTED))


def _device_for(op: str, source: tuple[int, int]) -> backend.device:
    """gradflow's device for DLPack's (device type, id); CUDA must be usable for a GPU one."""
    kind, index = source
    if kind in _HOST:
        return backend.CPU
    if kind in _CUDA:
        reason = backend.cuda_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"{op}: the tensor is on CUDA device {index}, but CUDA is not "
                               f"available: {reason}")
        return backend.device("cuda", index)
    name = DLDeviceType(kind).name if kind in DLDeviceType._value2member_map_ else str(kind)
    raise BufferError(f"{op}: unsupported DLPack device {name} (id {index}): gradflow holds "
                      "tensors on the CPU and on CUDA GPUs")


def _as_device(spec: Any) -> backend.device:
    """A device argument as a device, without asking whether CUDA is usable (that waits for
    the copy, which needs it)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return backend.device("cuda", spec)
    return backend.device(spec)


def _request(ext_tensor: Any, asked: dict) -> Any:
    """The producer's capsule for a CPU consumer: DLPack 1.0 where NumPy reads it, without the
    keywords an older producer does not take (as torch.from_dlpack retries)."""
    versions = {"max_version": (1, 0)} if _NUMPY_READS_VERSIONED else {}
    attempts: list[dict] = []
    for kwargs in ({**versions, **asked}, asked, {}):
        if kwargs not in attempts:
            attempts.append(kwargs)
    for kwargs in attempts[:-1]:
        try:
            return ext_tensor.__dlpack__(**kwargs)
        except TypeError:
            pass
    return ext_tensor.__dlpack__(**attempts[-1])


_NUMPY_READS_VERSIONED = np.lib.NumpyVersion(np.__version__) >= "2.1.0"
_byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds  # NOTE: np.byte_bounds before 2.0


def _host_array(capsule: Any, source: tuple[int, int]) -> np.ndarray:
    """The NumPy array a host-memory capsule holds, taken over by NumPy (which calls its
    deleter when the array dies)."""
    dl_tensor, versioned = _dl_tensor(capsule)
    kind = dl_tensor.dtype
    if (kind.code, kind.bits, kind.lanes) not in _READABLE:
        raise _unsupported(_dtype_name(kind))
    bfloat = kind.code == _K_DL_BFLOAT
    if bfloat:
        kind.code = _K_DL_UINT
    array = np.from_dlpack(_Capsule(capsule, source))
    if bfloat:
        array = array.view(dtypes.bfloat16)
    return array if versioned else _writable(array)


def _writable(array: np.ndarray) -> np.ndarray:
    """NumPy makes what a legacy capsule holds read-only (that format cannot say whether it
    may be written); torch and CuPy write it, so gradflow does: a writable view of the same
    memory that keeps the read-only array, and so the capsule, alive."""
    if array.flags.writeable:
        return array
    if array.size == 0:  # no memory to share
        return np.empty_like(array)
    low, high = _byte_bounds(array)
    memory = (ctypes.c_char * (high - low)).from_address(low)
    memory.owner = array  # type: ignore[attr-defined]
    return np.ndarray(array.shape, array.dtype, memory, array.ctypes.data - low, array.strides)
