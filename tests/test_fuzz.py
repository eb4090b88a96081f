"""Property-based tests (hypothesis, derandomized so CI sees the same examples every run).

The checkpoint loader meets random bytes, byte-level mutations of a real checkpoint, mutated
structure.json values and hostile .npy headers: it must load a well-formed value or raise
CheckpointError, quickly. Elementwise ops, indexing and reductions meet random shapes
(broadcasting, negative steps, repeated indices, keepdim) and dtypes: forward values and
result dtypes are compared with NumPy under PyTorch's promotion rules, gradients with PyTorch
(or, for indexing, with NumPy's scatter-add, since PyTorch has no negative-step slices).
"""
from __future__ import annotations

import functools
import io
import json
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from helpers import require_torch, to_numpy, torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import MUTATIONS, mutate

import gradflow as gf
from gradflow import dtypes
from gradflow.serialization import CheckpointError, load, save


def fuzz_settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


# -- the checkpoint loader --------------------------------------------------------------------
LOAD_SECONDS = 5.0  # far above the ~1 ms a small file takes: a hang, not a slow machine


@functools.lru_cache(maxsize=1)
def _checkpoint() -> tuple:
    """(bytes of a real checkpoint, its members) with every kind of node and three dtypes."""
    obj = {"w": gf.tensor(np.arange(12, dtype=np.float32).reshape(3, 4), requires_grad=True),
           "idx": gf.tensor(np.array([3, -1], np.int64)), "mask": gf.tensor([True, False]),
           "nested": [1, 2.5, None, "s", (3, {7: False})]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "good.gf"
        save(obj, path)
        data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    return data, members


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _check_well_formed(value, where="root"):
    """What a successful load may return: supported tensors and plain containers only."""
    if isinstance(value, gf.Tensor):
        assert value.dtype in dtypes.SUPPORTED, f"{where}: dtype {value.dtype}"
        assert not value.requires_grad or value.dtype.kind == "f", \
            f"{where}: {value.dtype} tensor requires grad"
        assert value.array.shape == tuple(value.shape)
    elif isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, (str, int, float, bool, type(None))), f"{where}: key {key!r}"
            _check_well_formed(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_well_formed(item, f"{where}[{i}]")
    else:
        assert isinstance(value, (str, int, float, bool, type(None))), \
            f"{where}: {type(value).__name__}"


def _load_or_refuse(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.gf"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        value = load(path, map_location="cpu")
    except CheckpointError:
        value = None
    elapsed = time.perf_counter() - start
    assert elapsed < LOAD_SECONDS, f"load took {elapsed:.1f} s on a {len(data)}-byte file"
    _check_well_formed(value)


@fuzz_settings(300)
@given(data=st.binary(max_size=2048), zip_magic=st.booleans())
def test_loader_on_random_bytes(tmp_path, data, zip_magic):
    _load_or_refuse(tmp_path, (b"PK\x03\x04" if zip_magic else b"") + data)




@fuzz_settings(600)
@given(mutations=MUTATIONS)
def test_loader_on_mutated_checkpoints(tmp_path, mutations):
    _load_or_refuse(tmp_path, mutate(_checkpoint()[0], mutations))


def _paths(node, prefix=()):
    """Every path (a tuple of keys and indices) inside a JSON document, the root included."""
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, prefix + (key,))


HOSTILE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats()
    | st.text(max_size=6) | st.sampled_from(["float32", "int64", "bool", "object", "<f4", "O",
                                             "cpu", "cuda", "cuda:1", "meta", "__tensor__"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["__tensor__", "__dict__", "__tuple__", "dtype", "shape", "device",
                         "requires_grad"]), inner, max_size=2),
    max_leaves=6)


@fuzz_settings(400)
@given(edits=st.lists(st.tuples(st.integers(0, 1000), st.booleans(), HOSTILE_JSON),
                      min_size=1, max_size=3))
def test_loader_on_mutated_structure(tmp_path, edits):
    """Replace or delete values anywhere in structure.json: wrong dtype strings, negative or
    huge shapes, wrong types, missing keys, bad tensor references."""
    _, members = _checkpoint()
    doc = json.loads(members["structure.json"])
    for pick, delete, value in edits:
        paths = [p for p in _paths(doc) if p]
        *parents, key = paths[pick % len(paths)]
        parent = functools.reduce(lambda node, k: node[k], parents, doc)
        if delete:
            del parent[key]
        else:
            parent[key] = value
    _load_or_refuse(tmp_path, _zip(dict(members, **{"structure.json": json.dumps(doc)})))


NPY_DESCR = st.sampled_from(["<f4", ">f4", "|O", "<f8", "<i8", "|b1", "<U3", "V4", "f4,f4",
                             "<M8[s]", "(2,)f4", "x"]) | st.text(max_size=8)
