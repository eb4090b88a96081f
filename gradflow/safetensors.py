"""safetensors files with the names of `safetensors.torch`: save_file, load_file, save, load.

The bytes are written and read by the safetensors package's NumPy API (an optional extra:
pip install 'gradflow[safetensors]'). A file is an 8-byte little-endian header length N, N
bytes of JSON {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}, then the tensors' bytes, packed without holes. gradflow checks
that header itself before the package reads a byte of data, so a damaged or hostile file fails
with SafetensorError naming the file and the problem (an unknown dtype, a size that does not
match shape and dtype, overlapping or out-of-range offsets, a truncated file, a huge header),
and nothing is allocated beyond what the file holds.

bfloat16 is the header dtype "BF16", stored as ml_dtypes' bfloat16 (gradflow's). As in
safetensors.torch, tensors that overlap in memory are refused on saving (RuntimeError);
unlike it, a non-contiguous tensor is saved (as a contiguous copy) rather than refused.
"""
from __future__ import annotations

import importlib
import json
import math
import os
from types import ModuleType
from typing import Any, Callable

import numpy as np

from . import dtypes
from .backend import CPU, as_device, move_array
from .tensor import Tensor

__all__ = ["SafetensorError", "save", "save_file", "load", "load_file"]

# safetensors' header dtype names, to gradflow dtypes
DTYPES = {"F64": dtypes.float64, "F32": dtypes.float32, "F16": dtypes.float16,
          "BF16": dtypes.bfloat16, "I64": dtypes.int64, "I32": dtypes.int32,
          "I16": dtypes.int16, "I8": dtypes.int8, "U8": dtypes.uint8, "BOOL": dtypes.bool}
_FOREIGN = {"U16", "U32", "U64", "C64", "F8_E4M3", "F8_E4M3FNUZ", "F8_E5M2", "F8_E5M2FNUZ",
            "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"}
MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


class SafetensorError(ValueError):
    """A file or buffer that is not a readable safetensors file (safetensors.SafetensorError,
    as a ValueError)."""


def _package() -> ModuleType:
    """The safetensors package, its NumPy API imported (`.numpy`)."""
    try:
        importlib.import_module("safetensors.numpy")
        return importlib.import_module("safetensors")
    except ImportError:
        raise ImportError("gradflow.safetensors needs the safetensors package: pip install "
                          "'gradflow[safetensors]' (or pip install 'safetensors>=0.4')") from None


