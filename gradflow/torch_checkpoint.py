"""Reading PyTorch checkpoints (torch.save's zip format) without PyTorch and without running code.

`gradflow.load` hands a zip archive here when it holds `<archive>/data.pkl` and no gradflow
structure.json. torch.save writes, under one top folder `<archive>/`:
  data.pkl        the object, pickled (protocol 2); every storage is a persistent id
                  ('storage', <storage class>, key, location, numel), its bytes in data/<key>
  data/<key>      one uncompressed blob per storage, in the byte order of `byteorder`
  byteorder       'little' or 'big' (absent in old files: little), version, .format_version ...
Tensors are rebuilt from a storage by `torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, requires_grad, hooks, metadata)`, parameters by `_rebuild_parameter(tensor, ...)`.

data.pkl is never handed to Python's unpickler. A small interpreter runs its opcodes (as
decoded by pickletools) on a stack of plain values, and a GLOBAL resolves only through an
explicit allow-list of the globals a tensor checkpoint needs (as torch.load(weights_only=True)
does), each to a stand-in written here; any other global (`posix.system`, `builtins.eval`, a
module class) is refused with WeightsOnlyError naming it, before anything is called, whatever
`weights_only` says: a pickled nn.Module needs PyTorch's classes, which gradflow lacks.

Each storage is read once, straight from its zip member into its final NumPy array, in chunks:
the file is never held in memory whole, and no size is allocated that the file does not hold.
Tensors viewing one storage (shared storages, slices, transposes) become NumPy views of one
array, so on the CPU they share memory as in PyTorch; moved to a GPU each is its own copy.
A torch.nn.Parameter becomes a gradflow.nn.Parameter. Every way a file can be wrong raises
CheckpointError.
"""
from __future__ import annotations

import math
import pickle
import pickletools
import re
import struct
import zipfile
from collections import Counter, OrderedDict
from typing import Any, Callable

import numpy as np

from . import dtypes
from .backend import device
from .serialization import CheckpointError, WeightsOnlyError, _placed, stored_member_problem
from .tensor import Tensor

_PKL = re.compile(r"([^/]+)/data\.pkl")
_CHUNK = 1 << 24

# torch's legacy storage classes (all that torch.save writes) and dtype names, to gradflow dtypes
_STORAGES = {"DoubleStorage": dtypes.float64, "FloatStorage": dtypes.float32,
             "HalfStorage": dtypes.float16, "BFloat16Storage": dtypes.bfloat16,
             "LongStorage": dtypes.int64, "IntStorage": dtypes.int32,
             "ShortStorage": dtypes.int16, "CharStorage": dtypes.int8,
             "ByteStorage": dtypes.uint8, "BoolStorage": dtypes.bool}
_NO_STORAGE = {"ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
               "QInt8Storage": "qint8", "QInt32Storage": "qint32", "QUInt8Storage": "quint8",
               "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4"}
_DTYPES = {"float64": dtypes.float64, "float32": dtypes.float32, "float16": dtypes.float16,
           "bfloat16": dtypes.bfloat16, "int64": dtypes.int64, "int32": dtypes.int32,
           "int16": dtypes.int16, "int8": dtypes.int8, "uint8": dtypes.uint8,
           "bool": dtypes.bool}
_NO_DTYPE = {"complex32", "complex64", "complex128", "uint16", "uint32", "uint64",
             "float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz",
             "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8", "bits16", "bits1x8", "bits2x4",
             "bits4x2", "qint8", "qint32", "quint8", "quint4x2", "quint2x4",
             *(f"int{n}" for n in range(1, 8)), *(f"uint{n}" for n in range(1, 8))}
# globals torch.load(weights_only=True) admits but gradflow has no tensor kind for
_NO_KIND = {"_rebuild_sparse_tensor": "sparse", "_rebuild_nested_tensor": "nested",
            "_rebuild_qtensor": "quantized", "_rebuild_meta_tensor_no_storage": "meta",
            "_rebuild_wrapper_subclass": "wrapper subclass",
            "_rebuild_device_tensor_from_numpy": "NumPy-rebuilt device",
            "_rebuild_device_tensor_from_cpu_tensor": "device",
            "_rebuild_xla_tensor": "XLA", "_rebuild_mtia_tensor": "MTIA"}
