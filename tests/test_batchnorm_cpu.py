"""The fused batch norm on the CPU (`BatchNormTrain` over gradflow.ops.batchnorm's NumPy twins):
values, closed-form gradients and running averages against PyTorch on awkward shapes, finite
differences to second order, agreement with the composed `batch_norm_reference`, and proof
that the fused op (not the composed one) is what runs."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import check_gradcheck, check_op, check_op_raises, data, require_torch, to_numpy

import gradflow as gf
from gradflow.ops import batchnorm

SHAPES = [(2, 3), (2, 5, 7), (3, 37, 5, 3), (1, 4, 3, 3), (257, 2, 1, 1)]
SHAPE_IDS = ["NC", "NCL", "NCHW_37", "batch1", "N257"]
TOLERANCE = {np.float32: dict(atol=2e-5, rtol=2e-4), np.float64: dict(atol=1e-10, rtol=1e-9)}


def arrays(shape, dtype, affine=True):
    """An input off zero mean and unit deviation, and a channel weight and bias if `affine`."""
    x = data(shape, dtype=dtype) * 3 + 1
    if not affine:
        return [x]
    c = shape[1]
    return [x, data(c, kind="pos", seed=3, dtype=dtype), data(c, seed=4, dtype=dtype)]


def train_with_running_stats(lib, x, *wb):
    """Training-mode batch norm updating fresh running averages; all three are outputs."""
    c = x.shape[1]
    rm, rv = lib.zeros(c, dtype=x.dtype), lib.ones(c, dtype=x.dtype)
    out = lib.nn.functional.batch_norm(x, rm, rv, *wb, training=True, momentum=0.3)
    return out, rm, rv


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_fused_batch_norm_matches_torch(shape, dtype, affine):
    """Output, running averages and the closed-form gradients (first order only, so the
    fused backward runs rather than the composed double-backward path)."""
    check_op(train_with_running_stats, *arrays(shape, dtype, affine), second_order=False,
             **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(2, 5, 7), (3, 37, 5, 3)], ids=["NCL", "NCHW_37"])
def test_fused_batch_norm_on_transposed_views_matches_torch(shape, dtype):
    check_op(train_with_running_stats, *arrays(shape, dtype), noncontiguous=True,
             second_order=False, **TOLERANCE[dtype])


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_second_derivatives_match_torch(affine):
    check_op(train_with_running_stats, *arrays((3, 4, 2, 3), np.float64, affine),
             **TOLERANCE[np.float64])


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 3), (1, 3, 2, 2)],
                         ids=["NC", "NCHW", "batch1"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_finite_differences_first_and_second_order(shape, affine):
    check_gradcheck(lambda L, x, *wb: L.nn.functional.batch_norm(x, None, None, *wb,
                                                                 training=True),
                    *arrays(shape, np.float64, affine))


def test_eval_mode_affine_map_matches_torch():
    """Running statistics give one affine map per channel, differentiable to second order in
    the input, weight and bias."""
    rm, rv = data(3, seed=5), data(3, kind="pos", seed=6)

    def fn(lib, x, w, b):
        return lib.nn.functional.batch_norm(x, lib.tensor(rm), lib.tensor(rv), w, b)

    check_op(fn, *arrays((2, 3, 4), np.float64))


def grads_of(fn, x, w, b, gy):
    """fn's output and the gradients of sum(fn(x, w, b) * gy), as NumPy arrays."""
    leaves = [gf.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = fn(*leaves)
    (out * gf.tensor(gy)).sum().backward()
    return [to_numpy(out)] + [to_numpy(t.grad) for t in leaves]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_fused_path_agrees_with_the_composed_reference(shape, dtype):
    x, w, b = arrays(shape, dtype)
    gy = data(shape, kind="normal", seed=9, dtype=dtype)
    fused = grads_of(lambda *t: gf.nn.functional.batch_norm(t[0], None, None, *t[1:],
                                                            training=True), x, w, b, gy)
    composed = grads_of(lambda *t: batchnorm.batch_norm_reference(*t, eps=1e-5), x, w, b, gy)
    for what, got, want in zip(("output", "input grad", "weight grad", "bias grad"), fused,
                               composed):
        np.testing.assert_allclose(got, want, **TOLERANCE[dtype],
                                   err_msg=f"{what}: fused and composed batch norm differ")


@pytest.fixture
def calls(monkeypatch):
    """Counts the calls of the NumPy twins and of the composed reference."""
    counts: dict = {}
    for name in ("batch_stats_reference", "affine_reference", "backward_reference",
                 "batch_norm_reference"):
        def spy(*args, _name=name, _real=getattr(batchnorm, name), **kwargs):
            counts[_name] = counts.get(_name, 0) + 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(batchnorm, name, spy)
    return counts


def test_training_runs_the_fused_op_and_its_closed_form_backward(calls):
    x, w, b = (gf.tensor(a, requires_grad=True) for a in arrays((4, 3, 2, 2), np.float64))
    bn = gf.nn.BatchNorm2d(3).double()
    versions = bn.running_mean._version, bn.running_var._version
    out = gf.nn.functional.batch_norm(x, bn.running_mean, bn.running_var, w, b, training=True)
    assert isinstance(out.grad_fn, batchnorm.BatchNormTrain), type(out.grad_fn).__name__
    assert (bn.running_mean._version, bn.running_var._version) == (versions[0] + 1,
                                                                  versions[1] + 1)
    out.sum().backward()
    assert calls == {"batch_stats_reference": 1, "affine_reference": 1,
                     "backward_reference": 1}, calls


def test_double_backward_differentiates_the_reference_and_updates_once(calls):
    th = require_torch()
    x_np, w_np, b_np = arrays((4, 3, 2, 2), np.float64)
    x, w, b = (gf.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    out, rm, rv = train_with_running_stats(gf, x, w, b)
    # NOTE: a loss linear in `out`, so the second backward meets only the reference's graph
    # (out * out would send it through BatchNormTrain's closed form again, rightly).
    gy = gf.tensor(data(4, 3, 2, 2, kind="normal", seed=9))
    gx, = gf.autograd.grad((out * gy).sum(), [x], create_graph=True)
    (gx * gx).sum().backward()
    assert calls == {"batch_stats_reference": 1, "affine_reference": 1,
                     "batch_norm_reference": 1}, calls
    _, trm, trv = train_with_running_stats(th, th.tensor(x_np), th.tensor(w_np),
                                           th.tensor(b_np))
    np.testing.assert_allclose(to_numpy(rm), to_numpy(trm), rtol=1e-12,
                               err_msg="running_mean moved again in double backward")
    np.testing.assert_allclose(to_numpy(rv), to_numpy(trv), rtol=1e-12,
                               err_msg="running_var moved again in double backward")


def test_eval_mode_takes_no_batch_statistics(calls):
    bn = gf.nn.BatchNorm2d(3).eval()
    bn(gf.tensor(data(2, 3, 2, 2, dtype=np.float32), requires_grad=True)).sum().backward()
    assert calls == {}, calls


def test_half_precision_stays_half_with_float32_statistics():
    x, w, b = arrays((4, 3, 5), np.float32)
    gy = data(4, 3, 5, kind="normal", seed=9, dtype=np.float32)

    def bn(*t):
        return gf.nn.functional.batch_norm(t[0], None, None, *t[1:], training=True)

    want = grads_of(bn, x, w, b, gy)
    half = [gf.tensor(a).half().requires_grad_() for a in (x, w, b)]
    out = bn(*half)
    (out * gf.tensor(gy).half()).sum().backward()
    for what, t, expect in zip(("output", "input grad", "weight grad", "bias grad"),
                               [out] + [t.grad for t in half], want):
        assert t.dtype == gf.float16, f"{what}: {t.dtype}"
        np.testing.assert_allclose(to_numpy(t).astype(np.float32), expect, atol=2e-2,
                                   rtol=1e-2, err_msg=f"{what}: half differs from float32")


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")],
                         ids=["f32_input_f64_weight", "f64_input_f32_weight"])
def test_batch_norm_refuses_parameters_of_another_dtype(dtypes):
    x_dtype, w_dtype = dtypes
    x = data(4, 3, 2, 2, dtype=getattr(np, x_dtype))
    w = np.ones(3, getattr(np, w_dtype))
    err = check_op_raises(lambda lib, x, w: lib.nn.functional.batch_norm(
        x, None, None, w, None, training=True), x, w, op="batch_norm")
    assert "weight" in str(err) and w_dtype in str(err)
