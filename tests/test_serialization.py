"""Checkpoints: round trips of state dicts and nested structures, atomic writes, map_location,
and hostile files that must fail cleanly without running code or allocating declared sizes."""
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from helpers import require_torch

import gradflow
from gradflow.serialization import CheckpointError, WeightsOnlyError, load, save


def assert_same(got, want):
    """Structural equality: same container types, key order, key types and tensor contents."""
    assert type(got) is type(want) or (isinstance(want, dict) and type(got) is dict), \
        f"type {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, gradflow.Tensor):
        assert got.dtype == want.dtype and got.device == want.device, \
            f"{got.dtype}@{got.device} != {want.dtype}@{want.device}"
        np.testing.assert_array_equal(got.detach().cpu().numpy(), want.detach().cpu().numpy())
    elif isinstance(want, dict):
        assert [(type(k), k) for k in got] == [(type(k), k) for k in want]
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"length {len(got)} != {len(want)}"
        for g, w in zip(got, want):
            assert_same(g, w)
    else:
        assert got == want or (got != got and want != want), f"{got!r} != {want!r}"


def roundtrip(obj, tmp_path, **kwargs):
    path = tmp_path / "ckpt.gf"
    save(obj, path)
    return load(path, **kwargs)


def write_zip(path, members):
    """A zip holding `members` ({name: bytes}), for hand-made hostile checkpoints."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def structure(meta, root):
    return json.dumps({"format": "gradflow.checkpoint", "version": 1, "tensors": meta,
                       "root": root}).encode()


def npy(array, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


# -- round trips ------------------------------------------------------------------------------
def test_module_state_dict_roundtrip(tmp_path):
    model = gradflow.nn.Linear(3, 2)
    sd = model.state_dict()
    got = roundtrip(sd, tmp_path)
    assert_same(got, sd)
    fresh = gradflow.nn.Linear(3, 2)
    fresh.load_state_dict(got)
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), model.weight.detach().numpy())


def test_every_dtype_and_layout(tmp_path):
    base = np.arange(24).reshape(4, 6)
    arrays = {dt: base.astype(dt) for dt in ("float16", "float32", "float64", "int8", "uint8",
                                             "int16", "int32", "int64")}
    arrays["bool"] = base % 3 == 0
    arrays["0-d"] = np.array(3.5)
    arrays["empty"] = np.zeros((0, 5), np.float32)
    arrays["transposed"] = base.astype(np.float64).T
    arrays["strided"] = base.astype(np.float32)[::2, 1::3]
    arrays["fortran"] = np.asfortranarray(base.astype(np.int64))
    obj = {name: gradflow.tensor(a) for name, a in arrays.items()}
    got = roundtrip(obj, tmp_path)
    assert_same(got, obj)
    for name, a in arrays.items():
        assert got[name].shape == a.shape, f"{name}: {got[name].shape} != {a.shape}"
    got["transposed"].array[0, 0] = 99.0  # loaded arrays are writable


def test_nested_structure_keys_and_scalars(tmp_path):
    t = gradflow.tensor([1.0, 2.0])
    obj = {
        "state": {3: {"step": 7, "exp_avg": t}, 0: {"step": 1}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 3], "amsgrad": False,
                          "foreach": None}],
        "z": "last", "a": [[], (), {}, (1, ("x", 2.5))], 1: "int key", "1": "str key",
        "floats": [float("inf"), -0.0, float("nan")],
        "big": 2 ** 70, "numpy": np.int64(5), "od": OrderedDict([("b", 1), ("a", 2)]),
    }
    got = roundtrip(obj, tmp_path)
    want = dict(obj, numpy=5)
    assert_same(got, want)
    assert list(got["state"]) == [3, 0] and list(got) == list(obj)
    assert type(got["numpy"]) is int


def test_shared_tensor_stays_shared_and_requires_grad(tmp_path):
    w = gradflow.tensor([1.0, 2.0], requires_grad=True)
    got = roundtrip([w, {"again": w}], tmp_path)
    assert got[0] is got[1]["again"]
    assert got[0].requires_grad


def test_unsupported_object_names_its_path(tmp_path):
    """What the pickle-free encoding cannot store is pickled, as torch.save does, and loads only
    with weights_only=False; what cannot be pickled either is refused with its path, and then
    nothing is written."""
    class Foo:
        pass

    with pytest.raises(TypeError, match=r"type Foo at \['optimizer'\]\['state'\]\[0\].*pickling "
                                        r"it failed too"):
        save({"optimizer": {"state": {0: Foo()}}}, tmp_path / "x.gf")
    assert os.listdir(tmp_path) == []
    loop = []
    loop.append(loop)
    for obj, why in (({"l": [1, {2, 3}]}, "set"), ({(1, 2): 0}, "tuple dict key"),
                     (loop, "cycle")):
        save(obj, tmp_path / "x.gf")
        with pytest.raises(WeightsOnlyError, match="weights_only=False"):
            load(tmp_path / "x.gf")
        got = load(tmp_path / "x.gf", weights_only=False)
        if why == "cycle":
            assert got[0] is got, why
        else:
            assert got == obj, why


# -- atomic writes ----------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["replace", "write"])
def test_failed_save_keeps_old_file(tmp_path, monkeypatch, where):
    path = tmp_path / "ckpt.gf"
    save({"v": gradflow.tensor([1.0])}, path)

    def boom(*args, **kwargs):
        raise OSError("disk gone")

    target = (os, "replace") if where == "replace" else (np.lib.format, "write_array")
    monkeypatch.setattr(*target, boom)
    with pytest.raises(OSError, match="disk gone"):
        save({"v": gradflow.tensor([2.0]), "w": gradflow.tensor([3.0])}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.gf"]
    np.testing.assert_array_equal(load(path)["v"].numpy(), [1.0])


def test_save_replaces_and_keeps_mode(tmp_path):
    path = tmp_path / "ckpt.gf"
    save([1], path)
    os.chmod(path, 0o640)
    save([2], str(path))
    assert load(str(path)) == [2]
    assert os.stat(path).st_mode & 0o777 == 0o640


# -- devices ----------------------------------------------------------------------------------
def _cuda_checkpoint(tmp_path):
    """A checkpoint that claims its tensor was saved on cuda:0 (made without a GPU)."""
    path = tmp_path / "cuda.gf"
    meta = [{"dtype": "float32", "shape": [2], "device": "cuda:0", "requires_grad": False}]
    return write_zip(path, {"structure.json": structure(meta, {"__tensor__": 0}),
                            "tensors/0.npy": npy(np.array([1.0, 2.0], np.float32))})


@pytest.mark.parametrize("loc", ["cpu", gradflow.device("cpu"), {"cuda:0": "cpu"},
                                 {"cuda": "cpu"}])
def test_map_location_cpu(tmp_path, loc):
    got = load(_cuda_checkpoint(tmp_path), map_location=loc)
    assert got.device == "cpu"
    np.testing.assert_array_equal(got.numpy(), np.array([1.0, 2.0], np.float32))


def test_cuda_without_gpu_suggests_map_location(tmp_path):
    if gradflow.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(RuntimeError, match="map_location='cpu'"):
        load(_cuda_checkpoint(tmp_path))
    with pytest.raises(TypeError, match="map_location"):
        load(_cuda_checkpoint(tmp_path), map_location=3.5)


@pytest.mark.gpu
def test_cuda_roundtrip(tmp_path):
    x = gradflow.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device="cuda")
    obj = {"x": x, "xt": x.t()}
    got = roundtrip(obj, tmp_path)
    assert_same(got, obj)
    assert got["x"].device == "cuda:0"
    on_cpu = load(tmp_path / "ckpt.gf", map_location="cpu")
    assert on_cpu["x"].device == "cpu"
    np.testing.assert_array_equal(on_cpu["xt"].numpy(), x.t().cpu().numpy())


# -- hostile and broken files -----------------------------------------------------------------
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError, match="not a gradflow checkpoint.*pickle"):
        load(path)
    torch_like = write_zip(tmp_path / "torch.pt", {"archive/data.pkl": pickle.dumps(_Evil(marker))})
    with pytest.raises(CheckpointError, match="PyTorch"):
        load(torch_like)
    meta = [{"dtype": "float32", "shape": [1], "device": "cpu"}]
    obj_npy = write_zip(tmp_path / "obj.gf", {
        "structure.json": structure(meta, {"__tensor__": 0}),
        "tensors/0.npy": npy(np.array([_Evil(marker)], dtype=object), allow_pickle=True)})
    with pytest.raises(CheckpointError, match="object array"):
        load(obj_npy)
    meta[0]["dtype"] = "object"
    obj_meta = write_zip(tmp_path / "obj2.gf", {
        "structure.json": structure(meta, {"__tensor__": 0}),
        "tensors/0.npy": npy(np.array([_Evil(marker)], dtype=object), allow_pickle=True)})
    with pytest.raises(CheckpointError, match="unsupported dtype 'object'"):
        load(obj_meta)
    assert not marker.exists()


def test_path_traversal_members_are_never_extracted(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    path = write_zip(work / "evil.gf", {"../evil": b"x", "/abs_evil": b"x",
                                        "../structure.json": structure([], 1)})
    with pytest.raises(CheckpointError, match="no structure.json"):
        load(path)
    good = work / "good.gf"
    save({"a": gradflow.tensor([1, 2])}, good)
    with zipfile.ZipFile(good, "a") as zf:
        zf.writestr("../evil", b"x")
        zf.writestr("tensors/../../evil", b"x")
    assert_same(load(good), {"a": gradflow.tensor([1, 2])})
    assert sorted(os.listdir(tmp_path)) == ["work"] and sorted(os.listdir(work)) == \
        ["evil.gf", "good.gf"]


def test_truncated_and_random_files(tmp_path):
    path = tmp_path / "ckpt.gf"
    save({"w": gradflow.tensor(np.arange(1000, dtype=np.float64))}, path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 4):
        bad = tmp_path / f"cut{cut}.gf"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load(bad)
    rand = tmp_path / "rand.gf"
    rand.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a gradflow checkpoint"):
        load(rand)
    empty = tmp_path / "empty.gf"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load(empty)
    with pytest.raises(FileNotFoundError, match="missing.gf"):
        load(tmp_path / "missing.gf")


def test_crc_error(tmp_path):
    path = tmp_path / "ckpt.gf"
    save({"w": gradflow.tensor(np.zeros(64, np.float32))}, path)
    data = bytearray(path.read_bytes())
    at = data.index(b"tensors/0.npy") + 200  # inside the array payload
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="(?i)crc"):
        load(path)


def test_huge_declared_shape_is_refused_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)})
    meta = [{"dtype": "float64", "shape": [10 ** 12], "device": "cpu"}]
    path = write_zip(tmp_path / "huge.gf", {
        "structure.json": structure(meta, {"__tensor__": 0}),
        "tensors/0.npy": header.getvalue() + b"\0" * 64})
    with pytest.raises(CheckpointError, match="declares shape"):
        load(path)
    meta[0]["shape"] = [3]
    mismatch = write_zip(tmp_path / "mismatch.gf", {
        "structure.json": structure(meta, {"__tensor__": 0}),
        "tensors/0.npy": header.getvalue() + b"\0" * 64})
    with pytest.raises(CheckpointError, match="structure says"):
        load(mismatch)


@pytest.mark.parametrize("members, match", [
    ({"structure.json": b"{not json"}, "not valid JSON"),
    ({"structure.json": b'{"format": "other"}'}, "no format marker"),
    ({"structure.json": json.dumps({"format": "gradflow.checkpoint", "version": 99}).encode()},
     "version 99 is newer"),
    ({"structure.json": structure([{"dtype": "float32", "shape": [1], "device": "cpu"}],
                                  {"__tensor__": 0})}, "missing member 'tensors/0.npy'"),
    ({"structure.json": structure([], {"__tensor__": 0})}, "bad node"),
    ({"structure.json": structure([], {"__dict__": [[[1], 2]]})}, "bad dict entry"),
    ({"structure.json": structure([], {"plain": "object"})}, "bad node"),
])
def test_malformed_structure(tmp_path, members, match):
    path = write_zip(tmp_path / "bad.gf", members)
    with pytest.raises(CheckpointError, match=match) as info:
        load(path)
    assert "bad.gf" in str(info.value)


def test_compressed_member_refused(tmp_path):
    path = tmp_path / "deflated.gf"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("structure.json", structure([], [1, 2]))
    with pytest.raises(CheckpointError, match="compressed"):
        load(path)


def _central_entry(data: bytes, name: str) -> int:
    """Offset of `name`'s record in the zip's central directory."""
    end = data.rindex(b"PK\x05\x06")
    at = int.from_bytes(data[end + 16:end + 20], "little")
    while data[at + 46:at + 46 + int.from_bytes(data[at + 28:at + 30], "little")] != name.encode():
        at = data.index(b"PK\x01\x02", at + 46)
    return at


def _patched(data: bytes, name: str, offset: int, width: int, value: int) -> bytes:
    """`data` with one little-endian field of `name`'s central directory record replaced."""
    at = _central_entry(data, name) + offset
    return data[:at] + value.to_bytes(width, "little") + data[at + width:]


