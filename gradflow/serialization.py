"""Checkpoints: `save(obj, f)` and `load(f, map_location=None, weights_only=None)`, mirroring
torch.save / torch.load. `f` is a path or a binary file object (io.BytesIO, an open file).

Tensors and plain containers (state dicts of modules and optimizers) are stored without pickle,
and loading them never runs code. A checkpoint is an uncompressed zip archive holding
  structure.json   {"format": "gradflow.checkpoint", "version": 1,
                    "tensors": [{"dtype", "shape", "device", "requires_grad"}, ...],
                    "root": the object, encoded as below}
  tensors/<i>.npy  tensor i, written from a host copy with np.save(allow_pickle=False)
In "root", JSON scalars and lists stand for themselves; every dict is {"__dict__": [[key, value],
...]} (key order and key types survive), a tuple is {"__tuple__": [...]}, and a tensor is
{"__tensor__": i}. Loading parses JSON and .npy headers (as literals), reads only the members
it expects by exact name, checks each member's size against its declared shape before
allocating, and refuses object arrays and duplicate, encrypted or symlink members; every way a
file can be wrong raises CheckpointError.

Anything else (a whole module, an optimizer, an instance of your own class, a set) is pickled,
as torch.save does. Version 2 of the format adds {"pickle": "data.pkl", "pickled": the first
object that needed it, as "type at path"} to the structure and the member data.pkl; tensors
are still .npy members, referenced from the pickle by persistent id (index, tensor class), so
map_location applies to them. `load` unpickles only with `weights_only=False`, which trusts the
file: unpickling runs whatever code the file names. The default (`weights_only=None`, meaning
True, as torch 2.6+) refuses such a file with WeightsOnlyError before reading its pickle. A
checkpoint that needs no pickle is still written as version 1, which older gradflow reads.

Saving to a path is atomic: a temp file in the target's directory is fsynced and then renamed
over the target, so a crash leaves the previous checkpoint intact. A file object is written in
place, from its current position.
"""
from __future__ import annotations

import ast
import io
import json
import math
import os
import pickle
import stat
import struct
import tempfile
import zipfile
from typing import IO, Any, Callable, TypeGuard

import numpy as np

from . import dtypes
from .backend import CPU, as_device, cuda_available, device, move_array
from .tensor import Tensor

FORMAT = "gradflow.checkpoint"
VERSION = 2  # what this gradflow reads; a checkpoint with no pickled part is written as 1
_PLAIN_VERSION = 1
_STRUCTURE = "structure.json"
_PICKLE = "data.pkl"
_DTYPES = {str(dt): dt for dt in dtypes.SUPPORTED}
_BFLOAT16_BITS = (np.dtype("<u2"), np.dtype("V2"))  # how bfloat16 .npy members may be stored
_SCALARS = (str, int, float, bool, type(None))
_CHUNK = 1 << 24
_MAX_NPY_HEADER = 10_000  # NumPy's own default limit
# NOTE: zipfile reports damage in many ways: NotImplementedError for a mangled version or flag
# field, UnicodeDecodeError for a name flagged UTF-8 that is not. All of them mean "corrupt".
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error, NotImplementedError,
            UnicodeDecodeError)
_UNSUPPORTED_FLAGS = 0x61  # bit 0 encrypted, bit 5 compressed patched data, bit 6 strong encryption


class CheckpointError(ValueError):
    """A file that is not a readable gradflow checkpoint (foreign, corrupt or hostile)."""


