"""Tensors print as PyTorch's do, byte for byte (gradflow/printing.py), and `set_printoptions`
changes it as torch's does."""
import numpy as np
import pytest

import gradflow as gf

try:
    import torch
except ImportError:  # the comparisons with torch skip; the rest runs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

R = np.random.default_rng(0)

ARRAYS = {
    "int64": np.array([1, -20, 300]),
    "int32": np.array([[1, 2], [3, 4]], np.int32),
    "uint8": np.arange(5, dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "bool 2-D": np.array([[True], [False]]),
    "floats": np.array([1.5, 2.0], np.float32),
    "integer-valued floats": np.array([1.0, -2.0, 30.0], np.float32),
    "small": np.array([1e-5, 2e-5], np.float32),
    "large": np.array([1e9, 2.0], np.float32),
    "wide range": np.array([0.001, 5.0, 12345.0], np.float32),
    "negative zero": np.array([-0.0, 1.25], np.float32),
    "negative zero alone": np.array([-0.0, 0.0], np.float32),
    "nan inf": np.array([np.nan, np.inf, -np.inf, 1.5], np.float32),
    "nan inf integer-valued": np.array([np.nan, -np.inf, 3.0], np.float32),
    "all nan": np.array([np.nan, np.nan], np.float32),
    "0-d": np.array(3.25, np.float32),
    "0-d int": np.array(7),
    "0-d bool": np.array(True),
    "empty": np.zeros((0,), np.float32),
    "empty 2-D": np.zeros((2, 0), np.float32),
    "empty int": np.zeros((0, 3), np.int64),
    "3-D": R.standard_normal((2, 3, 4)).astype(np.float32),
    "4-D": R.standard_normal((2, 1, 2, 3)).astype(np.float32),
    "long row wraps": R.standard_normal(40).astype(np.float32),
    "long int row wraps": np.arange(100),
    "summarised vector": np.arange(2000, dtype=np.float32) / 7,
    "summarised matrix": R.standard_normal((50, 30)).astype(np.float32) * 100,
    "summarised 3-D": np.arange(4000).reshape(10, 20, 20),
    "summarised short axis": np.ones((2, 600), np.float32),
    "float64": np.array([1.5, 2.25]),
    "float16": np.array([1.5, 65504.0, 0.1], np.float16),
    "int8": np.array([-128, 127], np.int8),
    "empty float64": np.zeros((0,), np.float64),
}


def _both(array: np.ndarray, requires_grad: bool = False):
    ours = gf.tensor(array, requires_grad=requires_grad)
    theirs = torch.tensor(array, requires_grad=requires_grad)
    return ours, theirs


def _same(ours, theirs) -> None:
    expected = repr(theirs).replace("torch.", "gradflow.")
    assert repr(ours) == expected, f"\nours:\n{ours!r}\ntorch:\n{expected}"
    assert str(ours) == str(theirs).replace("torch.", "gradflow.")


@needs_torch
@pytest.mark.parametrize("name", list(ARRAYS))
def test_repr_matches_torch(name):
    _same(*_both(ARRAYS[name]))


@needs_torch
@pytest.mark.parametrize("name", ["floats", "0-d", "3-D", "float64", "summarised vector"])
def test_repr_with_requires_grad(name):
    _same(*_both(ARRAYS[name], requires_grad=True))


@needs_torch
@pytest.mark.parametrize("fn", [
    lambda t: t + 1, lambda t: t * 2, lambda t: t.sum(), lambda t: t.exp(), lambda t: -t,
    lambda t: t - 1, lambda t: t / 2, lambda t: t ** 2, lambda t: t.mean(),
    lambda t: t.reshape(2, 1), lambda t: t.relu(), lambda t: (t * 1e6).tanh(),
], ids=["add", "mul", "sum", "exp", "neg", "sub", "div", "pow", "mean", "view", "relu",
        "tanh"])
def test_repr_shows_grad_fn(fn):
    ours, theirs = _both(np.array([1.5, 2.0], np.float32), requires_grad=True)
    _same(fn(ours), fn(theirs))


@needs_torch
def test_long_suffixes_wrap_like_torch():
    array = R.standard_normal((3, 9)).astype(np.float64)
    _same(*_both(array, requires_grad=True))


@needs_torch
def test_default_dtype_float64_drops_its_suffix_and_shows_float32s():
    old = gf.get_default_dtype()
    try:
        gf.set_default_dtype(gf.float64)
        torch.set_default_dtype(torch.float64)
        for array in (np.array([1.5, 2.0]), np.array([1.5], np.float32), np.zeros(0)):
            _same(*_both(array))
    finally:
        gf.set_default_dtype(old)
        torch.set_default_dtype(torch.float32)


@needs_torch
@pytest.mark.parametrize("options", [
    {"precision": 2}, {"precision": 8}, {"threshold": 5}, {"edgeitems": 1, "threshold": 10},
    {"linewidth": 30}, {"sci_mode": True}, {"sci_mode": False}, {"profile": "short"},
    {"profile": "full"}, {"edgeitems": 0, "threshold": 10},
], ids=str)
def test_printoptions_match_torch(options):
    arrays = [ARRAYS[n] for n in ("floats", "small", "wide range", "long row wraps",
                                  "summarised matrix", "long int row wraps", "3-D")]
    try:
        gf.set_printoptions(**options)
        torch.set_printoptions(**options)
        for array in arrays:
            _same(*_both(array))
    finally:
        gf.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
    assert gf.get_printoptions() == {"precision": 4, "threshold": 1000, "edgeitems": 3,
                                     "linewidth": 80, "sci_mode": None}


def test_printoptions_context_restores():
    x = gf.tensor([1.23456])
    with gf.printoptions(precision=1):
        assert repr(x) == "tensor([1.2])"
    assert repr(x) == "tensor([1.2346])"


def test_set_printoptions_rejects_an_unknown_profile():
    with pytest.raises(ValueError, match="set_printoptions: profile must be one of"):
        gf.set_printoptions(profile="long")


@needs_torch
def test_parameter_and_view_print_their_values():
    x = gf.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4))
    theirs = torch.arange(12.0).reshape(3, 4)
    _same(x.t(), theirs.t())
    _same(x[:, 1:3], theirs[:, 1:3])