# -- save -------------------------------------------------------------------------------------
def save(tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors bytes of `tensors` (safetensors.torch.save)."""
    arrays = _host_arrays(tensors, metadata)
    return _call("save", "<bytes>", lambda st: st.numpy.save(arrays, metadata=metadata))


def save_file(tensors: dict[str, Tensor], filename: str | os.PathLike,
              metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` to the file `filename` (safetensors.torch.save_file)."""
    if not isinstance(filename, (str, os.PathLike)):
        raise TypeError(f"save_file: filename must be a str or os.PathLike, got "
                        f"{type(filename).__name__}")
    arrays = _host_arrays(tensors, metadata)
    _call("save_file", repr(os.fspath(filename)),
          lambda st: st.numpy.save_file(arrays, filename, metadata=metadata))


def _host_arrays(tensors: Any, metadata: Any) -> dict[str, np.ndarray]:
    if not isinstance(tensors, dict):
        raise ValueError(f"safetensors: expected a dict of [str, Tensor], got "
                         f"{type(tensors).__name__}")
    for key, value in tensors.items():
        if not isinstance(key, str):
            raise ValueError(f"safetensors: key {key!r} is a {type(key).__name__}, not a str")
        if not isinstance(value, Tensor):
            raise ValueError(f"safetensors: key `{key}` is invalid, expected a gradflow Tensor "
                             f"but received {type(value).__name__}")
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise ValueError("safetensors: metadata must be a dict of str to str, got "
                         f"{str(metadata)[:80]}")
    _refuse_overlaps(tensors)
    arrays = {key: move_array(t.detach().array, CPU) for key, t in tensors.items()}
    # NOTE: not np.ascontiguousarray, which makes a 0-d array 1-d
    return {key: a if a.flags.c_contiguous else a.copy(order="C") for key, a in arrays.items()}


def _refuse_overlaps(tensors: dict[str, Tensor]) -> None:
    """As safetensors.torch: tensors whose memory overlaps would come back as copies."""
    areas: dict[str, list] = {}
    for key, t in tensors.items():
        a = t.array
        if a.size == 0:
            continue
        ptr = a.__array_interface__["data"][0] if isinstance(a, np.ndarray) else a.data.ptr
        low = sum(min(0, (n - 1) * s) for n, s in zip(a.shape, a.strides))
        high = sum(max(0, (n - 1) * s) for n, s in zip(a.shape, a.strides)) + a.itemsize
        areas.setdefault(str(t.device), []).append((ptr + low, ptr + high, key))
    failing = []
    for spans in areas.values():
        spans.sort()
        group, stop = [], -1
        for begin, end, key in spans:
            if begin < stop:
                group.append(key)
                stop = max(stop, end)
                continue
            if len(group) > 1:
                failing.append(group)
            group, stop = [key], end
        if len(group) > 1:
            failing.append(group)
    if failing:
        raise RuntimeError(
            "safetensors: some tensors share memory, this will lead to duplicate memory on "
            "disk and potential differences when loading them again: "
            f"{failing}; save copies (t.clone()) or only one of each group")


# -- load -------------------------------------------------------------------------------------
def load(data: bytes) -> dict[str, Tensor]:
    """The tensors of safetensors bytes, on the CPU, in the order of their data
    (safetensors.torch.load)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"load: data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    entries = _check_header(data[:8 + min(_length(data[:8]), MAX_HEADER)], len(data), "<bytes>")
    found = _call("load", "<bytes>", lambda st: st.deserialize(data))
    out = {}
    for name, view in sorted(found, key=lambda item: _begin(entries, item[0])):
        dtype, shape = DTYPES[view["dtype"]], tuple(view["shape"])
        if (name not in entries or entries[name][:2] != (dtype, shape)
                or len(view["data"]) != math.prod(shape) * dtype.itemsize):
            raise SafetensorError(f"load: <bytes>: the safetensors package read tensor "
                                  f"{name!r} differently from its header")
        array = np.frombuffer(bytearray(view["data"]), dtype=dtype).reshape(shape)
        out[name] = Tensor._wrap(array)
    return out


def load_file(filename: str | os.PathLike, device: str | int = "cpu") -> dict[str, Tensor]:
    """The tensors of a safetensors file on `device` ('cpu', 'cuda', 'cuda:N' or a GPU index),
    in the order of their data (safetensors.torch.load_file)."""
    if not isinstance(filename, (str, os.PathLike)):
        raise TypeError(f"load_file: filename must be a str or os.PathLike, got "
                        f"{type(filename).__name__}")
    target = as_device(device)
    name = repr(os.fspath(filename))
    with open(filename, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        head += fh.read(min(_length(head), MAX_HEADER, size))
    entries = _check_header(head, size, name)

    def read(st: ModuleType) -> dict[str, np.ndarray]:
        with st.safe_open(filename, framework="np") as f:
            return {key: f.get_tensor(key) for key in f.keys()}

    arrays = _call("load_file", name, read)
    out = {}
    for key, array in sorted(arrays.items(), key=lambda item: _begin(entries, item[0])):
        if key not in entries or entries[key][:2] != (array.dtype, array.shape):
            raise SafetensorError(f"load_file: {name}: the safetensors package read tensor "
                                  f"{key!r} differently from its header")
        if not array.flags.writeable:
            array = array.copy()
        out[key] = Tensor._wrap(move_array(array, target))
    return out


def _begin(entries: dict[str, tuple], key: str) -> int:
    """Where a tensor's data starts: safetensors.torch returns tensors in this order."""
    return entries[key][2] if key in entries else -1


def _length(head: bytes) -> int:
    return int.from_bytes(head[:8], "little") if len(head) >= 8 else 0


def _check_header(head: bytes, size: int, name: str) -> dict[str, tuple]:
    """{tensor: (dtype, shape, begin, end)} from a file's first bytes `head` and its `size`,
    every field checked as the format demands; SafetensorError names what is wrong."""
    def fail(what: str) -> SafetensorError:
        return SafetensorError(f"safetensors: {name}: {what}")

    if size < 8:
        raise fail(f"the file is truncated: {size} bytes, fewer than the 8-byte header length")
    length = _length(head)
    if length > MAX_HEADER:
        raise fail(f"the header length is {length} bytes, more than the {MAX_HEADER} "
                   "safetensors allows (a damaged or hostile file)")
    if 8 + length > size:
        raise fail(f"the header of {length} bytes runs past the end of the file ({size} "
                   "bytes): the file is truncated")
    try:
        header = json.loads(head[8:8 + length].decode("utf-8"))
    except RecursionError:
        raise fail("the JSON header is nested too deeply") from None
    except ValueError as err:  # bad UTF-8 or bad JSON
        raise fail(f"the header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise fail(f"the header is a JSON {type(header).__name__}, not an object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(
            isinstance(v, str) for v in meta.values())):
        raise fail(f"__metadata__ must map str to str, got {str(meta)[:80]}")
    data_size = size - 8 - length
    entries = {}
    for key, info in header.items():
        if not (isinstance(info, dict) and {"dtype", "shape", "data_offsets"} <= set(info)):
            raise fail(f"tensor {key!r} lacks dtype, shape or data_offsets: {str(info)[:120]}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code in _FOREIGN:
            raise fail(f"tensor {key!r} has dtype {code}, which gradflow does not have (it "
                       f"reads {', '.join(DTYPES)})")
        if not isinstance(code, str) or code not in DTYPES:
            raise fail(f"tensor {key!r} has unknown dtype {str(code)[:40]!r}")
        if not (isinstance(shape, list) and all(_is_int(n) and n >= 0 for n in shape)):
            raise fail(f"tensor {key!r} has bad shape {str(shape)[:80]}")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(_is_int(n) for n in offsets) and 0 <= offsets[0] <= offsets[1]):
            raise fail(f"tensor {key!r} has bad data_offsets {str(offsets)[:80]}")
        dtype = DTYPES[code]
        begin, end = offsets
        nbytes = math.prod(shape) * dtype.itemsize
        if end - begin != nbytes:
            raise fail(f"tensor {key!r} of shape {shape} and dtype {code} needs {nbytes} bytes "
                       f"but its data_offsets {offsets} span {end - begin}")
        if end > data_size:
            raise fail(f"tensor {key!r} has data_offsets {offsets} out of range: the data "
                       f"holds {data_size} bytes (the file is truncated or the header wrong)")
        entries[key] = (dtype, tuple(shape), begin, end)
    done, last = 0, None
    for key, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: kv[1][2:]):
        if begin < done:
            raise fail(f"tensors {last!r} and {key!r} overlap (data_offsets up to {done} and "
                       f"from {begin})")
        if begin > done:
            raise fail(f"the data has a hole of {begin - done} bytes before tensor {key!r}")
        done, last = end, key
    if done != data_size:
        raise fail(f"the tensors cover {done} of the {data_size} data bytes; the rest is "
                   "unaccounted for")
    return entries


def _call(op: str, name: str, action: Callable[[ModuleType], Any]) -> Any:
    """`action(the safetensors package)`, its errors turned into SafetensorError."""
    st = _package()
    try:
        return action(st)
    except st.SafetensorError as err:
        raise SafetensorError(f"{op}: {name}: {err}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