NPY_SHAPE = st.lists(st.integers(-2, 2 ** 40) | st.sampled_from([3, 4]), max_size=3).map(tuple)


@fuzz_settings(300)
@given(version=st.sampled_from([1, 2, 3, 0, 255]), descr=NPY_DESCR,
       fortran=st.booleans() | st.integers(0, 2) | st.none(), shape=NPY_SHAPE,
       extra=st.sampled_from(["", "'extra': 1, ", "'descr': '<f4', "]),
       damage=st.lists(st.tuples(st.sampled_from(["set", "insert", "delete", "truncate"]),
                                 st.integers(0, 1 << 10), st.sampled_from(b"(){}[],:' L\0\n"),
                                 st.integers(1, 3)), max_size=2),
       payload=st.integers(0, 64))
def test_loader_on_hostile_npy_headers(tmp_path, version, descr, fortran, shape, extra, damage,
                                       payload):
    """tensors/0.npy (float32 (3, 4) in structure.json) with arbitrary header fields, and
    header text damaged by a few bytes (unbalanced brackets, stray Python 2 long suffixes)."""
    _, members = _checkpoint()
    header = mutate((f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, "
                      f"{extra}}}").encode("latin1", "replace"), damage) + b"\n"
    size = len(header).to_bytes(2 if version == 1 else 4, "little")
    npy = b"\x93NUMPY" + bytes([version, 0]) + size + header + b"\0" * payload
    _load_or_refuse(tmp_path, _zip(dict(members, **{"tensors/0.npy": npy})))


# -- ops on random shapes and dtypes ----------------------------------------------------------
DTYPE_NAMES = ["bool", "int64", "float32", "float64"]  # PyTorch's promotion order among these


def promoted(a: str, b: str, a_0d: bool = False, b_0d: bool = False,
             true_divide: bool = False) -> str:
    """PyTorch's result dtype for two tensors: the later one in DTYPE_NAMES wins, except that a
    0-d tensor counts only when its category (bool, integer, float) is higher; true division
    of integers or bools gives the default float dtype."""
    category = {"bool": 0, "int64": 1, "float32": 2, "float64": 2}
    if a_0d != b_0d:
        dim, zero = (b, a) if a_0d else (a, b)
        out = zero if category[zero] > category[dim] else dim
    else:
        out = max(a, b, key=DTYPE_NAMES.index)
    return "float32" if true_divide and out in ("bool", "int64") else out


def arrays_of(dtype: str, shape: tuple, nonzero: bool = False):
    """Small values with many ties (integers in [-4, 4], halves of them for floats), so max and
    maximum meet equal elements and every result is exact."""
    if dtype == "bool":
        return hnp.arrays(np.bool_, shape, elements=st.just(True) if nonzero else None)
    values = st.integers(-4, 4).filter(lambda v: v or not nonzero)
    if dtype == "int64":
        return hnp.arrays(np.int64, shape, elements=values)
    return hnp.arrays(dtype, shape, elements=values.map(lambda v: v / 2))


def _backward_pairs(gf_out, th_out, gf_inputs, th_inputs, seed=0):
    """Gradients of sum(out * w) for a fixed random w, from gradflow and from PyTorch."""
    weight = np.random.default_rng(seed).standard_normal(tuple(th_out.shape))
    gf_w = gf.tensor(weight, dtype=gf_out.dtype)
    th_w = torch.tensor(weight, dtype=th_out.dtype)
    gf_grads = gf.autograd.grad((gf_out * gf_w).sum(), gf_inputs, allow_unused=True)
    th_grads = torch.autograd.grad((th_out * th_w).sum(), th_inputs, allow_unused=True)
    return gf_grads, th_grads


def _assert_grads_match(gf_grads, th_grads, names, rtol):
    for name, g, t in zip(names, gf_grads, th_grads):
        assert (g is None) == (t is None), f"{name}: gradflow {g} vs torch {t}"
        if t is not None:
            assert str(g.dtype) == str(t.dtype).replace("torch.", ""), f"{name}: {g.dtype}"
            np.testing.assert_allclose(to_numpy(g), to_numpy(t), rtol=rtol, atol=1e-6,
                                       err_msg=f"gradient of {name} differs from PyTorch")


def test_gradients_have_a_pytorch_reference():
    """The op properties below compare gradients with PyTorch only where it is installed;
    without it they still check values and dtypes, and this test reports the gap."""
    require_torch()


BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
          "maximum": np.maximum}


@fuzz_settings(250)
@given(data=st.data(), op=st.sampled_from(sorted(BINARY) + ["where"]),
       kinds=st.tuples(*[st.sampled_from(DTYPE_NAMES)] * 2),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=4, max_side=3))
