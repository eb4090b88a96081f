"""kernels/softmax.cu (through gradflow/cuda/softmax.py) against its NumPy twin,
gradflow/ops/softmax.softmax_array, on awkward row counts and lengths (1, odd, prime, longer
than a warp, a grid of several blocks), masked-out rows, both float dtypes, non-contiguous
inputs; and the softmax op that picks the kernels, on the fake CuPy, against torch."""
from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import check_cupy_path, data

import gradflow as gf
from gradflow.cuda import softmax as kernels
from gradflow.ops.softmax import softmax_array

TOLERANCE = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}
# backward: g - sum(g * y) cancels, and the kernel sums in a warp's order, NumPy pairwise
BACKWARD = {np.float32: dict(rtol=1e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
DTYPES = [np.float32, np.float64]
# (rows, cols): one entry, one row, one column, odd, prime, past a warp, several blocks
SIZES = [(1, 1), (1, 33), (7, 1), (5, 3), (13, 31), (9, 97), (70, 257)]


def _scores(shape, dtype, seed=0):
    return data(*shape, seed=seed, kind="normal", dtype=dtype) * dtype(4.0)


def _run(backend, fn, *arrays):
    if backend.device == "cuda":
        import cupy
        arrays = tuple(cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in arrays)
    with backend.active() as launched:
        out = fn(*arrays)
    return (out.get() if backend.device == "cuda" else out), launched


@pytest.mark.parametrize("safe", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_forward_and_backward_equal_the_twin(kernel_backend, size, dtype, safe):
    x = _scores(size, dtype)
    y, launched = _run(kernel_backend, lambda a: kernels.forward(a, safe), x)
    assert launched == ["softmax.softmax_fwd"]
    want = softmax_array(x.copy(), -1, safe)
    assert y.dtype == want.dtype and y.shape == want.shape
    np.testing.assert_allclose(y, want, **TOLERANCE[dtype])
    g = _scores(size, dtype, seed=1)
    gx, launched = _run(kernel_backend, kernels.backward, want, g)
    assert launched == ["softmax.softmax_bwd"]
    np.testing.assert_allclose(gx, want * (g - (g * want).sum(-1, keepdims=True)),
                               **BACKWARD[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_rows_infinities_and_nan(kernel_backend, dtype):
    """A row of -inf gives zeros when safe and NaN otherwise (torch's two softmaxes); a
    partly masked row ignores its -inf entries; a NaN poisons its row only."""
    x = np.array([[-math.inf] * 5, [0.0, -math.inf, 1.0, -math.inf, 2.0],
                  [1.0, math.nan, 0.0, 0.0, 0.0], [1e4, -1e4, 0.0, 3.0, 1e4]], dtype)
    for safe in (False, True):
        y, _ = _run(kernel_backend, lambda a, s=safe: kernels.forward(a, s), x)
        np.testing.assert_allclose(y, softmax_array(x.copy(), -1, safe), **TOLERANCE[dtype])
        assert np.isnan(y[2]).all() and np.isnan(y[0]).all() != safe


def test_non_contiguous_input_is_copied_and_empty_launches_nothing(kernel_backend):
    wide = _scores((6, 22), np.float32)
    view = wide[:, ::2]
    y, _ = _run(kernel_backend, lambda a: kernels.forward(a, False), view)
    np.testing.assert_allclose(y, softmax_array(view.copy(), -1, False),
                               **TOLERANCE[np.float32])
    y, launched = _run(kernel_backend, lambda a: kernels.forward(a, False),
                       np.zeros((0, 4), np.float32))
    assert launched == [] and y.shape == (0, 4)


SHAPES = [((), 0), ((1,), 0), ((4, 7), 1), ((3, 5, 2), 1), ((2, 3, 5), -1), ((5, 4), 0)]


@pytest.mark.parametrize("shape, dim", SHAPES)
def test_softmax_runs_the_kernels_on_the_cupy_path(fake_cuda, shape, dim):
    """F.softmax on CuPy arrays: the kernel forward (the dim moved last when it is not) and
    gradients against the CPU's; the second derivative goes through gradflow ops."""
    x = data(*shape, seed=2, kind="normal") * 3
    check_cupy_path(lambda t: gf.nn.functional.softmax(t, dim), x)


def test_attention_softmax_on_the_cupy_path_with_a_fully_masked_row(fake_cuda):
    q, k, v = (data(2, 4, 3, seed=s, kind="normal") for s in range(3))
    mask = np.ones((4, 4), bool)
    mask[1] = False  # query 1 attends nothing: zeros, as torch's safe softmax
    check_cupy_path(lambda *t: gf.nn.functional.scaled_dot_product_attention(
        *t, attn_mask=gf.tensor(mask, device=t[0].device)), q, k, v)
    fake_cuda.clear_events()
    x = gf.tensor(data(3, 5, kind="normal"), dtype=gf.float32, device="cuda")
    gf.nn.functional.softmax(x, -1)
    assert [e.where for e in fake_cuda.events_of("launch") if e.where.startswith("softmax")] \
        == ["softmax.softmax_fwd<float>"]


def test_integer_input_is_refused_as_torch_does():
    with pytest.raises(TypeError, match=r"softmax: expected a floating point input, got int64"):
        gf.nn.functional.softmax(gf.tensor([1, 2]), 0)
