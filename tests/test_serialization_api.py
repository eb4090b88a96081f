"""gf.save / gf.load as torch.save / torch.load: file objects as well as paths, weights_only
(pickled objects load only with weights_only=False; the default refuses them without running
code), and every form of map_location."""
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from helpers import require_torch, to_numpy

import gradflow as gf
from gradflow.serialization import CheckpointError, WeightsOnlyError


class Point:
    """A custom class: saved by pickling, like any object that is not plain data."""

    def __init__(self, xy, weight):
        self.xy, self.weight = xy, weight


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ReadOnly(io.RawIOBase):
    """A stream that can only be read: no seek, no tell."""

    def __init__(self, data):
        self.data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        return self.data.readinto(b)


def _net():
    gf.manual_seed(0)
    return gf.nn.Sequential(gf.nn.Linear(3, 4), gf.nn.ReLU(), gf.nn.Linear(4, 2))


def _members(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


# -- file objects ------------------------------------------------------------------------------
def test_same_calls_as_torch_on_bytesio_and_open_files(tmp_path):
    torch = require_torch()
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    for lib in (gf, torch):
        obj = {"w": lib.tensor(values), "steps": [1, 2.5, "x", None, True], "t": (lib.ones(2),)}
        buf = io.BytesIO()
        lib.save(obj, buf)
        buf.seek(0)
        got = lib.load(buf)
        np.testing.assert_array_equal(to_numpy(got["w"]), values, err_msg=lib.__name__)
        assert got["steps"] == [1, 2.5, "x", None, True] and isinstance(got["t"], tuple)
        with open(tmp_path / f"{lib.__name__}.pt", "wb") as f:
            lib.save(obj, f)
        with open(tmp_path / f"{lib.__name__}.pt", "rb") as f:
            np.testing.assert_array_equal(to_numpy(lib.load(f)["w"]), values)
    assert gf.load(str(tmp_path / "gradflow.pt"))["steps"][1] == 2.5


def test_unseekable_stream_and_stream_after_a_prefix():
    buf = io.BytesIO()
    gf.save({"a": gf.arange(5)}, buf)
    got = gf.load(ReadOnly(buf.getvalue()))
    np.testing.assert_array_equal(to_numpy(got["a"]), np.arange(5))
    prefixed = io.BytesIO()
    prefixed.write(b"HEADER")
    gf.save([gf.tensor([1.5])], prefixed)
    prefixed.seek(6)
    assert to_numpy(gf.load(prefixed)[0]).tolist() == [1.5]
    with pytest.raises(TypeError, match="expected a file path .* or a binary file object"):
        gf.load(42)


def test_plain_checkpoint_keeps_format_version_1():
    buf = io.BytesIO()
    gf.save(_net().state_dict(), buf)
    doc = json.loads(_members(buf.getvalue())["structure.json"])
    assert doc["version"] == 1 and "pickle" not in doc
    buf = io.BytesIO()
    gf.save(_net(), buf)
    members = _members(buf.getvalue())
    doc = json.loads(members["structure.json"])
    assert doc["version"] == 2 and doc["pickle"] == "data.pkl" and "data.pkl" in members
    assert doc["pickled"] == "gradflow.nn.modules.container.Sequential at the top level"
    assert len(doc["tensors"]) == 4 and "tensors/3.npy" in members  # arrays stay .npy


# -- weights_only ------------------------------------------------------------------------------
def test_state_dicts_load_with_the_default_weights_only():
    net = _net()
    opt = gf.optim.Adam(net.parameters(), lr=0.01)
    x = gf.ones(5, 3)
    net(x).sum().backward()
    opt.step()
    buf = io.BytesIO()
    gf.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, buf)
    buf.seek(0)
    ckpt = gf.load(buf, weights_only=True)
    fresh = _net()
    fresh.load_state_dict(ckpt["model"])
    fresh_opt = gf.optim.Adam(fresh.parameters(), lr=0.01)
    fresh_opt.load_state_dict(ckpt["optimizer"])
    for model, o in ((net, opt), (fresh, fresh_opt)):
        o.zero_grad()
        model(x).sum().backward()
        o.step()
    for a, b in zip(net.parameters(), fresh.parameters()):
        np.testing.assert_allclose(to_numpy(b), to_numpy(a), rtol=1e-6)
    buf.seek(0)
    assert gf.load(buf, weights_only=False)["epoch"] == 3