_LAYOUT = "torch.serialization._get_layout"
# opcodes whose argument is a value pushed on the stack as it is
_VALUES = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT",
           "BINFLOAT", "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES",
           "BINBYTES8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_EMPTY = {"EMPTY_LIST": list, "EMPTY_TUPLE": tuple, "EMPTY_DICT": dict, "EMPTY_SET": set}
# what a damaged pickle makes the interpreter raise, besides CheckpointError
_DAMAGE = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
           RecursionError, EOFError, struct.error, pickle.UnpicklingError)


def is_torch_archive(names: list[str]) -> bool:
    """Whether a zip's member names are torch.save's: some `<archive>/data.pkl`, no gradflow
    structure.json."""
    return "structure.json" not in names and any(_PKL.fullmatch(n) for n in names)


def read(zf: zipfile.ZipFile, path: str, size: int, relocate: Callable) -> Any:
    """The object of the torch.save archive `zf` (the file `path`, `size` bytes), its tensors
    placed by `relocate` (gradflow.serialization's map_location handling)."""
    return _TorchReader(zf, path, size, relocate).run()


class _Forward(Exception):
    """Carries an error that is the caller's, not the file's (a map_location callable's, no
    CUDA), past the handler that turns damage into CheckpointError."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Global:
    """A stand-in for one allowed global: `call` gets the REDUCE arguments."""

    def __init__(self, name: str, call: Callable | None = None) -> None:
        self.name, self.call = name, call

    def __repr__(self) -> str:
        return f"<global {self.name}>"


class _StorageType(_Global):
    def __init__(self, name: str, dtype: np.dtype | None) -> None:
        super().__init__(name)
        self.dtype = dtype  # None for UntypedStorage (bytes)


class _Storage:
    """One data/<key> blob as a flat host array (byte-swapped to native order when typed)."""

    def __init__(self, array: np.ndarray, location: str, key: str, swap: bool) -> None:
        self.array, self.location, self.key, self.swap = array, location, key, swap
        self.swapped_as: np.dtype | None = None  # the dtype an untyped big-endian blob took


class _TorchReader:
    def __init__(self, zf: zipfile.ZipFile, path: str, size: int, relocate: Callable) -> None:
        self.zf, self.path, self.size, self.relocate = zf, path, size, relocate
        self.storages: dict[str, _Storage] = {}
        self.members: dict[str, zipfile.ZipInfo] = {}
        self.prefix = ""
        self.swap = False
        self.globals = self._allowed()

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"load: {self.path} (a PyTorch checkpoint): {what}")

    # -- the archive --------------------------------------------------------------------------
    def run(self) -> Any:
        listed = self.zf.namelist()
        if len(set(listed)) != len(listed):
            twice = sorted({n for n in listed if listed.count(n) > 1})
            raise self.fail(f"duplicate member names {twice[:5]}; refused as ambiguous")
        prefixes = sorted(m.group(1) for m in map(_PKL.fullmatch, listed) if m)
        if len(prefixes) != 1:
            raise self.fail(f"{len(prefixes)} data.pkl records ({prefixes[:5]}); expected one")
        self.prefix = prefixes[0]
        self.members = {info.filename: info for info in self.zf.infolist()}
        order = self.record("byteorder", 16) if f"{self.prefix}/byteorder" in self.members \
            else b"little"
        if order not in (b"little", b"big"):
            raise self.fail(f"byteorder record says {order[:16]!r}; expected 'little' or 'big'")
        self.swap = order.decode() != _NATIVE
        data = self.record("data.pkl", self.size)
        try:
            return self.interpret(data)
        except CheckpointError:
            raise
        except _Forward as forward:
            raise forward.error from None
        except RecursionError:
            raise self.fail("data.pkl is nested too deeply") from None
        except MemoryError:
            raise self.fail("data.pkl asks for more memory than there is") from None
        except _DAMAGE as err:
            raise self.fail(f"data.pkl is corrupt ({type(err).__name__}: "
                            f"{str(err)[:200]})") from None

    def member(self, record: str) -> zipfile.ZipInfo:
        name = f"{self.prefix}/{record}"
        info = self.members.get(name)
        if info is None:
            raise self.fail(f"the archive has no record {name!r}")
        problem = stored_member_problem(info, self.size)
        if problem:
            raise self.fail(f"record {name!r} {problem}")
        return info

    def record(self, record: str, limit: int) -> bytes:
        info = self.member(record)
        if info.file_size > limit:
            raise self.fail(f"record {record!r} has {info.file_size} bytes, more than the "
                            f"{limit} expected")
        with self.zf.open(info) as fh:
            return fh.read()

    def storage(self, pid: Any) -> _Storage:
        """persistent_load: ('storage', storage class, key, location, numel) -> _Storage."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise self.fail(f"bad persistent id {str(pid)[:120]}; expected ('storage', "
                            "storage class, key, location, numel)")
        _, kind, key, location, numel = pid
        if not (isinstance(kind, _StorageType) and isinstance(key, str)
                and isinstance(location, str) and _is_int(numel) and numel >= 0):
            raise self.fail(f"bad persistent id {str(pid)[:120]}")
        dtype = dtypes.uint8 if kind.dtype is None else kind.dtype
        if key in self.storages:
            found = self.storages[key]
            if found.array.dtype != dtype or found.array.size != numel:
                raise self.fail(f"storage {key!r} is referenced as {numel} x {dtype} and as "
                                f"{found.array.size} x {found.array.dtype}")
            return found
        info = self.member(f"data/{key}")
        nbytes = numel * dtype.itemsize
        if info.file_size != nbytes:
            raise self.fail(f"storage {key!r} should hold {numel} x {dtype} ({nbytes} bytes) "
                            f"but its record has {info.file_size} bytes")
        array = np.empty(numel, dtype)
        view = array.view(np.uint8).data  # NOTE: ml_dtypes arrays export no buffer themselves
        done = 0
        with self.zf.open(info) as opened:
            fh: Any = opened  # a zipfile.ZipExtFile, which has readinto
            while done < nbytes:
                got = fh.readinto(view[done:done + _CHUNK])
                if not got:
                    raise self.fail(f"storage {key!r} ends early")
                done += got
            fh.read(1)  # reach the end of the record so zipfile checks its CRC
        if self.swap and kind.dtype is not None:
            array.byteswap(inplace=True)
        found = self.storages[key] = _Storage(array, location, key, self.swap)
        return found

    # -- the pickle ---------------------------------------------------------------------------
    def interpret(self, data: bytes) -> Any:
        """Run data.pkl's opcodes on plain values; globals come only from the allow-list."""
        stack: list = []
        marks: list[int] = []
        memo: dict = {}

        def pop_mark() -> list:
            if not marks:
                raise self.fail("data.pkl pops a MARK it never set")
            start = marks.pop()
            items = stack[start:]
            del stack[start:]
            return items

        def top(kind: type | tuple, op: str) -> Any:
            if not stack or not isinstance(stack[-1], kind):
                found = type(stack[-1]).__name__ if stack else "an empty stack"
                raise self.fail(f"data.pkl applies {op} to {found}")
            return stack[-1]

        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name in _VALUES:
                stack.append(arg)
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name])
            elif name in _EMPTY:
                stack.append(_EMPTY[name]())
            elif name in ("PROTO", "FRAME"):
                continue
            elif name == "MARK":
                marks.append(len(stack))
            elif name == "STOP":
                if len(stack) != 1 or marks:
                    raise self.fail("data.pkl stops with a malformed stack")
                return stack.pop()
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                if len(stack) < n:
                    raise self.fail(f"data.pkl's {name} finds too few items")
                items = stack[-n:]
                del stack[-n:]
                stack.append(tuple(items))
            elif name == "TUPLE":
                stack.append(tuple(pop_mark()))
            elif name == "LIST":
                stack.append(pop_mark())
            elif name == "APPEND":
                value = stack.pop()
                top(list, name).append(value)
            elif name == "APPENDS":
                items = pop_mark()
                top(list, name).extend(items)
            elif name == "DICT":
                items = pop_mark()
                stack.append(self.pairs(items, name, {}))
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                top(dict, name)[key] = value
            elif name == "SETITEMS":
                items = pop_mark()
                self.pairs(items, name, top(dict, name))
            elif name == "ADDITEMS":
                items = pop_mark()
                top(set, name).update(items)
            elif name == "FROZENSET":
                stack.append(frozenset(pop_mark()))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise self.fail(f"data.pkl reads memo entry {arg}, which it never wrote")
                stack.append(memo[arg])
            elif name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                stack.append(self.find(module, attr))
            elif name == "STACK_GLOBAL":
                attr, module = stack.pop(), stack.pop()
                if not (isinstance(module, str) and isinstance(attr, str)):
                    raise self.fail("data.pkl's STACK_GLOBAL names a global with non-strings")
                stack.append(self.find(module, attr))
            elif name in ("REDUCE", "NEWOBJ"):
                args, func = stack.pop(), stack.pop()
                stack.append(self.call(func, args))
            elif name == "BUILD":
                state = stack.pop()
                self.build(top(object, name), state)
            elif name == "BINPERSID":
                stack.append(self.storage(stack.pop()))
            elif name in ("INST", "OBJ") and isinstance(arg, str):
                module, _, attr = arg.partition(" ")
                self.find(module, attr)  # refuses most; an allowed one is still refused below
                raise self.fail(f"data.pkl builds an object with {name}, which torch.save never "
                                "writes")
            else:
                raise self.fail(f"data.pkl uses the pickle opcode {name}, which a tensor "
                                "checkpoint does not need; refused")
        raise self.fail("data.pkl ends without a STOP")  # genops raises first; kept for safety

    def pairs(self, items: list, op: str, into: dict) -> dict:
        if len(items) % 2:
            raise self.fail(f"data.pkl's {op} has an odd number of items")
        for key, value in zip(items[::2], items[1::2]):
            into[key] = value
        return into

    def find(self, module: str, attr: str) -> Any:
        if module == "__builtin__":  # protocol 2 writes Python 2's names, as pickle maps them
            module = "builtins"
        name = f"{module}.{attr}"
        found = self.globals.get(name)
        if found is not None:
            return found
        if module == "torch" and attr in _NO_DTYPE:
            raise self.fail(f"it holds torch.{attr} data; gradflow has no {attr} dtype (it has "
                            f"{', '.join(_DTYPES)}); convert the tensors in PyTorch first "
                            "(complex ones e.g. with torch.view_as_real)")
        if module == "torch" and attr in _NO_STORAGE:
            what = _NO_STORAGE[attr]
            raise self.fail(f"it holds {what} tensors (torch.{attr}); gradflow has no {what} "
                            "dtype; convert them in PyTorch first (complex ones e.g. with "
                            "torch.view_as_real)")
        if module == "torch._utils" and attr in _NO_KIND or name == _LAYOUT:
            kind = _NO_KIND.get(attr, "sparse")
            raise self.fail(f"it holds {kind} tensors ({name}), which gradflow does not have")
        raise WeightsOnlyError(
            f"load: {self.path}: its pickle names the global {name!r}, which is not one a "
            "tensor checkpoint needs; refused, and nothing in the file was run. gradflow "
            "reads state_dicts, tensors and containers of them from PyTorch files, also with "
            "weights_only=False (whole pickled modules need PyTorch's own classes): in "
            "PyTorch, save model.state_dict() instead")

    def call(self, func: Any, args: Any) -> Any:
        if not isinstance(func, _Global) or func.call is None:
            raise self.fail(f"data.pkl calls {str(func)[:80]}, which is not callable here")
        if not isinstance(args, tuple):
            raise self.fail(f"data.pkl calls {func.name} with arguments of type "
                            f"{type(args).__name__}")
        return func.call(*args)

    def build(self, obj: Any, state: Any) -> None:
        """BUILD: the attributes torch pickles on a state_dict (`_metadata`) and nothing else."""
        if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
            state = state[0]
        if not (isinstance(obj, OrderedDict) and isinstance(state, dict)
                and all(isinstance(k, str) and k.isidentifier() and not k.startswith("__")
                        for k in state)):
            raise self.fail(f"data.pkl sets the state of a {type(obj).__name__} (BUILD), "
                            "which a tensor checkpoint only does for a state_dict's _metadata")
        for key, value in state.items():
            setattr(obj, key, value)

    # -- the allowed globals ------------------------------------------------------------------
    def _allowed(self) -> dict[str, Any]:
        table: dict[str, Any] = {}

        def allow(name: str, call: Callable | None = None) -> None:
            table[name] = _Global(name, call)

        allow("collections.OrderedDict", self.ordered_dict)
        allow("collections.Counter", lambda *a: Counter(self.ordered_dict(*a)))
        allow("builtins.set", lambda items=(): set(self.sequence("set", items)))
        allow("builtins.frozenset", lambda items=(): frozenset(self.sequence("frozenset",
                                                                             items)))
        allow("builtins.complex", self.complex)
        allow("builtins.bytearray", lambda *a: bytearray(self.encode("bytearray", *a)))
        allow("_codecs.encode", lambda *a: self.encode("_codecs.encode", *a))
        allow("torch.Size", self.size_of)
        allow("torch.device", self.device)
        allow("torch.Tensor")
        allow("torch.nn.parameter.Parameter", self.parameter)
        allow("torch._utils._rebuild_tensor", self.rebuild_tensor)
        allow("torch._utils._rebuild_tensor_v2", self.rebuild_tensor_v2)
        allow("torch._utils._rebuild_tensor_v3", self.rebuild_tensor_v3)
        allow("torch._utils._rebuild_parameter", self.rebuild_parameter)
        allow("torch._utils._rebuild_parameter_with_state", self.rebuild_parameter_with_state)
        allow("torch._tensor._rebuild_from_type_v2", self.rebuild_from_type)
        for name, dt in _DTYPES.items():
            table[f"torch.{name}"] = dt  # a dtype in the pickle is a gradflow dtype
        for name, dt in _STORAGES.items():
            table[f"torch.{name}"] = _StorageType(f"torch.{name}", dt)
        for name in ("torch.UntypedStorage", "torch.storage.UntypedStorage"):
            table[name] = _StorageType(name, None)
        return table

    def sequence(self, op: str, items: Any) -> list:
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise self.fail(f"data.pkl calls {op} with a {type(items).__name__}")
        return list(items)

    def ordered_dict(self, items: Any = ()) -> OrderedDict:
        if isinstance(items, dict):
            return OrderedDict(items)
        pairs = self.sequence("collections.OrderedDict", items)
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
            raise self.fail("data.pkl calls collections.OrderedDict with items that are not "
                            "pairs")
        return OrderedDict(pairs)

    def complex(self, real: Any = 0.0, imag: Any = 0.0) -> complex:
        if not all(isinstance(v, (int, float)) for v in (real, imag)):
            raise self.fail("data.pkl calls builtins.complex with non-numbers")
        return complex(real, imag)

    def encode(self, op: str, text: Any = "", encoding: Any = "latin1", *rest: Any) -> bytes:
        """bytes pickled by protocol 2: _codecs.encode(str, 'latin1'); never an allocation
        bigger than the pickle (bytearray(10**12) is refused)."""
        if isinstance(text, (bytes, bytearray)) and not rest and encoding == "latin1":
            return bytes(text)
        if not (isinstance(text, str) and encoding in ("latin1", "latin-1") and not rest):
            raise self.fail(f"data.pkl calls {op} with arguments other than (str, 'latin1')")
        return text.encode("latin1")

    def size_of(self, dims: Any = ()) -> tuple:
        if not (isinstance(dims, (tuple, list)) and all(_is_int(d) and d >= 0 for d in dims)):
            raise self.fail(f"data.pkl builds a torch.Size of {str(dims)[:80]}")
        return tuple(dims)

    def device(self, spec: Any, index: Any = None) -> device:
        try:
            return device(spec, index)
        except (TypeError, ValueError) as err:
            raise self.fail(f"data.pkl names a device gradflow does not have: {err}") from None

    def rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any) -> Tensor:
        return self.rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())

    def rebuild_tensor_v3(self, storage: Any, offset: Any, size: Any, stride: Any,
                          requires_grad: Any, hooks: Any, dtype: Any,
                          metadata: Any = None) -> Tensor:
        """Tensors of the dtypes torch stores as untyped bytes; gradflow supports none of
        those, but a file may still pair untyped storage with a known dtype."""
        if not (isinstance(dtype, np.dtype) and dtype in dtypes.SUPPORTED):
            raise self.fail(f"_rebuild_tensor_v3 needs a torch dtype, got {str(dtype)[:80]}")
        if isinstance(storage, _Storage) and storage.array.dtype != dtype:
            if storage.array.dtype != dtypes.uint8 or storage.array.size % dtype.itemsize:
                raise self.fail(f"storage {storage.key!r} ({storage.array.nbytes} bytes of "
                                f"{storage.array.dtype}) cannot be read as {dtype}")
            typed = storage.array.view(dtype)
            if storage.swap:
                if storage.swapped_as not in (None, dtype):
                    raise self.fail(f"big-endian storage {storage.key!r} is read both as "
                                    f"{storage.swapped_as} and as {dtype}")
                if storage.swapped_as is None:
                    typed.byteswap(inplace=True)
                    storage.swapped_as = dtype
            storage = _Storage(typed, storage.location, storage.key, False)
        return self.rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks,
                                      metadata)

    def rebuild_tensor_v2(self, storage: Any, offset: Any, size: Any, stride: Any,
                          requires_grad: Any, hooks: Any, metadata: Any = None) -> Tensor:
        """A view of `storage` (offset, size and stride in elements), as torch's own."""
        if not isinstance(storage, _Storage):
            raise self.fail(f"a tensor is rebuilt from {type(storage).__name__}, not a storage")
        if not (_is_int(offset) and offset >= 0 and _dims(size) and _dims(stride)
                and len(size) == len(stride)):
            raise self.fail(f"bad tensor geometry: offset {str(offset)[:40]}, size "
                            f"{str(size)[:80]}, stride {str(stride)[:80]}")
        if not isinstance(requires_grad, bool):
            raise self.fail(f"requires_grad is {type(requires_grad).__name__}, not bool")
        base = storage.array
        numel = base.size
        if math.prod(size) == 0:
            fits = offset <= numel
        else:
            fits = offset + sum((n - 1) * s for n, s in zip(size, stride)) < numel
        if not fits:
            raise self.fail(f"a tensor of size {tuple(size)}, stride {tuple(stride)} at offset "
                            f"{offset} reaches past its storage {storage.key!r} of {numel} "
                            "elements")
        try:
            array = np.lib.stride_tricks.as_strided(
                base[offset:], shape=tuple(size),
                strides=tuple(s * base.itemsize for s in stride))
        except ValueError as err:  # e.g. more dimensions than NumPy supports
            raise self.fail(f"cannot view storage {storage.key!r} as size {tuple(size)}: "
                            f"{err}") from None
        if metadata:
            if not isinstance(metadata, dict) or set(metadata) - {"neg"}:
                raise self.fail(f"tensor metadata {str(metadata)[:80]} is not supported (only "
                                "the negative bit is)")
            if metadata.get("neg"):
                array = -array  # NOTE: a copy; torch keeps the sign as a lazy bit
        if requires_grad and not dtypes.is_floating(array.dtype):
            raise self.fail(f"a {array.dtype} tensor is marked requires_grad")
        try:
            saved = device(storage.location)
        except (TypeError, ValueError):
            raise self.fail(f"storage {storage.key!r} was saved on {storage.location!r}, a "
                            "device gradflow does not have") from None
        try:
            return _placed(self.path, saved, array, self.relocate, requires_grad)
        except (RuntimeError, TypeError, ValueError) as err:
            raise _Forward(err) from None

    def rebuild_parameter(self, data: Any, requires_grad: Any, hooks: Any = None) -> Tensor:
        return self.parameter(data, requires_grad)

    def rebuild_parameter_with_state(self, data: Any, requires_grad: Any, hooks: Any,
                                     state: Any) -> Tensor:
        if _has_state(state):
            raise self.fail("a Parameter carries Python attributes, which gradflow does not "
                            "restore")
        return self.parameter(data, requires_grad)

    def parameter(self, data: Any = None, requires_grad: Any = True) -> Tensor:
        from .nn.parameter import Parameter
        if not isinstance(data, Tensor) or not isinstance(requires_grad, bool):
            raise self.fail(f"a Parameter is rebuilt from {type(data).__name__}")
        if requires_grad and not dtypes.is_floating(data.dtype):
            raise self.fail(f"a {data.dtype} Parameter is marked requires_grad")
        return Parameter(data, requires_grad)

    def rebuild_from_type(self, func: Any, new_type: Any, args: Any, state: Any) -> Any:
        """Tensor subclasses: only plain tensors and Parameters, without attributes."""
        kind = getattr(new_type, "name", None)
        if kind not in ("torch.Tensor", "torch.nn.parameter.Parameter"):
            raise self.fail(f"a tensor of class {str(new_type)[:80]} is not supported")
        if _has_state(state):
            raise self.fail("a tensor carries Python attributes, which gradflow does not "
                            "restore")
        out = self.call(func, args)
        if not isinstance(out, Tensor):
            raise self.fail(f"_rebuild_from_type_v2 rebuilt a {type(out).__name__}")
        return self.parameter(out, out.requires_grad) if kind.endswith("Parameter") else out


_NATIVE = "little" if np.little_endian else "big"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dims(value: Any) -> bool:
    return isinstance(value, tuple) and all(_is_int(v) and v >= 0 for v in value)


def _has_state(state: Any) -> bool:
    parts = state if isinstance(state, tuple) else (state,)
    return any(part for part in parts)


__all__ = ["is_torch_archive", "read"]