class WeightsOnlyError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint holding pickled objects, loaded with weights_only=True (the default). Also a
    pickle.UnpicklingError, the type torch.load raises for it."""


class _NotPlain(TypeError):
    """An object that the pickle-free encoding cannot store; `save` pickles the object then."""

    def __init__(self, message: str, obj: Any, where: str) -> None:
        super().__init__(message)
        self.found = f"{_type_name(obj)} at {_where(where)}"


# -- save -------------------------------------------------------------------------------------
def save(obj: Any, f: str | os.PathLike | IO[bytes], pickle_protocol: int = 2) -> None:
    """Write `obj` to the path or binary file object `f` (torch.save). Tensors, dicts, lists,
    tuples, str, int, float, bool and None are stored without pickle (NumPy scalars as the
    equivalent Python numbers); anything else is pickled with `pickle_protocol`, its tensors
    still stored as arrays, and loads only with weights_only=False."""
    tensors: list[Tensor] = []
    try:
        root = _encode(obj, "", tensors, {}, set())
        doc: dict = {"format": FORMAT, "version": _PLAIN_VERSION}
        pickled = None
    except _NotPlain as why:
        tensors = []
        pickled = _pickled(obj, tensors, pickle_protocol, why)
        root = None
        doc = {"format": FORMAT, "version": VERSION, "pickle": _PICKLE, "pickled": why.found}
    doc["tensors"] = [{"dtype": str(t.dtype), "shape": list(t.shape), "device": str(t.device),
                       "requires_grad": bool(t.requires_grad)} for t in tensors]
    doc["root"] = root
    structure = json.dumps(doc)
    if hasattr(f, "write"):
        _write_archive(f, structure, pickled, tensors)  # type: ignore[arg-type]
        return
    path = _fspath("save", f)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_archive(fh, structure, pickled, tensors)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _write_archive(fh: IO[bytes], structure: str, pickled: bytes | None, tensors: list) -> None:
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(_STRUCTURE, structure)
        if pickled is not None:
            zf.writestr(_PICKLE, pickled)
        for i, t in enumerate(tensors):
            _write_array(zf, f"tensors/{i}.npy", move_array(t.detach().array, CPU))


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


class _TensorPickler(pickle.Pickler):
    """Pickles every tensor as a persistent id (index into `tensors`, class) so its array goes
    to its own .npy member and shared tensors stay shared."""

    def __init__(self, fh: IO[bytes], protocol: int, tensors: list) -> None:
        super().__init__(fh, protocol)
        self.tensors, self.index = tensors, {}  # type: ignore[var-annotated]

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, Tensor):
            return None
        if id(obj) not in self.index:
            self.index[id(obj)] = len(self.tensors)
            self.tensors.append(obj)
        return ("tensor", self.index[id(obj)], type(obj))


def _pickled(obj: Any, tensors: list, protocol: int, why: _NotPlain) -> bytes:
    buf = io.BytesIO()
    try:
        _TensorPickler(buf, protocol, tensors).dump(obj)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise TypeError(f"{why}; pickling it failed too ({type(err).__name__}: {err})") from None
    return buf.getvalue()


def _write_array(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    if array.dtype == dtypes.bfloat16:  # NOTE: np.save would write an opaque '<V2'; the
        array = array.view(np.uint16)  # structure's "dtype" says bfloat16, `array` reads it
    with zf.open(name, "w", force_zip64=array.nbytes > (1 << 30)) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)


def _encode(obj: Any, where: str, tensors: list, index: dict, active: set) -> Any:
    """JSON-ready form of `obj`; tensors go to `tensors` once each (shared ones stay shared)."""
    if isinstance(obj, Tensor):
        if id(obj) not in index:
            index[id(obj)] = len(tensors)
            tensors.append(obj)
        return {"__tensor__": index[id(obj)]}
    if isinstance(obj, _SCALARS) and type(obj) in _SCALARS:
        return obj
    if isinstance(obj, (np.bool_, np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, (int, float)):  # subclasses such as IntEnum store their value
        return int(obj) if isinstance(obj, int) else float(obj)
    if type(obj) not in (dict, list, tuple) and not isinstance(obj, dict):
        raise _NotPlain(f"save: cannot store object of type {type(obj).__name__} at "
                        f"{_where(where)} without pickle; stored so: Tensor, dict, list, "
                        "tuple, str, int, float, bool, None", obj, where)
    if id(obj) in active:
        raise _NotPlain(f"save: reference cycle at {_where(where)}", obj, where)
    active.add(id(obj))
    if isinstance(obj, dict):
        pairs = []
        for key, value in obj.items():
            if not isinstance(key, _SCALARS):
                raise _NotPlain(f"save: cannot store dict key {key!r} of type "
                                f"{type(key).__name__} at {_where(where)}; keys must be str, "
                                "int, float, bool or None", key, where)
            key = _encode(key, where, tensors, index, active)
            pairs.append([key, _encode(value, f"{where}[{key!r}]", tensors, index, active)])
        out: dict[str, list] | list = {"__dict__": pairs}
    else:
        items = [_encode(v, f"{where}[{i}]", tensors, index, active) for i, v in enumerate(obj)]
        out = {"__tuple__": items} if isinstance(obj, tuple) else items
    active.discard(id(obj))
    return out


def _where(where: str) -> str:
    return where or "the top level"


def _file_mode(path: str) -> int:
    """Keep the mode of the file being replaced; a new file gets 0o666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- load -------------------------------------------------------------------------------------