def test_whole_model_needs_weights_only_false_as_in_torch(tmp_path):
    torch = require_torch()
    torch_file = tmp_path / "torch.pt"
    torch.save(torch.nn.Linear(2, 2), torch_file)
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        torch.load(torch_file)
    net = _net()
    path = tmp_path / "net.gf"
    gf.save(net, path)
    with pytest.raises(pickle.UnpicklingError) as info:
        gf.load(path)
    assert isinstance(info.value, WeightsOnlyError) and isinstance(info.value, CheckpointError)
    assert "Weights only load failed" in str(info.value)
    assert "weights_only=False" in str(info.value) and "Sequential" in str(info.value)
    loaded = gf.load(path, weights_only=False)
    x = gf.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(net(x)))
    weight = loaded[0].weight
    assert type(weight) is gf.nn.Parameter and weight.requires_grad and weight.grad is None
    assert [n for n, _ in loaded.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_model_and_optimizer_pickled_together_share_parameters():
    net = _net()
    net(gf.ones(1, 3)).sum().backward()  # a leaf's grad node is held by weak reference
    opt = gf.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    opt.step()
    buf = io.BytesIO()
    gf.save({"net": net, "opt": opt, "point": Point((1, 2), net[0].weight)}, buf)
    buf.seek(0)
    got = gf.load(buf, weights_only=False)
    first = got["net"][0].weight
    assert got["opt"].param_groups[0]["params"][0] is first
    assert got["point"].weight is first and got["point"].xy == (1, 2)
    state = got["opt"].state[first]
    np.testing.assert_array_equal(to_numpy(state["momentum_buffer"]),
                                  to_numpy(opt.state[net[0].weight]["momentum_buffer"]))


def test_default_load_never_unpickles(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.gf"
    gf.save({"payload": Evil(marker)}, path)
    assert not marker.exists()
    with pytest.raises(WeightsOnlyError, match="weights_only=False"):
        gf.load(path)
    with pytest.raises(WeightsOnlyError):
        gf.load(path, weights_only=None)
    assert not marker.exists(), "weights_only=True must not run the file's code"
    gf.load(path, weights_only=False)  # trusting the file runs it, as documented
    assert marker.exists()


def test_torch_state_dicts_load_with_and_without_weights_only(tmp_path):
    """A torch.save'd state_dict is read by gradflow's own code-free reader either way
    (tests/test_torch_checkpoint.py covers the format)."""
    torch = require_torch()
    path = tmp_path / "sd.pt"
    torch.save(OrderedDict(w=torch.arange(3.0)), path)
    for weights_only in (None, False):
        got = gf.load(path, weights_only=weights_only)
        assert list(got) == ["w"] and got["w"].tolist() == [0.0, 1.0, 2.0]


def test_unpicklable_object_is_refused_naming_its_path(tmp_path):
    with pytest.raises(TypeError, match=r"type function at \['fn'\] without pickle.*pickling "
                                        r"it failed too"):
        gf.save({"fn": lambda: 0}, tmp_path / "x.gf")
    assert os.listdir(tmp_path) == []


# -- map_location ------------------------------------------------------------------------------
def _saved(obj) -> io.BytesIO:
    buf = io.BytesIO()
    gf.save(obj, buf)
    buf.seek(0)
    return buf


def test_map_location_callable_gets_each_tensor_and_its_location():
    seen = []

    def to_cpu_doubled(t, location):
        seen.append((t.device, location, tuple(t.shape)))
        return t * 2 if t.dtype == gf.float32 else None

    sd = {"a": gf.ones(2, 3), "b": gf.arange(3), "w": gf.ones(2, requires_grad=True)}
    got = gf.load(_saved(sd), map_location=to_cpu_doubled)
    assert seen == [(gf.device("cpu"), "cpu", (2, 3)), (gf.device("cpu"), "cpu", (3,)),
                    (gf.device("cpu"), "cpu", (2,))]
    np.testing.assert_array_equal(to_numpy(got["a"]), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(to_numpy(got["b"]), np.arange(3))
    assert got["w"].requires_grad and got["w"].is_leaf
    with pytest.raises(TypeError, match="map_location callable must return a Tensor or None"):
        gf.load(_saved(sd), map_location=lambda t, loc: "cpu")


def test_map_location_forms_on_the_cupy_path(fake_cuda):
    x = gf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device="cuda:1")
    obj = {"x": x, "c": gf.arange(4)}
    got = gf.load(_saved(obj))
    assert (got["x"].device, got["c"].device) == (gf.device("cuda:1"), gf.device("cpu"))
    for location, want in (("cpu", ("cpu", "cpu")), ("cuda:0", ("cuda:0", "cuda:0")),
                           (gf.device("cuda:1"), ("cuda:1", "cuda:1")),
                           ({"cuda:1": "cuda:0"}, ("cuda:0", "cpu")),
                           ({"cpu": "cuda:1", "cuda:1": "cpu"}, ("cpu", "cuda:1")),
                           (lambda t, loc: t.to("cuda:0") if loc == "cuda:1" else None,
                            ("cuda:0", "cpu"))):
        got = gf.load(_saved(obj), map_location=location)
        assert (str(got["x"].device), str(got["c"].device)) == want, location
        np.testing.assert_array_equal(to_numpy(got["x"]), to_numpy(x))
    net = _net().to("cuda:1")
    moved = gf.load(_saved(net), map_location="cpu", weights_only=False)
    assert {str(p.device) for p in moved.parameters()} == {"cpu"}
    assert type(moved[0].weight) is gf.nn.Parameter