# field offsets inside a central directory record (APPNOTE 4.3.12)
_VERSION_NEEDED, _FLAGS, _SIZE, _EXTERNAL_ATTR, _HEADER_OFFSET = 6, 8, 24, 38, 42


@pytest.mark.parametrize("member, field, width, value, match", [
    ("structure.json", _FLAGS, 2, 0x1, "encrypted"),  # once RuntimeError from zipfile
    ("tensors/0.npy", _FLAGS, 2, 0x20, "encrypted, patched"),  # once NotImplementedError
    ("tensors/0.npy", _FLAGS, 2, 0x40, "encrypted, patched"),
    ("structure.json", _VERSION_NEEDED, 2, 95, "truncated or corrupt"),  # NotImplementedError
    ("tensors/0.npy", _HEADER_OFFSET, 4, 0x7FFF_FFF0, "outside the file"),  # once OSError
    ("tensors/0.npy", _SIZE, 4, 0xFFFF_FFF0, "larger than the file"),
    ("tensors/0.npy", _EXTERNAL_ATTR, 4, 0o120777 << 16, "symbolic link"),
])
def test_damaged_central_directory(tmp_path, member, field, width, value, match):
    """Each case once escaped as a raw zipfile/OS error (found by tests/test_fuzz.py)."""
    good = tmp_path / "good.gf"
    save({"w": gradflow.tensor(np.arange(8, dtype=np.float32))}, good)
    bad = tmp_path / "bad.gf"
    bad.write_bytes(_patched(good.read_bytes(), member, field, width, value))
    with pytest.raises(CheckpointError, match=match):
        load(bad)


