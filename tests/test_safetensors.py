"""gradflow.safetensors: save_file / load_file / save / load as safetensors.torch has them.
Round trips of every dtype (bfloat16 included), files exchanged with safetensors.torch, header
validation (every way a header can be wrong names the file and the problem), memory-sharing
tensors refused as torch refuses them, fuzzed and truncated files, and the CuPy path."""
from __future__ import annotations

import json
import struct
import sys
import time

import numpy as np
import pytest
from helpers import to_numpy, torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import MUTATIONS, mutate

import gradflow as gf

pytest.importorskip("safetensors", reason="the safetensors extra is not installed")
import gradflow.safetensors as gst  # noqa: E402
from gradflow.safetensors import SafetensorError  # noqa: E402

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
DTYPES = ["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
          "uint8", "bool"]


def _tensors() -> dict:
    rng = np.random.default_rng(0)
    out = {name: gf.tensor((rng.standard_normal((3, 5)) * 40).astype(np.float64)).to(
        getattr(gf, name)) for name in DTYPES}
    out["scalar"] = gf.tensor(2.5)
    out["empty"] = gf.zeros(0, 4, dtype=gf.int64)
    return out


def _assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key, t in want.items():
        assert got[key].dtype == t.dtype and got[key].shape == t.shape, key
        np.testing.assert_array_equal(to_numpy(got[key]).astype(np.float64),
                                      to_numpy(t).astype(np.float64), err_msg=key)


def test_round_trips_of_every_dtype(tmp_path):
    tensors = _tensors()
    path = tmp_path / "all.safetensors"
    gst.save_file(tensors, path, metadata={"format": "pt"})
    _assert_same(gst.load_file(path), tensors)
    _assert_same(gst.load_file(str(path), device="cpu"), tensors)
    _assert_same(gst.load(gst.save(tensors)), tensors)
    loaded = gst.load_file(path)["float32"]
    loaded.add_(1)  # loaded tensors are ordinary, writable leaves
    assert not loaded.requires_grad and loaded.is_leaf


def test_non_contiguous_tensors_are_saved_as_their_values():
    x = gf.arange(12.0).reshape(3, 4)
    tensors = {"t": x.t(), "step": gf.arange(10)[::3], "row": gf.ones(3, 4)[:, 1],
               "scalar": gf.tensor(1.5)}
    got = gst.load(gst.save(tensors))
    for key, t in tensors.items():
        assert got[key].shape == t.shape, key
        np.testing.assert_array_equal(to_numpy(got[key]), to_numpy(t), err_msg=key)


def test_memory_sharing_tensors_are_refused_as_torch_refuses_them():
    x = gf.arange(10.0)
    with pytest.raises(RuntimeError, match=r"share memory.*\[\['x', 'y'\]\]"):
        gst.save({"x": x, "y": x[2:5], "z": gf.ones(2)})
    with pytest.raises(RuntimeError, match="share memory"):
        gst.save({"a": x, "b": x})
    got = gst.load(gst.save({"lo": x[:4], "hi": x[4:]}))  # disjoint parts of one array: fine
    np.testing.assert_array_equal(to_numpy(got["hi"]), np.arange(4, 10))


@needs_torch
def test_files_exchanged_with_safetensors_torch(tmp_path):
    sttorch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(0)
    theirs = {name: (torch.randn(4, 3, generator=g) * 30).to(getattr(torch, name))
              for name in DTYPES}
    path = tmp_path / "torch.safetensors"
    sttorch.save_file(theirs, path, metadata={"who": "torch"})
    for got in (gst.load_file(path), gst.load(path.read_bytes())):
        assert sorted(got) == sorted(theirs)
        for key, t in theirs.items():
            assert str(got[key].dtype) == key, key
            np.testing.assert_array_equal(to_numpy(got[key]).astype(np.float64),
                                          t.double().numpy(), err_msg=key)
    assert list(gst.load_file(path)) == list(sttorch.load_file(path))  # same key order
    # NOTE: safetensors.torch.load's order follows a hash map, ours the data, as load_file's
    assert list(gst.load(path.read_bytes())) == list(sttorch.load_file(path))
    ours = tmp_path / "gradflow.safetensors"
    gst.save_file(_tensors(), ours)
    back = sttorch.load_file(ours)
    for key, t in _tensors().items():
        assert str(back[key].dtype) == f"torch.{t.dtype}", key
        np.testing.assert_array_equal(back[key].double().numpy(),
                                      to_numpy(t).astype(np.float64), err_msg=key)
    assert sttorch.load(gst.save({"w": gf.ones(2, dtype=gf.bfloat16)}))["w"].dtype == \
        torch.bfloat16