def load(f: str | os.PathLike | IO[bytes], map_location: Any = None,
         weights_only: bool | None = None) -> Any:
    """Read a checkpoint written by `save` from a path or binary file object (torch.load).

    Tensors return to the device they were saved from unless `map_location` says otherwise:
    'cpu', 'cuda', 'cuda:N', a gradflow.device, a dict from saved device strings to targets
    ({'cuda:1': 'cuda:0'}; devices not named stay), or a callable `(tensor, location)`, given
    each tensor loaded on the CPU and the device string it was saved from, that returns the
    tensor to use (moved as it likes) or None for the saved device (torch's callable gets a
    storage). `weights_only=None` means True: a checkpoint of pickled objects is refused with
    WeightsOnlyError; `weights_only=False` unpickles it, which runs code named by the file, so
    pass it only for files you trust. Files written by torch.save (its zip format) are read too,
    by gradflow.torch_checkpoint, which never runs their pickle, whatever `weights_only` says;
    raw pickles and legacy torch.save files are refused.
    """
    relocate = _relocator(map_location)
    if weights_only is None:
        weights_only = True
    if hasattr(f, "read"):
        name = getattr(f, "name", None)
        name = repr(name) if isinstance(name, str) else f"<{type(f).__name__}>"
        fh = f if _seekable(f) else io.BytesIO(f.read())  # type: ignore[union-attr]
        return _load_from(fh, name, relocate, weights_only)  # type: ignore[arg-type]
    path = _fspath("load", f)
    with open(path, "rb") as fh:
        return _load_from(fh, repr(path), relocate, weights_only)


def _seekable(f: Any) -> bool:
    try:
        return bool(f.seekable()) and f.tell() == 0
    except (AttributeError, OSError, ValueError):
        return False


def _load_from(fh: IO[bytes], name: str, relocate: Callable, weights_only: bool) -> Any:
    head = fh.read(4)
    size = fh.seek(0, os.SEEK_END)
    if head != b"PK\x03\x04":
        raise CheckpointError(f"load: {name} is not a gradflow checkpoint ({_sniff(head)})")
    fh.seek(0)
    try:
        with zipfile.ZipFile(fh) as zf:
            from . import torch_checkpoint
            if torch_checkpoint.is_torch_archive(zf.namelist()):
                return torch_checkpoint.read(zf, name, size, relocate)
            return _Reader(name, zf, size, relocate, weights_only).run()
    except _CORRUPT as err:
        raise CheckpointError(f"load: {name} is truncated or corrupt: {err}") from None


def _sniff(head: bytes) -> str:
    if head == b"\x80\x02\x8a\x0a":  # pickle protocol 2, then torch's magic number
        return ("it is a legacy torch.save file (PyTorch before 1.6, or saved with "
                "_use_new_zipfile_serialization=False), which is a raw pickle that gradflow "
                "never runs; convert it with PyTorch: torch.save(torch.load(f), g) writes the "
                "zip format by default (_use_new_zipfile_serialization=True)")
    if head[:1] == b"\x80":
        return "it looks like a pickle file, e.g. a legacy torch.save; gradflow never unpickles"
    if not head:
        return "the file is empty"
    return "it is not a zip archive"