def test_symlink_member_is_not_followed(tmp_path):
    """A member flagged as a symlink whose text names a real checkpoint on disk."""
    target = tmp_path / "real.gf"
    save({"secret": gradflow.tensor([42.0])}, target)
    info = zipfile.ZipInfo("structure.json")
    info.external_attr = 0o120777 << 16
    path = tmp_path / "link.gf"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(info, str(target))
    with pytest.raises(CheckpointError, match="structure.json' is encrypted, patched or a "
                                              "symbolic link"):
        load(path)


def test_duplicate_member_names_are_refused(tmp_path):
    """Two structure.json members: readers disagree on which wins, so neither is used."""
    path = tmp_path / "dup.gf"
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(path, {"structure.json": structure([], "first")})
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("structure.json", structure([], "second"))
    with pytest.raises(CheckpointError, match=r"duplicate member names \['structure.json'\]"):
        load(path)


def test_real_torch_save_with_code_is_refused(tmp_path):
    torch = require_torch()  # PyTorch writes the genuine article
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2), "payload": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match=r"names the global 'posix.system'.*nothing in the "
                                              r"file was run"):
        load(path)
    assert not marker.exists()


def test_refusal_happens_before_allocating(tmp_path):
    """A structure and .npy header that agree on 8 TB of float64: refused on sizes alone."""
    import tracemalloc
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 6, 10 ** 6)})
    meta = [{"dtype": "float64", "shape": [10 ** 6, 10 ** 6], "device": "cpu"}]
    path = write_zip(tmp_path / "huge.gf", {"structure.json": structure(meta, {"__tensor__": 0}),
                                            "tensors/0.npy": header.getvalue() + b"\0" * 64})
    # NOTE: once untraced first, so that what load imports on first use (a module's code is
    # megabytes) is not counted: only what the refusal itself allocates
    with pytest.raises(CheckpointError):
        load(path)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"8000000000000 bytes\) but holds 64"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"load allocated {peak} bytes before refusing"


