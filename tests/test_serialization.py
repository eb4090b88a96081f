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

import gradflow
from gradflow.serialization import CheckpointError, load, save


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
    class Foo:
        pass

    with pytest.raises(TypeError, match=r"type Foo at \['optimizer'\]\['state'\]\[0\]"):
        save({"optimizer": {"state": {0: Foo()}}}, tmp_path / "x.gf")
    with pytest.raises(TypeError, match=r"at \['l'\]\[1\]"):
        save({"l": [1, {2, 3}]}, tmp_path / "x.gf")
    with pytest.raises(TypeError, match="dict key"):
        save({(1, 2): 0}, tmp_path / "x.gf")
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="cycle"):
        save(loop, tmp_path / "x.gf")
    assert os.listdir(tmp_path) == []


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