class _Reader:
    def __init__(self, name: str, zf: zipfile.ZipFile, size: int, relocate: Callable,
                 weights_only: bool) -> None:
        self.path, self.zf, self.size, self.relocate = name, zf, size, relocate
        self.weights_only = weights_only
        self.tensors: dict[int, Tensor] = {}
        self.meta: list = []  # the structure's "tensors" list, read by run()

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"load: {self.path}: {what}")

    def run(self) -> Any:
        listed = self.zf.namelist()
        names = set(listed)
        if len(names) != len(listed):
            twice = sorted({n for n in listed if listed.count(n) > 1})
            raise self.fail(f"duplicate member names {twice}; refused as ambiguous")
        if _STRUCTURE not in names:
            kind = ("it looks like a PyTorch checkpoint"
                    if any(n.endswith("data.pkl") for n in names) else f"it has no {_STRUCTURE}")
            raise CheckpointError(f"load: {self.path} is not a gradflow checkpoint ({kind})")
        try:
            _, fh = self.member(_STRUCTURE)
            with fh:
                doc = json.loads(fh.read().decode("utf-8"))
        except RecursionError:
            raise self.fail(f"{_STRUCTURE} is nested too deeply") from None
        except ValueError as err:  # bad UTF-8, bad JSON, or an integer too long to convert
            raise self.fail(f"{_STRUCTURE} is not valid JSON ({err})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CheckpointError(f"load: {self.path} is not a gradflow checkpoint "
                                  f"({_STRUCTURE} has no format marker {FORMAT!r})")
        version = doc.get("version")
        if not _is_int(version) or version < 1:
            raise self.fail(f"bad format version {version!r}")
        if version > VERSION:
            raise self.fail(f"format version {version} is newer than this gradflow reads "
                            f"(up to {VERSION}); upgrade gradflow")
        meta = doc.get("tensors")
        if not isinstance(meta, list) or "root" not in doc:
            raise self.fail(f"{_STRUCTURE} lacks the 'tensors' list or the 'root' entry")
        self.meta = meta
        if "pickle" in doc:
            return self.unpickle(doc)
        try:
            return self.decode(doc["root"], "")
        except RecursionError:
            raise self.fail(f"{_STRUCTURE} is nested too deeply") from None

    def unpickle(self, doc: dict) -> Any:
        """The pickled object of a version 2 checkpoint, if the caller trusts the file."""
        found = doc.get("pickled")
        what = "pickled Python objects" + (f" (first {found[:200]})" if isinstance(found, str)
                                           else "")
        if self.weights_only:
            raise WeightsOnlyError(
                f"Weights only load failed: load: {self.path} holds {what}, and unpickling "
                "runs code named by the file, so weights_only=True (the default) refuses it. "
                "If you trust the source of the file, load it with weights_only=False; "
                "checkpoints of tensors and plain containers (state_dicts) load without it.")
        if doc.get("pickle") != _PICKLE:
            raise self.fail(f"bad pickle member name {doc.get('pickle')!r}")
        _, fh = self.member(_PICKLE)
        with fh:
            unpickler = pickle.Unpickler(fh)
            unpickler.persistent_load = self.persistent_load  # type: ignore[method-assign]
            return unpickler.load()

    def persistent_load(self, pid: Any) -> Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 3 and pid[0] == "tensor"
                and _is_int(pid[1]) and 0 <= pid[1] < len(self.meta)
                and isinstance(pid[2], type) and issubclass(pid[2], Tensor)):
            raise self.fail(f"bad tensor reference {str(pid)[:80]} in {_PICKLE}")
        _, i, cls = pid
        if i not in self.tensors:
            t = self.tensor(i)
            if cls is not Tensor:  # a Parameter, say: same array, its own class
                sub = cls.__new__(cls)
                sub._init(t.array, t.requires_grad)
                t = sub
            self.tensors[i] = t
        return self.tensors[i]

    def member(self, name: str) -> tuple[zipfile.ZipInfo, IO[bytes]]:
        """Open a member by exact name (never a path on disk), refusing compressed, encrypted
        and symlink entries and entries that claim bytes outside the file."""
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise self.fail(f"missing member {name!r}") from None
        problem = stored_member_problem(info, self.size)
        if problem:
            raise self.fail(f"member {name!r} {problem}")
        return info, self.zf.open(info)

    def decode(self, node: Any, where: str) -> Any:
        if isinstance(node, _SCALARS):
            return node
        if isinstance(node, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, dict) and len(node) == 1:
            (tag, body), = node.items()
            if tag == "__tuple__" and isinstance(body, list):
                return tuple(self.decode(v, f"{where}[{i}]") for i, v in enumerate(body))
            if tag == "__dict__" and isinstance(body, list):
                out = {}
                for pair in body:
                    if not (isinstance(pair, list) and len(pair) == 2
                            and isinstance(pair[0], _SCALARS)):
                        raise self.fail(f"bad dict entry {pair!r} at {_where(where)}")
                    out[pair[0]] = self.decode(pair[1], f"{where}[{pair[0]!r}]")
                return out
            if tag == "__tensor__" and _is_int(body) and 0 <= body < len(self.meta):
                if body not in self.tensors:
                    self.tensors[body] = self.tensor(body)
                return self.tensors[body]
        raise self.fail(f"bad node {str(node)[:80]} at {_where(where)}")

    def tensor(self, i: int) -> Tensor:
        meta = self.meta[i]
        name = f"tensors/{i}.npy"
        if not isinstance(meta, dict):
            raise self.fail(f"bad metadata for {name}")
        dtype, shape = meta.get("dtype"), meta.get("shape")
        dtype = _DTYPES.get(dtype) if isinstance(dtype, str) else None
        if dtype is None:
            raise self.fail(f"{name} has unsupported dtype {meta.get('dtype')!r} (object arrays "
                            f"are refused); expected one of {', '.join(_DTYPES)}")
        if not (isinstance(shape, list) and all(_is_int(s) and s >= 0 for s in shape)):
            raise self.fail(f"{name} has bad shape {shape!r}")
        try:
            spec: Any = meta.get("device")  # anything: device() refuses what it cannot read
            saved = device(spec)
        except (TypeError, ValueError) as err:
            raise self.fail(f"{name}: {err}") from None
        requires_grad = meta.get("requires_grad") is True
        if requires_grad and not dtypes.is_floating(dtype):
            raise self.fail(f"{name} is {dtype} but marked requires_grad; only floating point "
                            "tensors can require gradients")
        array = self.array(name, dtype, tuple(shape))
        return _placed(self.path, saved, array, self.relocate, requires_grad)

    def npy_header(self, name: str, fh: IO[bytes]) -> tuple:
        """(descr, fortran_order, shape) from a .npy header of version 1 or 2 (the ones
        np.save writes for our dtypes), parsed as a literal: never evaluated, never pickled."""
        magic = fh.read(8)
        if len(magic) < 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2):
            raise self.fail(f"{name} is not a .npy array of format version 1 or 2 (starts with "
                            f"{magic!r})")
        width = 2 if magic[6] == 1 else 4
        length = int.from_bytes(fh.read(width), "little")
        if length > _MAX_NPY_HEADER:
            raise self.fail(f"{name} has a {length}-byte .npy header (at most "
                            f"{_MAX_NPY_HEADER} allowed)")
        text = fh.read(length)
        if len(text) != length:
            raise self.fail(f"{name} ends inside its .npy header")
        if b"\\" in text:  # np.save never escapes; refusing spares literal_eval's warnings
            raise self.fail(f"{name} has a bad .npy header (escape sequences)")
        try:
            header = ast.literal_eval(text.decode("latin1"))
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as err:
            raise self.fail(f"{name} has a bad .npy header ({type(err).__name__})") from None
        if not (isinstance(header, dict) and set(header) == {"descr", "fortran_order", "shape"}
                and isinstance(header["descr"], str) and isinstance(header["fortran_order"], bool)
                and isinstance(header["shape"], tuple)
                and all(_is_int(n) and n >= 0 for n in header["shape"])):
            raise self.fail(f"{name} has a bad .npy header {text[:200]!r}")
        return header["descr"], header["fortran_order"], header["shape"]

    def array(self, name: str, dtype: np.dtype, shape: tuple) -> np.ndarray:
        """Read one .npy member, checking its header and size before allocating anything."""
        info, fh = self.member(name)
        size = info.file_size
        with fh:
            descr, fortran, found_shape = self.npy_header(name, fh)
            try:
                found_dtype = np.dtype(descr)
            except (TypeError, ValueError, SyntaxError):
                raise self.fail(f"{name} has an unknown .npy dtype {descr[:80]!r}") from None
            if found_dtype.hasobject:
                raise self.fail(f"{name} holds an object array; refused (it would need pickle)")
            if dtype == dtypes.bfloat16 and found_dtype in _BFLOAT16_BITS:
                found_dtype = dtype  # bfloat16 is stored by its bits, as uint16
            if found_dtype != dtype or tuple(found_shape) != shape:
                raise self.fail(f"{name} holds {found_dtype} {tuple(found_shape)} but the "
                                f"structure says {dtype} {shape}")
            nbytes = math.prod(shape) * dtype.itemsize
            if size - fh.tell() != nbytes:
                raise self.fail(f"{name} declares shape {shape} ({nbytes} bytes) but holds "
                                f"{size - fh.tell()} bytes of data")
            buf = bytearray(nbytes)
            view = memoryview(buf)
            done = 0
            while done < nbytes:
                chunk = fh.read(min(_CHUNK, nbytes - done))
                if not chunk:
                    raise self.fail(f"{name} ends early")
                view[done:done + len(chunk)] = chunk
                done += len(chunk)
            fh.read(1)  # reach end of member so zipfile checks its CRC
        try:
            return np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        except ValueError as err:  # e.g. more dimensions than NumPy supports
            raise self.fail(f"{name}: cannot make an array of shape {shape}: {err}") from None


