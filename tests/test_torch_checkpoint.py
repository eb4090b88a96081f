"""gf.load on files written by torch.save (the zip format), read without PyTorch and without
running their pickle: dtypes, views and shared storages, parameters, byte order, map_location,
refused globals (a pickle calling os.system runs nothing), legacy files, damaged and fuzzed
archives, and a torch CNN's state_dict driving gradflow's twin to the same logits.

Hand-assembled archives (`_archive`, `_pkl`) need no torch; tests comparing with real torch
files skip without it."""
from __future__ import annotations

import io
import os
import pickle
import struct
import time
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from helpers import to_numpy, torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import MUTATIONS, mutate

import gradflow as gf
from gradflow import dtypes
from gradflow.serialization import CheckpointError, WeightsOnlyError

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


# -- a tiny assembler for torch.save's data.pkl (protocol 2) ---------------------------------
def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _i(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _t(*parts: bytes) -> bytes:
    return b"(" + b"".join(parts) + b"t"


def _storage(kind: str, key: str, numel: int, location: str = "cpu") -> bytes:
    return _t(_s("storage"), _g("torch", kind), _s(key), _s(location), _i(numel)) + b"Q"


def _tensor(storage: bytes, offset: int, size: tuple, stride: tuple, grad: bool = False,
            func: str = "_rebuild_tensor_v2") -> bytes:
    return _g("torch._utils", func) + _t(
        storage, _i(offset), _t(*map(_i, size)), _t(*map(_i, stride)),
        b"\x88" if grad else b"\x89", _g("collections", "OrderedDict") + b")R") + b"R"


def _dict(**items: bytes) -> bytes:
    return b"}(" + b"".join(_s(k) + v for k, v in items.items()) + b"u"


def _pkl(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _archive(pkl: bytes, blobs: dict | None = None, byteorder: bytes | None = b"little",
             prefix: str = "archive") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", pkl)
        if byteorder is not None:
            zf.writestr(f"{prefix}/byteorder", byteorder)
        for key, blob in (blobs or {}).items():
            zf.writestr(f"{prefix}/data/{key}", blob)
        zf.writestr(f"{prefix}/version", b"3\n")
    return buf.getvalue()


def _load(data: bytes, **kw):
    return gf.load(io.BytesIO(data), **kw)


def _torch_file(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def _same(got, want):
    """A loaded gradflow object equals the torch object it came from (types, values, dtypes)."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, gf.Tensor), type(got)
        assert str(got.dtype) == str(want.dtype).replace("torch.", ""), (got.dtype, want.dtype)
        np.testing.assert_array_equal(to_numpy(got).astype(np.float64),
                                      want.detach().double().numpy())
        assert got.requires_grad == want.requires_grad
        assert isinstance(got, gf.nn.Parameter) == isinstance(want, torch.nn.Parameter)
    elif isinstance(want, dict):
        assert type(got) is type(want) and list(got) == list(want)
        for key in want:
            _same(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, type(want)) and len(got) == len(want)
        for a, b in zip(got, want):
            _same(a, b)
    else:
        assert got == want and type(got) is type(want), (got, want)


# -- real torch files -------------------------------------------------------------------------
ALL_DTYPES = ["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
              "uint8", "bool"]


@needs_torch
def test_every_storage_dtype_torch_writes():
    g = torch.Generator().manual_seed(0)
    obj = {name: (torch.randn(3, 5, generator=g) * 50).to(getattr(torch, name))
           for name in ALL_DTYPES}
    obj["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    obj["empty"] = torch.zeros(0, 3, dtype=torch.int64)
    got = _load(_torch_file(obj))
    _same(got, obj)
    assert got["bfloat16"].dtype == gf.bfloat16
    assert got["scalar"].shape == () and got["empty"].shape == (0, 3)


@needs_torch
def test_containers_and_plain_values_as_torch_load_gives_them():
    x = torch.arange(6.0).reshape(2, 3)
    obj = OrderedDict(a=[x, (x[0], {"deep": OrderedDict(z=x.t())})], n=3, f=0.5, s="text",
                      none=None, b=b"\x00\xff bytes", flag=True, size=torch.Size([2, 3]),
                      nested=[[1, 2], (3,)], empty={}, t=())
    got = _load(_torch_file(obj))
    want = torch.load(io.BytesIO(_torch_file(obj)), weights_only=True)
    got_size, want_size = got.pop("size"), want.pop("size")
    assert got_size == tuple(want_size) and isinstance(got_size, tuple)
    _same(got, want)
    extras = _load(_torch_file({"dt": torch.float16, "dev": torch.device("cpu"),
                                "set": {1, 2}, "c": complex(1, 2)}))
    assert extras == {"dt": gf.float16, "dev": gf.device("cpu"), "set": {1, 2}, "c": 1 + 2j}


@needs_torch
def test_views_and_shared_storages_stay_shared():
    x = torch.arange(20.0)
    obj = {"x": x, "slice": x[3:9], "t": x.view(4, 5).t(), "step": x[1::3],
           "expand": x[:1].expand(3, 4), "other": torch.ones(2)}
    got = _load(_torch_file(obj))
    _same(got, obj)
    assert got["t"].shape == (5, 4) and got["t"].array.strides == (4, 20)
    # NOTE: as in torch, tensors that viewed one storage share memory after loading (CPU)
    got["x"].array[5] = -1.0
    assert got["slice"].array[2] == -1.0 and got["t"].array[0, 1] == -1.0
    for key in ("slice", "t", "step", "expand"):
        assert np.shares_memory(got[key].array, got["x"].array), key
    assert not np.shares_memory(got["other"].array, got["x"].array)


@needs_torch
def test_parameters_and_requires_grad():
    obj = {"p": torch.nn.Parameter(torch.ones(2, 3)),
           "frozen": torch.nn.Parameter(torch.zeros(2), requires_grad=False),
           "leaf": torch.ones(3, requires_grad=True), "plain": torch.ones(3)}
    got = _load(_torch_file(obj))
    _same(got, obj)
    assert type(got["p"]) is gf.nn.Parameter and got["p"].is_leaf and got["p"].requires_grad
    assert not got["frozen"].requires_grad and got["leaf"].requires_grad
    (got["p"] * 2).sum().backward()
    np.testing.assert_array_equal(to_numpy(got["p"].grad), np.full((2, 3), 2.0))


@needs_torch
def test_big_endian_blobs_are_byte_swapped(tmp_path):
    obj = {name: (torch.arange(-3, 9) * 7).to(getattr(torch, name)).reshape(3, 4)
           for name in ALL_DTYPES}
    data = _torch_file(obj)
    # NOTE: keys 0..n-1 follow the dict order, one storage per tensor
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["archive/byteorder"] = b"big"
    for key, t in enumerate(obj.values()):
        arr = np.frombuffer(members[f"archive/data/{key}"], np.dtype(f"u{t.element_size()}"))
        members[f"archive/data/{key}"] = arr.byteswap().tobytes()
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    for name, t in torch.load(io.BytesIO(big.getvalue()), weights_only=True).items():
        assert torch.equal(t, obj[name]), name  # the file is right: torch reads it back
    _same(_load(big.getvalue()), obj)


@needs_torch
def test_paths_file_objects_and_map_location(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.arange(4.0)}, path)
    assert list(to_numpy(gf.load(path)["w"])) == [0, 1, 2, 3]
    assert list(to_numpy(gf.load(str(path), map_location="cpu")["w"])) == [0, 1, 2, 3]
    with open(path, "rb") as fh:
        assert gf.load(fh, map_location={"cpu": "cpu"})["w"].shape == (4,)
    seen = []
    got = gf.load(path, map_location=lambda t, loc: seen.append((loc, t.shape)) or t * 2)
    assert seen == [("cpu", (4,))] and list(to_numpy(got["w"])) == [0, 2, 4, 6]
    with pytest.raises(TypeError, match="map_location callable must return"):
        gf.load(path, map_location=lambda t, loc: "cpu")


def _cuda_saved() -> bytes:
    st = _storage("FloatStorage", "0", 3, location="cuda:0")
    return _archive(_pkl(_dict(w=_tensor(st, 0, (3,), (1,), grad=True))),
                    {"0": np.arange(3, dtype=np.float32).tobytes()})


def test_cuda_saved_tensors_without_cuda_name_map_location():
    if gf.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(RuntimeError, match="map_location='cpu'"):
        _load(_cuda_saved())
    got = _load(_cuda_saved(), map_location="cpu")["w"]
    assert got.device == gf.device("cpu") and got.requires_grad


def test_map_location_on_the_cupy_path(fake_cuda):
    got = _load(_cuda_saved())["w"]
    assert got.device == gf.device("cuda:0") and got.requires_grad and got.is_leaf
    np.testing.assert_array_equal(to_numpy(got), [0, 1, 2])
    st = _storage("FloatStorage", "0", 4)
    shared = _archive(_pkl(_dict(a=_tensor(st, 0, (4,), (1,)), b=_tensor(st, 1, (2,), (2,)))),
                      {"0": np.arange(4, dtype=np.float32).tobytes()})
    got = _load(shared, map_location="cuda:0")
    assert {str(t.device) for t in got.values()} == {"cuda:0"}
    np.testing.assert_array_equal(to_numpy(got["b"]), [1, 3])
    assert _load(_cuda_saved(), map_location={"cuda:0": "cpu"})["w"].device == gf.device("cpu")


# -- refused globals: nothing runs ------------------------------------------------------------
class _System:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Eval:
    def __reduce__(self):
        return eval, ("1 + 1",)


@pytest.mark.parametrize("weights_only", [None, True, False])
def test_a_pickle_calling_os_system_runs_nothing(tmp_path, weights_only):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": _System(f"touch {marker}")}, protocol=2)
    path = tmp_path / "evil.pth"
    path.write_bytes(_archive(payload))
    system = f"{os.system.__module__}.system"  # posix.system (nt.system on Windows)
    with pytest.raises(WeightsOnlyError, match=f"{system}.*nothing in the file was run"):
        gf.load(path, weights_only=weights_only)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        _load(_archive(pickle.dumps([_Eval()], protocol=4)))


@needs_torch
def test_a_pickled_module_is_refused_naming_its_class():
    data = _torch_file(torch.nn.Linear(2, 3))
    with pytest.raises(WeightsOnlyError, match="torch.nn.modules.linear.Linear.*state_dict"):
        _load(data, weights_only=False)


@needs_torch
def test_unsupported_dtypes_and_kinds_are_refused_naming_them():
    with pytest.raises(CheckpointError, match="complex64.*ComplexFloatStorage"):
        _load(_torch_file({"c": torch.ones(2, dtype=torch.complex64)}))
    with pytest.raises(CheckpointError, match="no uint16 dtype"):
        _load(_torch_file({"u": torch.ones(2, dtype=torch.uint16)}))
    with pytest.raises(CheckpointError, match="sparse"):
        _load(_torch_file({"s": torch.eye(3).to_sparse()}))
    neg = _load(_torch_file({"n": torch._neg_view(torch.arange(3.0))}))["n"]
    np.testing.assert_array_equal(to_numpy(neg), [0, -1, -2])


@needs_torch
def test_legacy_format_is_refused_with_how_to_convert(tmp_path):
    path = tmp_path / "old.pth"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy torch.save.*_use_new_zipfile_seriali"
                                              "zation=True"):
        gf.load(path)


# -- damaged archives -------------------------------------------------------------------------
def _floats(n: int) -> bytes:
    return np.arange(n, dtype=np.float32).tobytes()


def test_hand_assembled_archive_views_and_byteorder():
    st = _storage("FloatStorage", "0", 7)
    pkl = _pkl(_dict(a=_tensor(st, 0, (2, 3), (3, 1)), b=_tensor(st, 2, (2, 2), (1, 3))))
    got = _load(_archive(pkl, {"0": _floats(7)}, prefix="some_name"))
    np.testing.assert_array_equal(to_numpy(got["b"]), [[2, 5], [3, 6]])
    big = _load(_archive(pkl, {"0": np.arange(7, dtype=">f4").tobytes()}, byteorder=b"big"))
    np.testing.assert_array_equal(to_numpy(big["a"]), np.arange(6).reshape(2, 3))
    old = _load(_archive(pkl, {"0": _floats(7)}, byteorder=None))  # no record: little-endian
    np.testing.assert_array_equal(to_numpy(old["a"]), np.arange(6).reshape(2, 3))


BAD = {
    "view past the storage": (_pkl(_tensor(_storage("FloatStorage", "0", 6), 4, (3,), (1,))),
                              {"0": _floats(6)}, "reaches past its storage"),
    "negative offset": (_pkl(_tensor(_storage("FloatStorage", "0", 6), -1, (3,), (1,))),
                        {"0": _floats(6)}, "bad tensor geometry"),
    "blob too short": (_pkl(_tensor(_storage("FloatStorage", "0", 6), 0, (6,), (1,))),
                       {"0": _floats(5)}, "should hold 6 x float32"),
    "missing blob": (_pkl(_tensor(_storage("FloatStorage", "0", 6), 0, (6,), (1,))), {},
                     "no record 'archive/data/0'"),
    "int requires grad": (_pkl(_tensor(_storage("LongStorage", "0", 2), 0, (2,), (1,), True)),
                          {"0": bytes(16)}, "int64 tensor is marked requires_grad"),
    "storage as two dtypes": (_pkl(_t(_tensor(_storage("FloatStorage", "0", 2), 0, (2,), (1,)),
                                      _tensor(_storage("IntStorage", "0", 2), 0, (2,), (1,)))),
                              {"0": bytes(8)}, "referenced as 2 x int32 and as 2 x float32"),
    "bad persistent id": (_pkl(_t(_s("storage"), _s("x")) + b"Q"), {}, "bad persistent id"),
    "unknown opcode": (b"\x80\x02\xff.", {}, "data.pkl is corrupt"),
    "no stop": (b"\x80\x02N", {}, "data.pkl is corrupt"),
    "BUILD on a list": (_pkl(b"]}b"), {}, "sets the state of a list"),
    "ext opcode": (_pkl(b"\x82\x01"), {}, "opcode EXT1"),
    "huge bytearray": (_pkl(_g("builtins", "bytearray") + _t(_i(1 << 30)) + b"R"), {},
                       "other than \\(str, 'latin1'\\)"),
}


@pytest.mark.parametrize("case", BAD)
def test_damaged_archives_raise_checkpoint_error(case):
    pkl, blobs, message = BAD[case]
    with pytest.raises(CheckpointError, match=message):
        _load(_archive(pkl, blobs))


def test_damaged_records_and_layouts():
    good = _archive(_pkl(_dict(a=_tensor(_storage("FloatStorage", "0", 6), 0, (6,), (1,)))),
                    {"0": _floats(6)})
    with pytest.raises(CheckpointError, match="byteorder record says b'middle'"):
        _load(_archive(_pkl(b"N"), byteorder=b"middle"))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        _load(good[: len(good) // 2])
    compressed = io.BytesIO()
    with zipfile.ZipFile(compressed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", _pkl(b"N"))
    with pytest.raises(CheckpointError, match="compressed"):
        _load(compressed.getvalue())
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a/data.pkl", _pkl(b"N"))
        zf.writestr("b/data.pkl", _pkl(b"N"))
    with pytest.raises(CheckpointError, match="2 data.pkl records"):
        _load(two.getvalue())
    assert _load(_archive(_pkl(b"N"))) is None


# -- fuzzing ----------------------------------------------------------------------------------
def _fuzz_settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _fuzz_base() -> bytes:
    a = _storage("FloatStorage", "0", 6)
    b = _storage("BFloat16Storage", "1", 4)
    body = _dict(a=_tensor(a, 0, (2, 3), (3, 1), grad=True), v=_tensor(a, 1, (2,), (2,)),
                 b=_tensor(b, 0, (2, 2), (1, 2)), n=_i(7), s=_s("x"))
    return _archive(_pkl(body), {"0": _floats(6), "1": bytes(8)})


_BASE = _fuzz_base()


def _load_or_refuse(data: bytes) -> None:
    start = time.perf_counter()
    try:
        value = _load(data, map_location="cpu")
    except CheckpointError:
        return
    finally:
        assert time.perf_counter() - start < 5.0, "a hang, not a slow machine"
    for t in value.values() if isinstance(value, dict) else ():
        if isinstance(t, gf.Tensor):  # what was allocated is bounded by the file size
            root = t.array
            while isinstance(root.base, np.ndarray):
                root = root.base
            assert t.dtype in dtypes.SUPPORTED and root.nbytes <= len(data), (t.dtype, root.nbytes)


@_fuzz_settings(400)
@given(mutations=MUTATIONS)
def test_fuzzed_torch_archives_give_checkpoint_errors(mutations):
    _load_or_refuse(mutate(_BASE, mutations))


@_fuzz_settings(150)
@given(cut=st.integers(0, len(_BASE)))
def test_truncated_torch_archives_give_checkpoint_errors(cut):
    _load_or_refuse(_BASE[:cut])


@_fuzz_settings(300)
@given(ops=st.lists(st.sampled_from([b"N", b"]", b"}", b")", b"(", b"t", b"l", b"a", b"e",
                                     b"s", b"u", b"R", b"b", b"Q", b"0", b"2", b"\x85", b"\x86",
                                     b"\x87", b"h\x00", b"q\x00", b"\x88", b"K\x05",
                                     _g("torch", "Size"), _g("collections", "OrderedDict"),
                                     _storage("FloatStorage", "0", 6),
                                     _g("torch._utils", "_rebuild_tensor_v2")]),
                    max_size=24))
def test_random_opcode_streams_give_checkpoint_errors(ops):
    _load_or_refuse(_archive(b"\x80\x02" + b"".join(ops) + b".", {"0": _floats(6)}))


# -- a torch CNN's state_dict in gradflow's twin ----------------------------------------------
def _torch_cnn():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(6, 5, 3, stride=2, bias=False),
                         nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 1 * 1 * 4, 7))


def _gf_cnn():
    nn = gf.nn
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(6, 5, 3, stride=2, bias=False),
                         nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 1 * 1 * 4, 7))


@needs_torch
def test_a_torch_cnn_state_dict_gives_the_same_logits(tmp_path):
    torch.manual_seed(0)
    net = _torch_cnn()
    x = torch.randn(4, 3, 10, 12)
    net.train()
    for _ in range(3):  # non-trivial running statistics and num_batches_tracked
        net(torch.randn(4, 3, 10, 12) * 2 + 1)
    net.eval()
    path = tmp_path / "cnn.pth"
    torch.save(net.state_dict(), path)
    twin = _gf_cnn()
    state = gf.load(path)
    assert isinstance(state, OrderedDict) and list(state) == list(net.state_dict())
    twin.load_state_dict(state, strict=True)
    twin.eval()
    with torch.no_grad():
        want = net(x).numpy()
    got = to_numpy(twin(gf.tensor(x.numpy())))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert int(twin[1].num_batches_tracked.item()) == 3


def test_storages_are_read_in_chunks_straight_into_their_arrays(monkeypatch):
    from gradflow import torch_checkpoint
    monkeypatch.setattr(torch_checkpoint, "_CHUNK", 1000)
    asked = []
    read = zipfile.ZipExtFile.read

    def spy(self, n=-1):
        if self.name.startswith("archive/data/"):
            asked.append(n)
        return read(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", spy)
    values = np.random.default_rng(0).standard_normal(10_000).astype(np.float32)
    st = _storage("FloatStorage", "0", values.size)
    got = _load(_archive(_pkl(_tensor(st, 0, (100, 100), (100, 1))), {"0": values.tobytes()}))
    np.testing.assert_array_equal(to_numpy(got).ravel(), values)
    assert got.array.base is not None and got.array.flags.writeable
    # NOTE: 40 chunks of 1000 bytes, then one byte past the end (the CRC check)
    assert max(asked) <= 1000 and len(asked) >= 40, asked[:5]


@needs_torch
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_every_pickle_protocol_and_a_training_checkpoint(protocol):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    obj = {"model": net.state_dict(), "optim": opt.state_dict(), "epoch": 3,
           "bytes": b"\x00\x01", "names": {"a", "b"}}
    got = _load(_torch_file(obj, pickle_protocol=protocol))
    # NOTE: torch's own weights_only loader does not read protocol 4's FRAME; this file is ours
    want = torch.load(io.BytesIO(_torch_file(obj, pickle_protocol=protocol)),
                      weights_only=False)
    assert got.pop("names") == want.pop("names")
    _same(got, want)
    assert sorted(got["optim"]["state"]) == [0, 1]