def test_cuda_tensor_shows_its_device(fake_cuda):
    x = gf.tensor([1.5, 2.0], device="cuda")
    assert repr(x) == "tensor([1.5000, 2.0000], device='cuda:0')"
    big = gf.arange(5000, device="cuda:1")
    expected = "tensor([   0,    1,    2,  ..., 4997, 4998, 4999], device='cuda:1')"
    assert repr(big) == expected
    # torch shows a GPU tensor's device whatever the current or default device
    gf.cuda.set_device(1)
    gf.set_default_device("cuda:1")
    try:
        assert repr(big) == expected
        assert repr(gf.tensor([1, 2], device="cpu")) == "tensor([1, 2])"
        y = gf.ones(2, 3, requires_grad=True) * 2
        assert repr(y) == ("tensor([[2., 2., 2.],\n        [2., 2., 2.]], device='cuda:1', "
                           "grad_fn=<MulBackward0>)")
    finally:
        gf.set_default_device(None)
        gf.cuda.set_device(0)


def test_dtypes_print_as_numpy_dtypes():
    # NOTE: gradflow's dtypes are NumPy's own dtype objects (np.float32 and gf.float32 are
    # one object), so they print as NumPy writes them; a tensor's repr spells them
    # gradflow.float64 as torch spells torch.float64.
    assert gf.float32 is np.dtype(np.float32)
    assert str(gf.float32) == "float32"
    assert repr(gf.tensor([1.0], dtype=gf.float64)) == "tensor([1.], dtype=gradflow.float64)"