def _json_doc(root: str) -> bytes:
    return ('{"format": "gradflow.checkpoint", "version": 1, "tensors": [], "root": '
            + root + "}").encode()


def _npy_member(header: str, payload: bytes = b"\0" * 48, version: int = 1) -> bytes:
    text = header.encode("latin1") + b"\n"
    size = len(text).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + payload


_F32_3X4 = [{"dtype": "float32", "shape": [3, 4], "device": "cpu"}]


@pytest.mark.parametrize("members, match", [
    ({"structure.json": _json_doc("[" * 100_000 + "]" * 100_000)}, "nested too deeply"),
    ({"structure.json": _json_doc("[" * 600 + "]" * 600)}, "nested too deeply"),
    ({"structure.json": _json_doc("9" * 5000)}, "not valid JSON.*digits"),
    ({"structure.json": structure([{"dtype": ["float32"], "shape": [1], "device": "cpu"}],
                                  {"__tensor__": 0})}, "unsupported dtype"),
    ({"structure.json": structure([{"dtype": "int64", "shape": [1], "device": "cpu",
                                    "requires_grad": True}], {"__tensor__": 0}),
      "tensors/0.npy": npy(np.array([1]))}, "int64 but marked requires_grad"),
    ({"structure.json": structure([{"dtype": "float32", "shape": [1] * 70, "device": "cpu"}],
                                  {"__tensor__": 0}),
      "tensors/0.npy": _npy_member(f"{{'descr': '<f4', 'fortran_order': False, 'shape': "
                                   f"{(1,) * 70}, }}", b"\0" * 4)}, "cannot make an array"),
    ({"structure.json": structure(_F32_3X4, {"__tensor__": 0}),
      "tensors/0.npy": _npy_member("{'descr': '<f4', 'fortran_order': 1, 'shape': (3, 4), }")},
     "bad .npy header"),
    ({"structure.json": structure(_F32_3X4, {"__tensor__": 0}),
      "tensors/0.npy": _npy_member("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), "
                                   "'extra': 0}")}, "bad .npy header"),
    ({"structure.json": structure(_F32_3X4, {"__tensor__": 0}),
      "tensors/0.npy": _npy_member("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
                                   version=3)}, "format version 1 or 2"),
    ({"structure.json": structure(_F32_3X4, {"__tensor__": 0}),  # once a raw TokenError
      "tensors/0.npy": _npy_member("{'descr': '<f4', 'fortran_order': (False, 'shape': (3, 4)}")},
     "bad .npy header"),
    ({"structure.json": structure(_F32_3X4, {"__tensor__": 0}),
      "tensors/0.npy": _npy_member("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"
                                   + " " * 20_000, version=2)}, "-byte .npy header"),
    ({"structure.json": structure(_F32_3X4, {"__tensor__": 0}),
      "tensors/0.npy": _npy_member("{'descr': '(((f4', 'fortran_order': False, 'shape': (3, 4)}")},
     "unknown .npy dtype"),
])
def test_hostile_structure_and_headers(tmp_path, members, match):
    path = write_zip(tmp_path / "bad.gf", members)
    with pytest.raises(CheckpointError, match=match):
        load(path)


def test_npy_header_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    code = f"__import__('os').system('touch {marker}')"
    path = write_zip(tmp_path / "code.gf", {
        "structure.json": structure(_F32_3X4, {"__tensor__": 0}),
        "tensors/0.npy": _npy_member(code)})
    with pytest.raises(CheckpointError, match="bad .npy header"):
        load(path)
    assert not marker.exists()


def test_fortran_order_header_is_honoured(tmp_path):
    """fortran_order=True is legal .npy: the payload is column-major."""
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = write_zip(tmp_path / "f.gf", {
        "structure.json": structure(_F32_3X4, {"__tensor__": 0}),
        "tensors/0.npy": _npy_member("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }",
                                     values.tobytes(order="F"))})
    np.testing.assert_array_equal(load(path).numpy(), values)