def test_bad_arguments():
    with pytest.raises(ValueError, match="expected a dict"):
        gst.save([gf.ones(2)])
    with pytest.raises(ValueError, match="key `w` is invalid, expected a gradflow Tensor"):
        gst.save({"w": np.ones(2)})
    with pytest.raises(ValueError, match="metadata must be a dict of str to str"):
        gst.save({"w": gf.ones(2)}, metadata={"n": 1})
    with pytest.raises(TypeError, match="data must be bytes"):
        gst.load("a path")
    with pytest.raises(TypeError, match="filename must be a str"):
        gst.load_file(3)


def _file(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


ONE = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
BAD = {
    "unknown dtype": (_file({"w": {"dtype": "F13", "shape": [2], "data_offsets": [0, 8]}},
                            bytes(8)), "unknown dtype 'F13'"),
    "foreign dtype": (_file({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}},
                            bytes(8)), "dtype C64, which gradflow does not have"),
    "size mismatch": (_file({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                            bytes(8)), r"needs 12 bytes but its data_offsets \[0, 8\] span 8"),
    "out of range": (_file({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                           bytes(8)), "out of range"),
    "overlap": (_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)),
                "'a' and 'b' overlap"),
    "hole": (_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)),
             "hole of 4 bytes"),
    "trailing bytes": (_file(ONE, bytes(12)), "cover 8 of the 12 data bytes"),
    "truncated data": (_file(ONE, bytes(5)), "out of range"),
    "truncated length": (b"\x10\x00\x00", "fewer than the 8-byte header length"),
    "truncated header": (_file(ONE)[:20], "runs past the end of the file"),
    "huge header": (_file(b"{}", length=1 << 40), "more than the 100000000"),
    "bad json": (_file(b"{not json}"), "not valid JSON"),
    "not an object": (_file(b"[1, 2]"), "JSON list, not an object"),
    "bad shape": (_file({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}),
                  "bad shape"),
    "bad offsets": (_file({"w": {"dtype": "F32", "shape": [0], "data_offsets": [1]}}),
                    "bad data_offsets"),
    "missing field": (_file({"w": {"dtype": "F32", "shape": [0]}}), "lacks dtype"),
    "bad metadata": (_file({"__metadata__": {"k": 1}}), "__metadata__ must map str to str"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_files_name_the_file_and_the_problem(tmp_path, case):
    data, message = BAD[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(SafetensorError, match=f"{path.name}'.*{message}"):
        gst.load_file(path)
    with pytest.raises(SafetensorError, match=f"<bytes>.*{message}"):
        gst.load(data)


def test_good_hand_made_files_load():
    data = _file({"__metadata__": {"k": "v"}, **ONE,
                  "e": {"dtype": "BF16", "shape": [0, 3], "data_offsets": [8, 8]}},
                 np.array([1.5, -2], np.float32).tobytes())
    got = gst.load(data)
    np.testing.assert_array_equal(to_numpy(got["w"]), [1.5, -2])
    assert got["e"].shape == (0, 3) and got["e"].dtype == gf.bfloat16


def test_a_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"gradflow\[safetensors\]"):
        gst.save({"w": gf.ones(2)})


def test_load_file_and_save_file_on_the_cupy_path(fake_cuda, tmp_path):
    path = tmp_path / "gpu.safetensors"
    tensors = {"w": gf.arange(6.0, device="cuda").reshape(2, 3),
               "b": gf.ones(2, dtype=gf.bfloat16, device="cuda")}
    gst.save_file(tensors, path)
    for device in ("cuda", "cuda:0", 0):
        got = gst.load_file(path, device=device)
        assert {str(t.device) for t in got.values()} == {"cuda:0"}, device
        _assert_same(got, tensors)
    assert {str(t.device) for t in gst.load_file(path).values()} == {"cpu"}


# -- fuzzing ----------------------------------------------------------------------------------
def _fuzz_settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


_BASE = gst.save({"a": gf.arange(6.0).reshape(2, 3), "b": gf.ones(3, dtype=gf.bfloat16),
                  "i": gf.tensor([3, -1])}, metadata={"k": "v"})


def _load_or_refuse(tmp_path, data: bytes) -> None:
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(data)
    for load in (lambda: gst.load(data), lambda: gst.load_file(path)):
        start = time.perf_counter()
        try:
            got = load()
        except SafetensorError:
            got = {}
        assert time.perf_counter() - start < 5.0, "a hang, not a slow machine"
        for key, t in got.items():
            assert t.dtype in gst.DTYPES.values() and t.array.nbytes <= len(data), key


@_fuzz_settings(300)
@given(mutations=MUTATIONS)
def test_fuzzed_files_give_safetensor_errors(tmp_path, mutations):
    _load_or_refuse(tmp_path, mutate(_BASE, mutations))


@_fuzz_settings(100)
@given(cut=st.integers(0, len(_BASE)))
def test_truncated_files_give_safetensor_errors(tmp_path, cut):
    _load_or_refuse(tmp_path, _BASE[:cut])