def _placed(path: str, saved: device, array: np.ndarray, relocate: Callable,
            requires_grad: bool) -> Tensor:
    """The tensor of host `array`, saved on `saved`, on the device `relocate` chooses."""
    target = relocate(str(saved), array)
    if isinstance(target, Tensor):  # a map_location callable moved it
        return Tensor._wrap(target.detach().array, requires_grad=requires_grad)
    if target.type == "cuda":
        if not cuda_available():
            raise RuntimeError(
                f"load: {path} holds a tensor saved on {saved} but CUDA is not "
                "available; pass map_location='cpu' to load it on the CPU")
        try:
            target = as_device(target)
        except RuntimeError as err:
            raise RuntimeError(f"load: {path}: {err}; pass map_location='cpu' or "
                               "'cuda:0' to choose another device") from None
        array = move_array(array, target)
    return Tensor._wrap(array, requires_grad=requires_grad)


def stored_member_problem(info: zipfile.ZipInfo, size: int) -> str | None:
    """Why a zip member of a `size`-byte file cannot be read as stored bytes (compressed,
    encrypted, a symbolic link, claiming bytes outside the file), or None. Checkpoints, ours
    and torch.save's, store their members uncompressed."""
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
        return f"is compressed or larger than the file ({info.file_size} bytes)"
    if info.flag_bits & _UNSUPPORTED_FLAGS or stat.S_ISLNK(info.external_attr >> 16):
        return "is encrypted, patched or a symbolic link; refused"
    if not 0 <= info.header_offset < size:
        return f"starts at offset {info.header_offset}, outside the file ({size} bytes)"
    return None


def _relocator(map_location: Any) -> Callable[[str, np.ndarray], device | Tensor]:
    """(saved device string, host array) -> the device to load onto, or the tensor that a
    map_location callable returned."""
    if map_location is None:
        return lambda saved, array: device(saved)
    if isinstance(map_location, (str, device)):
        target = device(map_location)
        return lambda saved, array: target
    if isinstance(map_location, dict):
        table = {device(k): device(v) for k, v in map_location.items()}
        return lambda saved, array: table.get(device(saved), device(saved))
    if callable(map_location):
        def call(saved: str, array: np.ndarray) -> device | Tensor:
            out = map_location(Tensor._wrap(array), saved)
            if out is None:
                return device(saved)
            if not isinstance(out, Tensor):
                raise TypeError(f"load: map_location callable must return a Tensor or None, "
                                f"got {type(out).__name__}")
            return out
        return call
    raise TypeError(f"load: map_location must be None, a device string, a gradflow.device, a "
                    f"dict or a callable, got {type(map_location).__name__}")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _fspath(op: str, path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{op}: expected a file path (str or os.PathLike) or a binary file "
                        f"object, got {type(path).__name__}")
    return os.fspath(path)