def test_broadcasting_binary_ops(data, op, kinds, shapes):
    (ka, kb), (sa, sb, sc) = kinds, shapes.input_shapes
    a = data.draw(arrays_of(ka, sa), label="a")
    b = data.draw(arrays_of(kb, sb, nonzero=op == "div"), label="b")
    cond = data.draw(hnp.arrays(np.bool_, sc), label="cond")
    want_dtype = promoted(ka, kb, a.ndim == 0, b.ndim == 0, true_divide=op == "div")
    ga, gb = (gf.tensor(v, requires_grad=v.dtype.kind == "f") for v in (a, b))
    if op == "sub" and "bool" in kinds:
        with pytest.raises(TypeError, match="sub: subtraction, .* with a bool tensor"):
            gf.sub(ga, gb)
        return
    if op == "where":
        out = gf.where(gf.tensor(cond), ga, gb)
        want = np.where(cond, a.astype(want_dtype), b.astype(want_dtype))
    else:
        out = getattr(gf, op)(ga, gb)
        want = BINARY[op](a.astype(want_dtype), b.astype(want_dtype))
        assert tuple(out.shape) == np.broadcast_shapes(sa, sb)
    assert str(out.dtype) == want_dtype, f"{op}({ka}, {kb}) gave {out.dtype}"
    np.testing.assert_allclose(to_numpy(out), want, rtol=1e-6)
    if not out.requires_grad or torch is None:
        return
    ta, tb = (torch.tensor(v, requires_grad=v.dtype.kind == "f") for v in (a, b))
    t_out = (torch.where(torch.tensor(cond), ta, tb) if op == "where"
             else getattr(torch, op)(ta, tb))
    assert str(t_out.dtype) == f"torch.{want_dtype}", "the promotion oracle disagrees with torch"
    floats = [(n, g, t) for n, g, t in (("a", ga, ta), ("b", gb, tb)) if g.requires_grad]
    grads = _backward_pairs(out, t_out, [g for _, g, _ in floats], [t for *_, t in floats])
    _assert_grads_match(*grads, [n for n, *_ in floats], rtol=1e-5)


SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)


def _index_grad(shape: tuple, index, weight: np.ndarray, dtype) -> np.ndarray:
    """NumPy's gradient of x[index]: every output element adds its weight to its source."""
    grad = np.zeros(shape, dtype)
    np.add.at(grad, index, weight)
    return grad


def _forward_steps(index):
    """The index with each slice's step made positive: PyTorch refuses negative steps."""
    def fix(it):
        return slice(it.start, it.stop, -it.step) if isinstance(it, slice) and it.step and \
            it.step < 0 else it
    return tuple(fix(it) for it in index) if isinstance(index, tuple) else fix(index)


@fuzz_settings(200)
@given(data=st.data(), shape=SHAPES, kind=st.sampled_from(["float32", "float64"]))
def test_basic_slicing(data, shape, kind):
    """Ints, slices with any positive step, None and Ellipsis."""
    x = data.draw(arrays_of(kind, shape), label="x")
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True)
                      .map(_forward_steps), label="index")
    gx = gf.tensor(x, requires_grad=True)
    out = gx[index]
    want = x[index]
    assert tuple(out.shape) == want.shape and out.dtype == want.dtype
    np.testing.assert_array_equal(to_numpy(out), want)
    weight = np.random.default_rng(0).standard_normal(want.shape).astype(kind)
    grad, = gf.autograd.grad((out * gf.tensor(weight)).sum(), [gx])
    expect = np.zeros(shape, kind)
    expect[index] += weight  # a basic index never reaches one element twice
    np.testing.assert_allclose(to_numpy(grad), expect, rtol=1e-6, err_msg="gradient of x[index]")


@st.composite
def mixed_indices(draw, shape):
    """A tuple with integer arrays (negative and repeated entries) on one or more dims and
    slices on the rest; separated arrays move their dims to the front, as in NumPy."""
    arrays = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    if not any(arrays):
        arrays[draw(st.integers(0, len(shape) - 1))] = True
    result_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    index = []
    for n, use_array in zip(shape, arrays):
        if use_array:
            index.append(draw(hnp.arrays(np.int64, result_shape, elements=st.integers(-n, n - 1))))
        else:
            index.append(draw(st.slices(n).map(_forward_steps)))
    return tuple(index)


@fuzz_settings(200)
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       kind=st.sampled_from(["float32", "float64", "int64", "bool"]))
def test_integer_array_indexing(data, shape, kind):
    x = data.draw(arrays_of(kind, shape), label="x")
    index = data.draw(mixed_indices(shape), label="index")
    gx = gf.tensor(x, requires_grad=kind.startswith("float"))
    out = gx[tuple(gf.tensor(i) if isinstance(i, np.ndarray) else i for i in index)]
    want = x[index]
    assert tuple(out.shape) == want.shape and out.dtype == want.dtype
    np.testing.assert_array_equal(to_numpy(out), want)
    if not gx.requires_grad:
        return
    weight = np.random.default_rng(0).standard_normal(want.shape).astype(kind)
    grad, = gf.autograd.grad((out * gf.tensor(weight)).sum(), [gx])
    np.testing.assert_allclose(to_numpy(grad), _index_grad(shape, index, weight, kind),
                               rtol=1e-5, atol=1e-6,
                               err_msg="gradient of x[index] (repeated indices must add up)")


def _dims(ndim: int):
    """None, one dim (possibly negative) or a tuple of distinct dims; 0-d tensors take 0/-1."""
    one = st.integers(-max(ndim, 1), max(ndim, 1) - 1)
    if ndim == 0:
        return st.none() | one
    return st.none() | one | hnp.valid_tuple_axes(ndim, min_size=1)


@fuzz_settings(300)
@given(data=st.data(), shape=SHAPES, op=st.sampled_from(["sum", "mean", "amax"]),
       kind=st.sampled_from(DTYPE_NAMES), keepdim=st.booleans())
def test_reductions(data, shape, op, kind, keepdim):
    x = data.draw(arrays_of(kind, shape), label="x")
    dim = data.draw(_dims(len(shape)), label="dim")
    axes = None if dim is None or not shape else dim
    gx = gf.tensor(x, requires_grad=kind.startswith("float"))
    reduced = range(len(shape)) if axes is None else np.atleast_1d(axes) % len(shape)
    if op == "mean" and kind in ("bool", "int64"):
        with pytest.raises(RuntimeError, match="mean: could not infer output dtype"):
            gf.mean(gx, dim, keepdim)
        return
    if op == "amax" and any(shape[a] == 0 for a in reduced):
        with pytest.raises(RuntimeError, match="amax: cannot reduce over an empty dimension"):
            gf.amax(gx, dim, keepdim)
        return
    reference = {"sum": np.sum, "mean": np.mean, "amax": np.amax}[op]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of nothing is nan
        out = getattr(gf, op)(gx, dim, keepdim)
        want = reference(x, axis=axes, keepdims=keepdim)
    want_dtype = "int64" if op == "sum" and kind in ("bool", "int64") else kind
    assert str(out.dtype) == want_dtype, f"{op} of {kind} gave {out.dtype}"
    assert tuple(out.shape) == np.shape(want), f"{op}: shape {tuple(out.shape)}"
    np.testing.assert_allclose(to_numpy(out), want, rtol=1e-6)
    if not gx.requires_grad or torch is None:
        return
    tx = torch.tensor(x, requires_grad=True)
    every = tuple(range(len(shape)))
    t_out = getattr(torch, op)(tx, dim=every if dim is None else dim, keepdim=keepdim)
    grads = _backward_pairs(out, t_out, [gx], [tx])
    _assert_grads_match(*grads, ["x"], rtol=1e-5)


@fuzz_settings(150)
@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4),
       kind=st.sampled_from(["float32", "float64", "int64"]), keepdim=st.booleans())
def test_max_along_a_dim(data, shape, kind, keepdim):
    """max(dim) returns values and the index of each, as argmax does (argmin likewise);
    distinct values make the index (and so the gradient) unique."""
    size = int(np.prod(shape))
    x = np.asarray(data.draw(st.permutations(range(size)), label="order"), kind).reshape(shape)
    dim = data.draw(st.integers(-max(len(shape), 1), max(len(shape), 1) - 1), label="dim")
    gx = gf.tensor(x, requires_grad=kind != "int64")
    values, indices = gf.max(gx, dim, keepdim)
    axis = None if not shape else dim
    want = np.max(x, axis=axis, keepdims=keepdim and axis is not None)
    np.testing.assert_array_equal(to_numpy(values), want)
    assert indices.dtype == gf.int64
    keep = keepdim and axis is not None
    np.testing.assert_array_equal(to_numpy(indices), np.argmax(x, axis=axis, keepdims=keep))
    np.testing.assert_array_equal(to_numpy(gf.argmax(gx, dim, keepdim)), to_numpy(indices))
    np.testing.assert_array_equal(to_numpy(gf.argmin(gx, dim, keepdim)),
                                  np.argmin(x, axis=axis, keepdims=keep))
    if not gx.requires_grad or torch is None:
        return
    tx = torch.tensor(x, requires_grad=True)
    t_values, _ = torch.max(tx, dim=dim, keepdim=keepdim)
    grads = _backward_pairs(values, t_values, [gx], [tx])
    _assert_grads_match(*grads, ["x"], rtol=1e-6)
